"""A tokenizer trained on the training split, and the tokenized datasets the Seq2SeqTrainer reads.

One vocabulary is shared by source and target (trained on both sides of every pair): simple, lets names and numbers
copy across, and matches a model config with `decoder_vocab_size == vocab_size`. Special tokens are fixed to the
model config's defaults: `<pad>`=0, `<s>`=1 (decoder start), `</s>`=2 (appended to every sequence), `<unk>`=3.

Normalisation (both kinds): NFKC (no-break and other compatibility spaces become spaces, ligatures and full-width
forms their plain letters), runs of whitespace become one space, outer whitespace is stripped. Case is kept unless
`lowercase=True` (d2l lowercases).

- "bpe" (default): byte-level BPE (GPT-2 style, with a prefix space so a word is the same token at the start of a
  sentence and inside it). Every byte is in the vocabulary, so there is no `<unk>` and
  `decode(encode(text), skip_special_tokens=True) == normalize(text)` exactly, for any text.
- "word": d2l style words: split at spaces, and the punctuation `. , ! ? ; : " « » ( ) ¡ ¿ …` is split off the
  word it touches; apostrophes and hyphens stay inside words ("l'homme", "quarante-deux"). Each token records
  whether a space preceded it (SentencePiece's "▁"), so decoding puts spaces back where they were ("Cours !" and
  "Hello, world!" both survive). Lossy in one way: words outside the vocabulary become `<unk>` and vanish when
  special tokens are skipped (so BLEU on references decoded from labels is then too kind: score raw references).
  A word right after attached punctuation, "(enfin", is a token without "▁": a second vocabulary entry.
"""

import gc
import itertools
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, IterableDataset, concatenate_datasets
from datasets.fingerprint import Hasher
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .data import check_languages
from .shuffle import Permutation

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]  # ids 0, 1, 2, 3: the GRUSeq2SeqConfig defaults
WORD_PUNCTUATION = r'[.,!?;:"«»()¡¿…]'
SPACE = "▁"
LENGTH_COLUMNS = ("length", "target_length")  # tokens of input_ids and of labels, stored by tokenize_dataset
TOKENIZE_BATCH = 10_000  # pairs a call of the fast path: fewer, bigger Arrow writes
PAIRS_PER_WORKER = 2_000_000  # a tokenizing worker is replaced after this many pairs (its memory creeps up)
TOKENIZE_VERSION = 3  # part of the tokenized cache's fingerprint: bump it when `tokenize_dataset` changes its output

logger = logging.getLogger(__name__)


def build_normalizer(lowercase: bool = False) -> normalizers.Normalizer:
    """NFKC, whitespace runs -> one space, strip; then lowercase if asked."""
    steps = [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    return normalizers.Sequence(steps + ([normalizers.Lowercase()] if lowercase else []))


def build_untrained(model_type: str = "bpe", lowercase: bool = False) -> Tokenizer:
    """An empty `tokenizers.Tokenizer` of the given kind ("bpe" or "word") with its normalizer, pre-tokenizer and
    decoder set; `train_tokenizer` fills the vocabulary."""
    if model_type == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        # ByteLevel decoding restores the bytes; Strip then drops the one prefix space the pre-tokenizer added.
        tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
    elif model_type == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(f"{SPACE}?{WORD_PUNCTUATION}"), behavior="isolated"),
        ])
        tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    else:
        raise ValueError(f"unknown tokenizer model_type {model_type!r}; choose 'bpe' or 'word'")
    tok.normalizer = build_normalizer(lowercase)
    return tok


def text_iterator(dataset: Dataset, source_lang: str, target_lang: str, batch_size: int = 1000) -> Iterator[list]:
    """Batches of sentences from both sides of `dataset`'s `translation` column (the shared vocabulary's corpus)."""
    for batch in dataset.iter(batch_size=batch_size):
        pairs = batch["translation"]
        yield [p[source_lang] for p in pairs] + [p[target_lang] for p in pairs]


def training_sample(dataset: Dataset | IterableDataset, max_pairs: int | None, seed: int = 0):
    """At most `max_pairs` rows of `dataset`, drawn without replacement with `seed` and kept in file order (the whole
    dataset when it holds no more). Reading them goes through the memory-mapped file, not a copy. Of a stream: the
    first `max_pairs` of its seeded buffer shuffle (10,000 pairs)."""
    if isinstance(dataset, IterableDataset):
        return dataset if max_pairs is None else dataset.shuffle(seed=seed, buffer_size=10_000).take(max_pairs)
    if max_pairs is None or len(dataset) <= max_pairs:
        return dataset
    indices = Permutation(len(dataset), seed)[0:max_pairs]  # a seeded sample, without an array of every index
    return dataset.select(np.sort(indices))


def train_tokenizer(
    dataset: Dataset,
    source_lang: str,
    target_lang: str,
    *,
    model_type: str = "bpe",
    vocab_size: int = 8000,
    min_frequency: int = 2,
    lowercase: bool = False,
    max_pairs: int | None = None,
    seed: int = 0,
) -> PreTrainedTokenizerFast:
    """
    Train one shared vocabulary of at most `vocab_size` tokens (BPE merges or words seen at least `min_frequency`
    times; BPE always holds the 256 bytes) on both sides of `dataset` (the training split), or of a seeded sample of
    `max_pairs` of its pairs (`training_sample`), and wrap it for Transformers. Save it with `save_pretrained(dir)`;
    `AutoTokenizer.from_pretrained(dir)` loads it back.
    """
    check_languages(dataset, source_lang, target_lang, "tokenizer training data")
    dataset = training_sample(dataset, max_pairs, seed)
    tok = build_untrained(model_type, lowercase)
    common = dict(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS)
    common["show_progress"] = False
    if model_type == "bpe":
        trainer = trainers.BpeTrainer(initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **common)
    else:
        trainer = trainers.WordLevelTrainer(**common)
    tok.train_from_iterator(text_iterator(dataset, source_lang, target_lang), trainer, length=None)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """Append `</s>` to every sequence and wrap as a `PreTrainedTokenizerFast` with pad/bos/eos/unk set."""
    ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
    if ids != list(range(len(SPECIAL_TOKENS))):
        raise ValueError(f"special tokens {SPECIAL_TOKENS} must have ids 0-3, got {ids}")
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, ids[2])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,  # the decoder already restores spacing; cleanup would undo "Cours !"
        model_input_names=["input_ids", "attention_mask"],
        padding_side="right",
    )


def tokenize_dataset(
    raw_datasets: DatasetDict | Dataset,
    tokenizer: PreTrainedTokenizerFast,
    source_lang: str,
    target_lang: str,
    max_source_length: int | None = 128,
    max_target_length: int | None = 128,
    num_proc: int | None = None,
    load_from_cache_file: bool = True,
) -> DatasetDict | Dataset:
    """
    `input_ids`, `attention_mask` and `labels` for every pair (unpadded: `DataCollatorForSeq2Seq` pads each batch),
    and their lengths `length` (source tokens: what the Trainer's `group_by_length` reads) and `target_length`, so
    that batching by length needs no pass over the data. Sequences longer than the limits are cut before their final
    `</s>`, which always stays. Pairs whose source or target is empty after normalisation are dropped. All original
    columns are removed. Batched, in `num_proc` processes; a dataset read from files is written to (and on a second
    run with the same tokenizer, read back from) the datasets cache beside it.
    """
    for name, limit in [("max_source_length", max_source_length), ("max_target_length", max_target_length)]:
        if limit is not None and limit < 2:
            raise ValueError(f"{name} must be at least 2 (one token and </s>), got {limit}")

    def preprocess(batch):
        sources = [pair[source_lang] for pair in batch["translation"]]
        targets = [pair[target_lang] for pair in batch["translation"]]
        model_inputs = tokenizer(sources, max_length=max_source_length, truncation=max_source_length is not None)
        labels = tokenizer(text_target=targets, max_length=max_target_length, truncation=max_target_length is not None)
        pairs = zip(model_inputs["input_ids"], labels["input_ids"], strict=True)
        keep = [i for i, (s, t) in enumerate(pairs) if len(s) > 1 and len(t) > 1]  # more than the lone </s>
        return {
            "input_ids": [model_inputs["input_ids"][i] for i in keep],
            "attention_mask": [model_inputs["attention_mask"][i] for i in keep],
            "labels": [labels["input_ids"][i] for i in keep],
            "length": [len(model_inputs["input_ids"][i]) for i in keep],
            "target_length": [len(labels["input_ids"][i]) for i in keep],
        }

    def restoring(function):
        """`function` run inside `truncation_restored`: a stream is tokenized later, while the model trains."""
        def wrapped(batch):
            with truncation_restored(tokenizer):
                return function(batch)
        return wrapped

    # The fingerprint names what decides the output, so that a second run (a new tokenizer object, the same
    # vocabulary) finds the cache: hashing the tokenizer object itself is slow and not stable across runs.
    options = [tokenizer.backend_tokenizer.to_str(), source_lang, target_lang, max_source_length, max_target_length,
               TOKENIZE_VERSION]

    def run(ds: Dataset, split: str) -> Dataset:
        check_languages(ds, source_lang, target_lang, f"{split} split")
        if isinstance(ds, IterableDataset):  # tokenized as it is read, during training
            return ds.map(restoring(preprocess), batched=True, remove_columns=ds.column_names or ["translation"])
        fingerprint = Hasher.hash([ds._fingerprint, *options])
        parts = math.ceil(len(ds) / (num_proc * PAIRS_PER_WORKER)) if num_proc and num_proc > 1 else 1
        if load_from_cache_file and _cached(ds, fingerprint if parts == 1 else Hasher.hash([fingerprint, 0, parts])):
            logger.info("%s split: reusing the tokenized cache of an earlier run (not tokenized again)", split)
        fast = _backend_only(tokenizer)
        if fast:  # Arrow batches in and out; the result is returned unformatted, as `preprocess`'s is
            ds = ds.select_columns(["translation"]).with_format("arrow")
        function = ArrowTokenizer(tokenizer.backend_tokenizer, source_lang, target_lang, max_source_length,
                                  max_target_length) if fast else preprocess
        pieces = []
        for part in range(parts):  # fresh workers for each part: a worker's memory creeps up as it runs
            piece = ds.shard(parts, part, contiguous=True) if parts > 1 else ds
            with shared_with_workers(num_proc):
                pieces.append(piece.map(
                    function,
                    batched=True,
                    batch_size=TOKENIZE_BATCH if fast else 1000,
                    writer_batch_size=TOKENIZE_BATCH if fast else 1000,  # a record batch a call (metadata in memory)
                    remove_columns=ds.column_names,
                    num_proc=num_proc,
                    load_from_cache_file=load_from_cache_file,
                    new_fingerprint=fingerprint if parts == 1 else Hasher.hash([fingerprint, part, parts]),
                    desc=f"Tokenizing the {split} split" + (f" (part {part + 1} of {parts})" if parts > 1 else ""),
                ))
        tokenized = pieces[0] if parts == 1 else concatenate_datasets(pieces)
        return tokenized.with_format(None) if fast else tokenized

    with truncation_restored(tokenizer):
        if isinstance(raw_datasets, Dataset):
            return run(raw_datasets, "given")
        return DatasetDict({split: run(ds, split) for split, ds in raw_datasets.items()})


@contextmanager
def shared_with_workers(num_proc: int | None):
    """`gc.freeze()` around forking tokenizing workers. A forked worker shares its parent's memory until it writes to
    a page; the garbage collector writes into the header of every object it visits, so without this each worker
    copies, over a long run, more and more of the parent's heap (torch, transformers: about 450 MB), and the memory of
    a run grows with the corpus. Frozen objects are not visited."""
    if not num_proc or num_proc < 2:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _backend_only(tokenizer) -> bool:
    """Whether calling `tokenizer` is exactly calling its `tokenizers` backend: a plain fast tokenizer (as
    `train_tokenizer` makes) with no target mode of its own. Then `ArrowTokenizer` gives the same ids, faster."""
    return (type(tokenizer) is PreTrainedTokenizerFast and not hasattr(tokenizer, "_switch_to_target_mode")
            and not getattr(tokenizer, "split_special_tokens", False))


class ArrowTokenizer:
    """`tokenize_dataset`'s batch function for plain fast tokenizers: Arrow in, Arrow out, calling the `tokenizers`
    backend directly (the Python wrapper's per-sentence conversions cost as much as the tokenizing). Gives what
    `tokenizer(sources, max_length=..., truncation=True)` and `tokenizer(text_target=...)` give: the backend's
    truncation keeps room for the `</s>` its post-processor appends."""

    def __init__(self, backend: Tokenizer, source_lang, target_lang, max_source_length, max_target_length):
        self.backend, self.langs = backend, (source_lang, target_lang)
        self.limits = (max_source_length, max_target_length)

    def _encode(self, texts: list[str], limit: int | None) -> list[list[int]]:
        if limit is None:
            self.backend.no_truncation()
        else:
            self.backend.enable_truncation(max_length=limit)
        encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)  # no offsets: faster
        return [encoding.ids for encoding in encode(texts)]

    def __call__(self, batch: pa.Table) -> pa.Table:
        translation = batch.column("translation").combine_chunks()
        sides = [self._encode(translation.field(lang).to_pylist(), limit)
                 for lang, limit in zip(self.langs, self.limits)]
        lengths = [np.fromiter(map(len, ids), dtype=np.int32, count=len(ids)) for ids in sides]
        keep = (lengths[0] > 1) & (lengths[1] > 1)  # more than the lone </s>
        if not keep.all():
            sides = [[ids for ids, k in zip(side, keep) if k] for side in sides]
            lengths = [length[keep] for length in lengths]
        source, labels = (_list_array(ids, length) for ids, length in zip(sides, lengths))
        ones = pa.ListArray.from_arrays(source.offsets, pa.array(np.ones(len(source.values), dtype=np.int8)))
        return pa.table({"input_ids": source, "attention_mask": ones, "labels": labels,
                         "length": pa.array(lengths[0]), "target_length": pa.array(lengths[1])})


def _list_array(ids: list[list[int]], lengths: np.ndarray) -> pa.ListArray:
    """A list<int32> Arrow array of `ids`, built from one flat numpy array."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


def _cached(ds: Dataset, fingerprint: str) -> bool:
    """Whether `map` will find its result in the cache (one file, or one per worker)."""
    if not ds.cache_files:
        return False
    return any(Path(ds.cache_files[0]["filename"]).parent.glob(f"cache-{fingerprint}*.arrow"))


@contextmanager
def truncation_restored(tokenizer):
    """A fast tokenizer called with `truncation=True` keeps that setting in its backend, and `save_pretrained`
    would write it into `tokenizer.json` (then read back as a default `max_length`). Put back what was there."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer keeps no such state
        yield
        return
    before = backend.truncation
    try:
        yield
    finally:
        if before is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(**before)
