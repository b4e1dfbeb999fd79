"""Parallel text as a `datasets.DatasetDict` whose one column is `translation`: `{source_lang: ..., target_lang: ...}`.

Sources, by what the training script is given:
- nothing: `number_words_dataset()`, English number words -> French, made offline with `num2words`;
- `dataset_name`: a Hub dataset with a `translation` column (`datasets.load_dataset`);
- local files: JSON lines, CSV/TSV with a header of language codes, or Tatoeba/manythings text
  (`English<TAB>other[<TAB>attribution]`), chosen by extension unless `file_format` says otherwise;
- `tatoeba_protocol_splits()`: d2l's fra-eng file cut into fixed train/validation/test splits, for comparable results.

Malformed lines (no tab, an empty side, bytes that are not UTF-8, ...) are skipped, counted in a `ReadReport` and
logged in one line; they never stop a run. A file with no usable pair, an unknown language or a missing file does.

Local files are read line by line into an Arrow file in the `datasets` cache folder (`write_arrow`, 100,000 pairs at a
time), never held whole as Python objects: the dataset is memory-mapped, so memory stays flat whatever the corpus
size. The cache is keyed on the file's path, size and modification time and the reading options; a second run on the
same file reuses it (and its `ReadReport`, kept beside it) without reading the file again.
"""

import csv
import hashlib
import itertools
import json
import logging
import math
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, Features, Translation
from datasets.fingerprint import Hasher

from .shuffle import Permutation

logger = logging.getLogger(__name__)

FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "tatoeba"}

# d2l's Tatoeba protocol: these numbers and the seed define the splits; change them and results stop being comparable.
TATOEBA_SEED = 1234
TATOEBA_TEST_SIZE = 2000
TATOEBA_VALIDATION_SIZE = 1000

# A validation split carved off train: 5% of it, at most this many pairs (decoding it is the cost of evaluation).
VALIDATION_FRACTION = 0.05
MAX_CARVED_VALIDATION = 3000
READER_VERSION = 1  # part of the Arrow cache key: bump it when a reader changes what it keeps


# ----------------------------------------------------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class ReadReport:
    """What reading one file kept and skipped: `skipped[reason]` counts lines, `lines[reason]` their first few
    1-based line numbers, so that a user can find and fix them."""

    path: str
    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)
    lines: dict = field(default_factory=dict)
    max_lines: int = 5

    def skip(self, reason: str, line_no: int) -> None:
        self.skipped[reason] += 1
        shown = self.lines.setdefault(reason, [])
        if len(shown) < self.max_lines:
            shown.append(line_no)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line for the log, e.g. `train.txt: 998 pairs, 2 lines skipped (no tab: 2, lines 4, 9)`."""
        text = f"{self.path}: {self.pairs} pairs"
        if self.num_skipped:
            parts = [f"{r}: {n}, line{'s' if n > 1 else ''} {', '.join(map(str, self.lines[r]))}"
                     + (", ..." if n > len(self.lines[r]) else "") for r, n in self.skipped.items()]
            text += f", {self.num_skipped} lines skipped ({'; '.join(parts)})"
        return text

    def log(self) -> None:
        (logger.warning if self.num_skipped else logger.info)(self.summary())

    def to_json(self) -> str:
        return json.dumps({"path": self.path, "pairs": self.pairs, "skipped": self.skipped, "lines": self.lines})

    @classmethod
    def from_json(cls, text: str) -> "ReadReport":
        fields = json.loads(text)
        return cls(fields["path"], fields["pairs"], Counter(fields["skipped"]), fields["lines"])


def clean_text(text: str) -> str:
    """d2l's cleaning: no-break spaces (U+202F, U+00A0, common in French) become spaces; outer whitespace goes."""
    return text.replace("\u202f", " ").replace("\xa0", " ").strip()


def _is_utf8(text: str) -> bool:
    # Text decoded with errors="surrogateescape" keeps undecodable bytes as lone surrogates, which cannot re-encode.
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _check_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parallel data file not found: {path}")
    return path


def _numbered_lines(path) -> Iterator[tuple[int, str, str]]:
    """(1-based line number, cleaned line, raw line) for every line of `path` not empty once cleaned, one at a time.
    Bytes that are not UTF-8 are kept as lone surrogates (`surrogateescape`), so that `_is_utf8` can name the line."""
    with open(_check_file(path), "rb") as f:
        for line_no, data in enumerate(f, 1):
            raw = data.decode("utf-8", errors="surrogateescape").removesuffix("\n")
            if line_no == 1:
                raw = raw.removeprefix("\ufeff")
            if line := clean_text(raw):
                yield line_no, line, raw


def _lines(path) -> list[tuple[int, str, str]]:
    """`_numbered_lines` as a list (the Tatoeba protocol indexes them)."""
    return list(_numbered_lines(path))


def _other_language(source_lang: str, target_lang: str) -> str:
    """The Tatoeba format holds English first and one other language second: return that other language."""
    if sorted([source_lang, target_lang]).count("en") != 1:
        raise ValueError(
            "the Tatoeba text format holds English ('en', first column) and one other language (second column); "
            f"got source_lang={source_lang!r}, target_lang={target_lang!r}"
        )
    return target_lang if source_lang == "en" else source_lang


def _tatoeba_pairs(numbered_lines, other: str, report: ReadReport) -> Iterator[dict]:
    for line_no, line, raw in numbered_lines:
        fields = line.split("\t")
        if not _is_utf8(line):
            report.skip("not UTF-8", line_no)
        elif len(fields) < 2:  # a tab stripped off the edge of the line means a side was empty
            report.skip("empty side" if "\t" in raw else "no tab", line_no)
        elif not (english := clean_text(fields[0])) or not (foreign := clean_text(fields[1])):
            report.skip("empty side", line_no)
        else:
            yield {"en": english, other: foreign}


def _json_pairs(path, source_lang, target_lang, report: ReadReport) -> Iterator[dict]:
    present = set()
    for line_no, line, _ in _numbered_lines(path):
        if not _is_utf8(line):
            report.skip("not UTF-8", line_no)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            report.skip("not JSON", line_no)
            continue
        translation = record.get("translation") if isinstance(record, dict) else None
        if not isinstance(translation, dict):
            report.skip("no translation object", line_no)
            continue
        present.update(translation)
        texts = [translation.get(lang) for lang in (source_lang, target_lang)]
        if any(t is None for t in texts):
            report.skip("missing language", line_no)
        elif not all(isinstance(t, str) and clean_text(t) for t in texts):
            report.skip("empty side", line_no)
        else:
            yield {source_lang: clean_text(texts[0]), target_lang: clean_text(texts[1])}
    if present:
        _check_known(path, [source_lang, target_lang], sorted(present))


def _csv_columns(path, source_lang, target_lang, delimiter: str) -> list[int]:
    """The columns of the two languages, from the header; `ValueError` naming the languages present if one is not."""
    with open(_check_file(path), encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        header = [clean_text(h) for h in next(csv.reader(f, delimiter=delimiter), [])]
    _check_known(path, [source_lang, target_lang], header)
    return [header.index(source_lang), header.index(target_lang)]


def _csv_pairs(path, source_lang, target_lang, delimiter: str, report: ReadReport) -> Iterator[dict]:
    columns = _csv_columns(path, source_lang, target_lang, delimiter)
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(reader, None)  # the header
        yield from _csv_rows(reader, columns, source_lang, target_lang, report)


def _csv_rows(reader, columns, source_lang, target_lang, report: ReadReport) -> Iterator[dict]:
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if not all(_is_utf8(cell) for cell in row):
            report.skip("not UTF-8", reader.line_num)
        elif len(row) <= max(columns):
            report.skip("missing field", reader.line_num)
        elif not all(texts := [clean_text(row[c]) for c in columns]):
            report.skip("empty side", reader.line_num)
        else:
            yield {source_lang: texts[0], target_lang: texts[1]}


def _check_known(where, wanted, present) -> None:
    for lang in wanted:
        if lang not in present:
            raise ValueError(f"{where}: language {lang!r} not found; languages present: {', '.join(present) or 'none'}")


def file_format_of(path, file_format: str | None = None) -> str:
    """`file_format` if given, else the format its extension names (.json/.jsonl, .csv, .tsv, .txt = Tatoeba)."""
    if file_format is not None:
        if file_format not in set(FORMATS.values()):
            raise ValueError(f"unknown file_format {file_format!r}; choose one of {sorted(set(FORMATS.values()))}")
        return file_format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: cannot tell the format from {suffix!r}; pass file_format= one of "
                         f"{sorted(set(FORMATS.values()))}")
    return FORMATS[suffix]


def pairs_to_dataset(pairs: list[dict], source_lang: str, target_lang: str) -> Dataset:
    """A `Dataset` with one `translation` column (a `datasets.Translation` feature) from `{lang: text}` dicts."""
    return Dataset.from_dict({"translation": pairs}, features=translation_features(source_lang, target_lang))


def iter_pairs(path, source_lang: str, target_lang: str, fmt: str, report: ReadReport) -> Iterator[dict]:
    """The `{lang: text}` pairs of one file, read a line at a time; skipped lines go into `report`."""
    if fmt == "tatoeba":
        return _tatoeba_pairs(_numbered_lines(path), _other_language(source_lang, target_lang), report)
    if fmt == "json":
        return _json_pairs(path, source_lang, target_lang, report)
    return _csv_pairs(path, source_lang, target_lang, "," if fmt == "csv" else "\t", report)


def write_arrow(pairs: Iterator[dict], path: Path, source_lang: str, target_lang: str, batch: int = 100_000) -> int:
    """Write `{lang: text}` pairs to a datasets Arrow file with a `translation` column, `batch` pairs at a time (the
    columnar conversion of a batch costs a tenth of datasets' per-example writer). Returns the number of pairs."""
    from datasets.arrow_writer import ArrowWriter

    langs = [source_lang, target_lang]
    written = 0
    with ArrowWriter(features=translation_features(source_lang, target_lang), path=str(path)) as writer:
        while chunk := list(itertools.islice(pairs, batch)):
            sides = [pa.array([pair[lang] for pair in chunk], type=pa.string()) for lang in langs]
            writer.write_table(pa.table({"translation": pa.StructArray.from_arrays(sides, names=langs)}))
            written += len(chunk)
        writer.finalize()
    return written


def translation_features(source_lang: str, target_lang: str) -> Features:
    return Features({"translation": Translation(languages=[source_lang, target_lang])})


def read_cache_key(path, source_lang, target_lang, fmt) -> str:
    """What the Arrow cache of a file is keyed on: its absolute path, size and modification time, the reading options
    and the readers' version. A changed file, or a file moved to another path, is read again."""
    stat = Path(path).stat()
    ident = [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, source_lang, target_lang, fmt, READER_VERSION]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:20]


def read_parallel_file(path, source_lang: str, target_lang: str, file_format: str | None = None,
                       cache_dir: str | None = None):
    """
    Read one file of sentence pairs into the Arrow cache (`cache_dir`, else datasets' own), or reuse the cache a run
    on the same file wrote. Returns `(Dataset, ReadReport)`: a memory-mapped dataset, and the lines kept and skipped
    (the same report when the cache is reused). Raises `FileNotFoundError` for a missing file and `ValueError` for an
    unknown language or no usable pair.
    """
    fmt = file_format_of(path, file_format)
    _check_file(path)
    if fmt == "tatoeba":
        _other_language(source_lang, target_lang)
    elif fmt in ("csv", "tsv"):
        _csv_columns(path, source_lang, target_lang, "," if fmt == "csv" else "\t")
    key = read_cache_key(path, source_lang, target_lang, fmt)
    folder = Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "hf_gru_seq2seq_reads"
    folder.mkdir(parents=True, exist_ok=True)
    arrow_path, report_path = folder / f"{key}.arrow", folder / f"{key}.json"
    cached = report_path.is_file() and arrow_path.is_file()  # the report is written last
    if not cached:
        report = ReadReport(str(path))
        temporary = folder / f"{key}.{os.getpid()}.tmp.arrow"
        try:
            report.pairs = write_arrow(iter_pairs(path, source_lang, target_lang, fmt, report), temporary,
                                       source_lang, target_lang)
            if not report.pairs:
                raise ValueError(f"{path}: no usable sentence pair ({report.summary()})")
            os.replace(temporary, arrow_path)
        finally:
            temporary.unlink(missing_ok=True)
        report_path.write_text(report.to_json(), encoding="utf-8")
    report = ReadReport.from_json(report_path.read_text(encoding="utf-8"))
    dataset = Dataset.from_file(str(arrow_path))
    if cached:
        logger.info("%s: reused the Arrow cache of an earlier run (not read again): %s", path, arrow_path)
    return dataset, report


# ----------------------------------------------------------------------------------------------------------------
# Splits and sizes
# ----------------------------------------------------------------------------------------------------------------


def carved_validation_size(num_pairs: int, validation_size: int | float | None = None) -> int | float:
    """The size of a validation split carved off `num_pairs`: `validation_size` as given (a fraction below 1, else a
    count), or by default 5% of the pairs but at most `MAX_CARVED_VALIDATION`, so that evaluating stays cheap however
    big the corpus."""
    if validation_size is None:
        return max(1, min(round(VALIDATION_FRACTION * num_pairs), MAX_CARVED_VALIDATION))
    return int(validation_size) if validation_size >= 1 else validation_size


def split_validation(train: Dataset, validation_size: int | float | None = None, seed: int = 42) -> DatasetDict:
    """
    Carve a validation split off `train` (a count, a fraction rounded up, or by default `carved_validation_size`),
    the same one for the same seed. The held-out pairs are the first of a seeded `Permutation` (memory for the sample
    only); train keeps the rest in file order, through a memory-mapped index written a batch at a time
    (`Dataset.filter`), so that carving 3,000 pairs off 40M holds no array of 40M indices. The samplers shuffle.
    """
    n = len(train)
    size = carved_validation_size(n, validation_size)
    count = math.ceil(size * n) if isinstance(size, float) else size
    if not 0 < count < n:
        raise ValueError(f"a validation split of {validation_size} leaves no pair to train on or none to validate "
                         f"on, of {n} pairs")
    held = np.sort(Permutation(n, seed)[0:count])

    def kept(indices):
        at = np.searchsorted(held, indices)
        return (at == len(held)) | (held[np.minimum(at, len(held) - 1)] != indices)

    rest = train.filter(lambda _, indices: kept(np.asarray(indices)).tolist(), with_indices=True, batched=True,
                        batch_size=1 << 16, writer_batch_size=1 << 16, input_columns=[train.column_names[0]],
                        new_fingerprint=Hasher.hash([train._fingerprint, "carved train", held]))
    return DatasetDict(train=rest, validation=train.select(held))


def truncate(dataset: Dataset, max_samples: int | None) -> Dataset:
    """The first `max_samples` rows (all of them when None), for quick runs and debugging."""
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples < 0:
        raise ValueError(f"max_samples must be >= 0, got {max_samples}")
    return dataset.select(range(max_samples))


def apply_max_samples(raw: DatasetDict, max_train_samples=None, max_eval_samples=None, max_predict_samples=None):
    """`truncate` the train, validation and test splits (those present) as run_translation.py's flags do."""
    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_predict_samples}
    for name, ds in raw.items():
        if limits.get(name) is not None and limits[name] < len(ds):
            logger.info("%s split: the first %d of %d pairs are used", name, limits[name], len(ds))
    return DatasetDict({name: truncate(ds, limits.get(name)) for name, ds in raw.items()})


def check_languages(dataset: Dataset, source_lang: str, target_lang: str, where: str = "dataset") -> None:
    """Raise `ValueError` unless `dataset` has a `translation` column holding both languages."""
    if isinstance(dataset, datasets.IterableDataset) and dataset.features is None:  # a stream without features
        first = next(iter(dataset), {})
        if "translation" not in first:
            raise ValueError(f"{where}: no 'translation' column; columns: {', '.join(first)}")
        _check_known(where, [source_lang, target_lang], sorted(first["translation"]))
        return
    if "translation" not in dataset.column_names:
        raise ValueError(f"{where}: no 'translation' column; columns: {', '.join(dataset.column_names)}")
    feature = dataset.features["translation"]
    if isinstance(feature, Translation):
        present = list(feature.languages)
    else:
        present = sorted(dataset[0]["translation"]) if len(dataset) else []
    _check_known(where, [source_lang, target_lang], present)


# ----------------------------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------------------------


def load_hub_dataset(name: str, config: str | None, source_lang: str, target_lang: str, **kwargs) -> DatasetDict:
    """`datasets.load_dataset(name, config)`, checked to carry a `translation` column with both languages."""
    raw = datasets.load_dataset(name, config, **kwargs)
    for split, ds in raw.items():
        check_languages(ds, source_lang, target_lang, f"{name} [{split}]")
    return raw


def load_raw_datasets(
    source_lang: str = "en",
    target_lang: str = "fr",
    *,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_file=None,
    validation_file=None,
    test_file=None,
    file_format: str | None = None,
    validation_split_size: int | float | None = None,
    seed: int = 42,
    cache_dir: str | None = None,
) -> DatasetDict:
    """
    The raw splits the training script trains and evaluates on: a Hub dataset if `dataset_name` is given, else the
    local files given (read into the Arrow cache in `cache_dir`), else the built-in number-words data. A validation
    split is carved (seeded, `carved_validation_size`) from train when none is given. Each file's `ReadReport`
    summary is logged.
    """
    if dataset_name is not None:
        raw = load_hub_dataset(dataset_name, dataset_config_name, source_lang, target_lang, cache_dir=cache_dir)
    elif train_file or validation_file or test_file:
        raw = DatasetDict()
        for split, path in [("train", train_file), ("validation", validation_file), ("test", test_file)]:
            if path:
                raw[split], report = read_parallel_file(path, source_lang, target_lang, file_format, cache_dir)
                report.log()
    else:
        if {source_lang, target_lang} != {"en", "fr"}:
            raise ValueError("the built-in number-words data is English<->French; pass dataset_name or train_file "
                             f"for source_lang={source_lang!r}, target_lang={target_lang!r}")
        return number_words_dataset()  # fixed splits, whatever the training seed
    if "train" in raw and "validation" not in raw:
        carved = split_validation(raw["train"], validation_split_size, seed)
        raw["train"], raw["validation"] = carved["train"], carved["validation"]
    return raw


def tatoeba_protocol_indices(num_lines: int) -> dict[str, list[int]]:
    """The fixed protocol over `num_lines` non-empty lines: shuffle `range(N)` with `random.Random(1234)`; the first
    2000 are test, the next 1000 validation, the rest train (each sorted, so splits keep file order)."""
    if num_lines <= TATOEBA_TEST_SIZE + TATOEBA_VALIDATION_SIZE:
        raise ValueError(f"the Tatoeba protocol needs more than "
                         f"{TATOEBA_TEST_SIZE + TATOEBA_VALIDATION_SIZE} non-empty lines, got {num_lines}")
    perm = list(range(num_lines))
    random.Random(TATOEBA_SEED).shuffle(perm)
    cut = TATOEBA_TEST_SIZE + TATOEBA_VALIDATION_SIZE
    return {
        "train": sorted(perm[cut:]),
        "validation": sorted(perm[TATOEBA_TEST_SIZE:cut]),
        "test": sorted(perm[:TATOEBA_TEST_SIZE]),
    }


def tatoeba_protocol_splits(path, source_lang: str = "en", target_lang: str = "fr") -> DatasetDict:
    """
    d2l's fra-eng file (or any Tatoeba/manythings file) split by the fixed protocol, so results are comparable:
    lines are cleaned (`clean_text`), empty ones dropped, and the N that remain are indexed 0..N-1 and split by
    `tatoeba_protocol_indices(N)`. Malformed lines keep their index (the splits do not move) but are skipped and
    logged; on d2l's file there are none, giving 2000 test, 1000 validation and N - 3000 train pairs.
    """
    other = _other_language(source_lang, target_lang)
    lines = _lines(path)
    raw = DatasetDict()
    for split, indices in tatoeba_protocol_indices(len(lines)).items():
        report = ReadReport(f"{path} [{split}]")
        pairs = list(_tatoeba_pairs([lines[i] for i in indices], other, report))
        report.pairs = len(pairs)
        report.log()
        if not pairs:
            raise ValueError(f"{path}: no usable sentence pair in the {split} split ({report.summary()})")
        raw[split] = pairs_to_dataset(pairs, source_lang, target_lang)
    return raw


# ----------------------------------------------------------------------------------------------------------------
# Built-in data: number words, English -> French
# ----------------------------------------------------------------------------------------------------------------


def number_to_words(number: int, lang: str) -> str:
    """`num2words` spelling; English drops the British "and" and the commas ("three hundred forty-two thousand
    one"), so each number has one spelling and no punctuation the model must learn. French is kept as is."""
    from num2words import num2words

    text = num2words(number, lang=lang)
    if lang == "en":
        text = " ".join(w for w in text.replace(",", " ").split() if w != "and")
    return text


def basic_numbers(max_number: int = 1_000_000) -> list[int]:
    """The numbers a demo is tried on first, all of them trained on: every number from 0 to 1,000, the round hundreds
    below 10,000 and the round thousands below `max_number`, in increasing order."""
    basics = set(range(1001)) | set(range(100, min(10_000, max_number), 100)) | set(range(1000, max_number, 1000))
    return sorted(basics)


def _draw_numbers(count: int, low: int, high: int, rng: random.Random, exclude=frozenset()) -> list[int]:
    """`count` distinct numbers in [low, high) outside `exclude`, spread evenly over their digit counts (so that
    four-digit numbers are not drowned by six-digit ones); a band too small to fill passes its share to longer ones."""
    bands, first = [], low
    while low < high:
        top = min(max(10, 10 * low), high)
        bands.append((low, top))
        low = top
    numbers, left = [], count
    for i, (start, stop) in enumerate(bands):
        pool = [n for n in range(start, stop) if n not in exclude] if exclude else range(start, stop)
        take = min(left // (len(bands) - i), len(pool))
        numbers += rng.sample(pool, take)
        left -= take
    if left:
        raise ValueError(f"cannot draw {count} distinct numbers in [{first}, {high})")
    rng.shuffle(numbers)
    return numbers


def number_words_dataset(
    num_examples: int = 26_000,
    max_number: int = 1_000_000,
    validation_size: int = 1_000,
    test_size: int = 1_000,
    seed: int = 0,
    basic_repeats: int = 3,
) -> DatasetDict:
    """
    The offline default task: `num_examples` distinct numbers below `max_number`, spelt in English and French
    (`number_to_words`); columns `translation` ({"en", "fr"}) and `number`.

    Train holds every number of `basic_numbers()` (0 to 1,000, the round hundreds and thousands: what people try
    first) `basic_repeats` times, and numbers drawn above 1,000 with `seed`; validation (`validation_size`) and test
    (`test_size`) are drawn above 1,000 too, and no number is in two splits. The defaults (28,160 training pairs;
    1-7 English and 1-11 French words, ~100 distinct words a language) are small enough to learn in a minute on a
    CPU.
    """
    basics = basic_numbers(max_number)
    drawn = num_examples - len(basics)
    if validation_size + test_size >= drawn:
        raise ValueError(f"validation_size + test_size ({validation_size + test_size}) must be below the "
                         f"{drawn} numbers drawn (num_examples {num_examples} - {len(basics)} basic numbers)")
    numbers = _draw_numbers(drawn, 1001, max_number, random.Random(seed), exclude=frozenset(basics))
    held_out = test_size + validation_size
    train = basics * basic_repeats + numbers[held_out:]
    random.Random(seed).shuffle(train)
    cuts = {"train": train, "validation": numbers[test_size:held_out], "test": numbers[:test_size]}
    features = Features({"translation": Translation(languages=["en", "fr"]), "number": datasets.Value("int64")})
    return DatasetDict({
        split: Dataset.from_dict({
            "translation": [{"en": number_to_words(n, "en"), "fr": number_to_words(n, "fr")} for n in nums],
            "number": nums,
        }, features=features)
        for split, nums in cuts.items()
    })
