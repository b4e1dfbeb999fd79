"""`--streaming`: train on a corpus read as it is consumed (a `datasets.IterableDataset`), never written to a cache.

For a Hub dataset (`load_dataset(..., streaming=True)`) or a local file (the readers of `data.py`, one line at a
time). Validation comes from `--validation_file`, the dataset's validation split, or else the first K pairs of the
stream, held out (K: `--validation_split_size` as a count, by default `data.MAX_CARVED_VALIDATION`); the training
stream skips them. The test split is read as usual. Training needs `--max_steps` (a stream has no length); the
Trainer has Accelerate's rank 0 read the stream and deal each rank its batches under DDP. Skipped lines of a local
file are counted and logged at the end of each pass over it.
"""

import logging
from itertools import islice

import datasets
from datasets import Dataset, DatasetDict, IterableDataset

from . import data

logger = logging.getLogger(__name__)


def _stream_rows(path, source_lang, target_lang, fmt):
    """One row per pair of the file; at the end of a pass, the `ReadReport` in the log."""
    report = data.ReadReport(str(path))
    for pair in data.iter_pairs(path, source_lang, target_lang, fmt, report):
        report.pairs += 1
        yield {"translation": pair}
    report.log()


def stream_file(path, source_lang: str, target_lang: str, file_format: str | None = None) -> IterableDataset:
    fmt = data.file_format_of(path, file_format)
    data._check_file(path)
    kwargs = dict(path=str(path), source_lang=source_lang, target_lang=target_lang, fmt=fmt)
    return IterableDataset.from_generator(_stream_rows, features=data.translation_features(source_lang, target_lang),
                                          gen_kwargs=kwargs)


def held_out(stream: IterableDataset, count: int, source_lang: str, target_lang: str) -> Dataset:
    """The first `count` pairs of `stream`, as a small in-memory dataset."""
    rows = [row["translation"] for row in islice(iter(stream), count)]
    if not rows:
        raise ValueError("the training stream holds no usable sentence pair")
    return data.pairs_to_dataset(rows, source_lang, target_lang)


def load_streaming_splits(data_args, cache_dir: str | None = None) -> DatasetDict:
    """`train` as an `IterableDataset`; `validation` and `test` as (small) map-style datasets."""
    src, tgt = data_args.source_lang, data_args.target_lang
    if data_args.dataset_name:
        hub = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, streaming=True,
                                    cache_dir=cache_dir)
        train = hub["train"]
        others = {split: Dataset.from_list(list(hub[split]), features=hub[split].features)
                  for split in ("validation", "test") if split in hub}
    elif data_args.train_file:
        train, others = stream_file(data_args.train_file, src, tgt, data_args.file_format), {}
    else:
        raise ValueError("--streaming needs --dataset_name or --train_file")
    for split, path in (("validation", data_args.validation_file), ("test", data_args.test_file)):
        if path:
            others[split], report = data.read_parallel_file(path, src, tgt, data_args.file_format, cache_dir)
            report.log()
    if "validation" not in others:
        size = data_args.validation_split_size
        if size is not None and size < 1:
            raise ValueError("with --streaming, --validation_split_size is a count of pairs (a stream has no size)")
        count = int(size) if size is not None else data.MAX_CARVED_VALIDATION
        others["validation"] = held_out(train, count, src, tgt)
        train = train.skip(count)
        logger.info("streaming: the first %d pairs of the stream are held out for validation", count)
    if data_args.max_train_samples is not None:
        train = train.take(data_args.max_train_samples)
    return DatasetDict({"train": train, **others})
