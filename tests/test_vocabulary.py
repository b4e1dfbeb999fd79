"""Tokenizer: special ids that match the model config, round trips, </s> handling, saving, dataset tokenization."""

import json

import pytest
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer

from hf_gru_seq2seq import GRUSeq2SeqConfig
from hf_gru_seq2seq.vocabulary import tokenize_dataset, train_tokenizer

SENTENCES = [
    ("Go.", "Va !"), ("Hi.", "Salut !"), ("I'm cold.", "J'ai froid."), ("Hello, world!", "Bonjour, le monde !"),
    ("Who are you?", "Qui êtes-vous ?"), ("three hundred forty-two", "trois cent quarante-deux"),
    ("It's the man's book.", "C'est le livre de l'homme."), ("We run.", "Nous courons."),
]


def make_dataset(pairs):
    return Dataset.from_dict({"translation": [{"en": e, "fr": f} for e, f in pairs]})


@pytest.fixture(scope="module")
def train_set():
    return make_dataset(SENTENCES * 5)


@pytest.fixture(scope="module")
def bpe(train_set):
    return train_tokenizer(train_set, "en", "fr", vocab_size=400, min_frequency=2)


@pytest.fixture(scope="module")
def word(train_set):
    return train_tokenizer(train_set, "en", "fr", model_type="word", min_frequency=2)


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_special_tokens_match_model_config(kind, request):
    tok = request.getfixturevalue(kind)
    config = GRUSeq2SeqConfig()
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (
        config.pad_token_id, config.bos_token_id, config.eos_token_id)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<pad>", "<s>", "</s>", "<unk>"]
    assert tok.unk_token_id == 3


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_every_sequence_ends_with_one_eos(kind, request):
    tok = request.getfixturevalue(kind)
    batch = tok(["Hi.", "Who are you?"], text_target=["Salut !", "Qui êtes-vous ?"])
    for ids in batch["input_ids"] + batch["labels"]:
        assert ids[-1] == tok.eos_token_id and ids.count(tok.eos_token_id) == 1 and tok.bos_token_id not in ids


TEXTS = [
    "Hello, world!", "Qui êtes-vous ?", "Zebras can't fly (usually).", "Ça coûte 5 € — vraiment ?!",
    "naïve café 日本語 🙂", "  several   spaces\tand\ttabs  ", "ﬁne ligature, full-width ＡＢＣ",
]


def test_bpe_round_trip_is_exact_after_normalisation(bpe):
    normalize = bpe.backend_tokenizer.normalizer.normalize_str
    for text in TEXTS:
        ids = bpe(text)["input_ids"]
        assert bpe.unk_token_id not in ids  # byte-level: nothing is unknown
        assert bpe.decode(ids, skip_special_tokens=True) == normalize(text)
    # what the normalisation does, stated independently
    assert normalize("Va\u202f!  ") == "Va !"
    assert normalize("ﬁne ＡＢＣ") == "fine ABC"
    assert normalize("Case Kept") == "Case Kept"


def test_bpe_text_round_trips_unchanged_when_already_normal(bpe):
    for en, fr in SENTENCES:
        for text in (en, fr):
            assert bpe.decode(bpe(text)["input_ids"], skip_special_tokens=True) == text


def test_lowercase_option(train_set):
    tok = train_tokenizer(train_set, "en", "fr", vocab_size=300, lowercase=True)
    assert tok.decode(tok("Hello, World!")["input_ids"], skip_special_tokens=True) == "hello, world!"


def test_word_level_splits_punctuation_and_restores_spacing(word):
    assert word.tokenize("Hello, world!") == ["▁Hello", ",", "▁world", "!"]
    assert word.tokenize("Qui êtes-vous ?") == ["▁Qui", "▁êtes-vous", "▁?"]
    for en, fr in SENTENCES:
        for text in (en, fr):
            assert word.decode(word(text)["input_ids"], skip_special_tokens=True) == text


def test_word_level_is_lossy_only_for_unknown_words(word):
    ids = word("Hello, strange world!")["input_ids"]
    assert word.unk_token_id in ids
    assert word.decode(ids, skip_special_tokens=True) == "Hello, world!"


def test_word_level_vocabulary_size_and_min_frequency(train_set):
    rare = make_dataset(SENTENCES * 2 + [("Hapax legomenon.", "Hapax.")])
    tok = train_tokenizer(rare, "en", "fr", model_type="word", min_frequency=2)
    assert tok("legomenon")["input_ids"][0] == tok.unk_token_id
    assert tok("cold")["input_ids"][0] != tok.unk_token_id
    small = train_tokenizer(train_set, "en", "fr", model_type="word", vocab_size=10, min_frequency=1)
    assert len(small) == 10


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_save_and_load_with_auto_tokenizer(kind, request, tmp_path):
    tok = request.getfixturevalue(kind)
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (loaded.pad_token, loaded.bos_token, loaded.eos_token, loaded.unk_token) == ("<pad>", "<s>", "</s>", "<unk>")
    assert loaded.get_vocab() == tok.get_vocab()
    for text in ["Hello, world!", "Qui êtes-vous ?", "Va\u202f!"]:
        ids = loaded(text)["input_ids"]
        assert ids == tok(text)["input_ids"]
        assert loaded.decode(ids, skip_special_tokens=True) == tok.decode(ids, skip_special_tokens=True)


def test_unknown_model_type(train_set):
    with pytest.raises(ValueError, match="unknown tokenizer model_type 'sentencepiece'"):
        train_tokenizer(train_set, "en", "fr", model_type="sentencepiece")


def test_tokenize_dataset_columns_labels_and_empty_rows(bpe):
    raw = DatasetDict(
        train=make_dataset(SENTENCES + [("", "vide"), ("empty target", "   ")]),
        validation=make_dataset(SENTENCES[:2]),
    )
    out = tokenize_dataset(raw, bpe, "en", "fr", max_source_length=64, max_target_length=64)
    assert out["train"].column_names == ["input_ids", "attention_mask", "labels", "length", "target_length"]
    assert len(out["train"]) == len(SENTENCES) and len(out["validation"]) == 2
    for row, (en, fr) in zip(out["train"], SENTENCES):
        assert row["input_ids"] == bpe(en)["input_ids"]
        assert row["labels"] == bpe(text_target=fr)["input_ids"]
        assert row["attention_mask"] == [1] * len(row["input_ids"])
        assert (row["length"], row["target_length"]) == (len(row["input_ids"]), len(row["labels"]))


def test_tokenize_dataset_reverse_direction(bpe):
    out = tokenize_dataset(make_dataset(SENTENCES), bpe, "fr", "en")
    assert bpe.decode(out[0]["input_ids"], skip_special_tokens=True) == SENTENCES[0][1]
    assert bpe.decode(out[0]["labels"], skip_special_tokens=True) == SENTENCES[0][0]


def test_truncation_keeps_the_final_eos(bpe):
    long = ("one two three four five six seven eight nine ten " * 3).strip()
    out = tokenize_dataset(make_dataset([(long, long)]), bpe, "en", "fr", max_source_length=5, max_target_length=7)
    full = bpe(long)["input_ids"]
    assert out[0]["input_ids"] == full[:4] + [bpe.eos_token_id]
    assert out[0]["labels"] == full[:6] + [bpe.eos_token_id]


def test_tokenizing_leaves_no_truncation_in_the_saved_tokenizer(bpe, tmp_path):
    long = ("one two three four five six seven eight nine ten " * 3).strip()
    tokenize_dataset(make_dataset([(long, long)]), bpe, "en", "fr", max_source_length=5, max_target_length=7)
    assert bpe.backend_tokenizer.truncation is None
    bpe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))["truncation"] is None
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(long)["input_ids"] == bpe(long)["input_ids"] and len(bpe(long)["input_ids"]) > 7


def test_tokenize_dataset_errors(bpe):
    with pytest.raises(ValueError, match="max_source_length must be at least 2"):
        tokenize_dataset(make_dataset(SENTENCES), bpe, "en", "fr", max_source_length=1)
    with pytest.raises(ValueError, match=r"train split: language 'de' not found; languages present: en, fr"):
        tokenize_dataset(DatasetDict(train=make_dataset(SENTENCES)), bpe, "en", "de")


@pytest.mark.parametrize("kind, pairs_per_worker", [("bpe", 2_000_000), ("word", 2_000_000), ("bpe", 500)])
def test_the_arrow_fast_path_matches_the_tokenizer_call_in_workers(kind, pairs_per_worker, request, tmp_path,
                                                                   monkeypatch):
    """Our own tokenizers take `ArrowTokenizer` (the backend, Arrow in and out); it must give what calling the
    tokenizer gives, row for row, with truncation, dropped empty pairs and worker processes, also when the split is
    tokenized in parts, each by fresh workers (500 pairs a worker: 3 parts here)."""
    import datasets

    from hf_gru_seq2seq import vocabulary

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    tokenizer = request.getfixturevalue(kind)
    long = ("one two three four five six seven eight nine ten " * 3).strip()
    pairs = (SENTENCES + [(long, long), ("", "vide"), ("Go.", " ")]) * 300
    path = tmp_path / "pairs.arrow"
    make_dataset(pairs).map(lambda b: b, batched=True, cache_file_name=str(path))
    raw = Dataset.from_file(str(path))
    assert vocabulary._backend_only(tokenizer)
    monkeypatch.setattr(vocabulary, "PAIRS_PER_WORKER", pairs_per_worker)
    fast = tokenize_dataset(raw, tokenizer, "en", "fr", 6, 9, num_proc=2, load_from_cache_file=False)
    again = tokenize_dataset(raw, tokenizer, "en", "fr", 6, 9, num_proc=2)
    assert again._fingerprint == fast._fingerprint  # a second run finds the same dataset (and its length index)
    monkeypatch.setattr(vocabulary, "_backend_only", lambda _: False)
    slow = tokenize_dataset(raw, tokenizer, "en", "fr", 6, 9, load_from_cache_file=False)
    assert len(fast) == len(slow) == (len(SENTENCES) + 1) * 300
    for column in slow.column_names:
        assert fast[column] == slow[column], column
    assert fast.format["type"] is None and tokenizer.backend_tokenizer.truncation is None
