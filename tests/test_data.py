"""Parallel data: readers, malformed-line reports, clear errors, splits, built-in number words, Tatoeba protocol."""

import json
import random

import pytest
from datasets import Dataset

from hf_gru_seq2seq.data import (
    apply_max_samples,
    load_hub_dataset,
    load_raw_datasets,
    number_words_dataset,
    read_parallel_file,
    split_validation,
    tatoeba_protocol_splits,
    truncate,
)

PAIRS = [("Go.", "Va !"), ("Hi.", "Salut !"), ("I'm cold, really.", "J'ai froid, vraiment.")]


def rows(dataset, src="en", tgt="fr"):
    return [(t[src], t[tgt]) for t in dataset["translation"]]


def write_tatoeba(path, lines):
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


@pytest.fixture
def messy_tatoeba(tmp_path):
    """Good pairs among the kinds of bad line a scraped file has; line numbers are in the comments."""
    return write_tatoeba(tmp_path / "fra.txt", [
        "Go.\tVa\u202f!\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272",  # 1: narrow no-break space
        "no tab on this line",  # 2
        "",  # 3: blank, ignored
        "Hi.\tSalut\xa0!",  # 4
        "Empty French\t   ",  # 5
        b"caf\xe9\tcaf\xe9",  # 6: Latin-1, not UTF-8
        "\tOrphan French",  # 7
        "I'm cold, really.\tJ'ai froid, vraiment.\r",  # 8: Windows line end
    ])


def test_tatoeba_reader_keeps_good_pairs_and_reports_bad_lines(messy_tatoeba):
    ds, report = read_parallel_file(messy_tatoeba, "en", "fr")
    assert rows(ds) == PAIRS
    assert report.pairs == 3
    assert dict(report.skipped) == {"no tab": 1, "empty side": 2, "not UTF-8": 1}
    assert report.lines == {"no tab": [2], "empty side": [5, 7], "not UTF-8": [6]}
    summary = report.summary()
    assert "fra.txt" in summary and "4 lines skipped" in summary and "lines 5, 7" in summary


def test_tatoeba_reader_either_direction(messy_tatoeba):
    forward, _ = read_parallel_file(messy_tatoeba, "en", "fr")
    backward, _ = read_parallel_file(messy_tatoeba, "fr", "en")
    assert rows(backward, "fr", "en") == [(f, e) for e, f in rows(forward)]
    with pytest.raises(ValueError, match="source_lang='de', target_lang='fr'"):
        read_parallel_file(messy_tatoeba, "de", "fr")


def test_report_shows_only_the_first_line_numbers(tmp_path):
    path = write_tatoeba(tmp_path / "many.txt", ["ok\tok"] + [f"bad {i}" for i in range(10)])
    _, report = read_parallel_file(path, "en", "fr")
    assert report.skipped["no tab"] == 10 and report.lines["no tab"] == [2, 3, 4, 5, 6]
    assert "..." in report.summary()


def test_jsonl_csv_tsv_read_the_same_pairs(tmp_path):
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps({"translation": {"en": e, "fr": f, "de": "x"}}) + "\n" for e, f in PAIRS))
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("fr,en\n" + "".join(f'"{f}","{e}"\n' for e, f in PAIRS))
    tsv = tmp_path / "train.tsv"
    tsv.write_text("en\tfr\n" + "".join(f"{e}\t{f}\n" for e, f in PAIRS))
    for path in (jsonl, csv_file, tsv):
        ds, report = read_parallel_file(path, "en", "fr")
        assert rows(ds) == PAIRS, path
        assert report.num_skipped == 0


def test_jsonl_bad_records_are_skipped(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([
        json.dumps({"translation": {"en": "Hi.", "fr": "Salut !"}}),
        "{not json",
        json.dumps({"text": "no translation"}),
        json.dumps({"translation": {"en": "Only English"}}),
        json.dumps({"translation": {"en": "Empty", "fr": ""}}),
    ]))
    ds, report = read_parallel_file(path, "en", "fr")
    assert rows(ds) == [("Hi.", "Salut !")]
    assert report.lines == {"not JSON": [2], "no translation object": [3], "missing language": [4], "empty side": [5]}


def test_csv_bad_rows_are_skipped(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"en,fr\nHi.,Salut !\nshort\n,vide\nbad,\xff\xfe\n")
    ds, report = read_parallel_file(path, "en", "fr")
    assert rows(ds) == [("Hi.", "Salut !")]
    assert report.lines == {"missing field": [3], "empty side": [4], "not UTF-8": [5]}


@pytest.mark.parametrize("name,content", [
    ("train.jsonl", json.dumps({"translation": {"en": "a", "fr": "b"}}) + "\n"),
    ("train.csv", "en,fr\na,b\n"),
])
def test_unknown_language_names_it_and_lists_present(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=r"train\..*language 'de' not found; languages present: en, fr"):
        read_parallel_file(path, "en", "de")


def test_file_without_usable_pair_is_named(tmp_path):
    path = write_tatoeba(tmp_path / "broken.txt", ["no tab here", "nor here"])
    with pytest.raises(ValueError, match=r"broken\.txt: no usable sentence pair.*no tab: 2"):
        read_parallel_file(path, "en", "fr")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_parallel_file(tmp_path / "nowhere.txt", "en", "fr")


def test_format_from_extension_or_override(tmp_path):
    path = write_tatoeba(tmp_path / "pairs.dat", ["Hi.\tSalut !"])
    with pytest.raises(ValueError, match=r"pairs\.dat.*'\.dat'.*file_format"):
        read_parallel_file(path, "en", "fr")
    ds, _ = read_parallel_file(path, "en", "fr", file_format="tatoeba")
    assert rows(ds) == [("Hi.", "Salut !")]
    with pytest.raises(ValueError, match="unknown file_format 'xml'"):
        read_parallel_file(path, "en", "fr", file_format="xml")


def toy_dataset(n):
    return Dataset.from_dict({"translation": [{"en": f"e{i}", "fr": f"f{i}"} for i in range(n)]})


def test_validation_split_is_seeded_and_disjoint():
    ds = toy_dataset(100)
    a, b, c = split_validation(ds, 10, seed=1), split_validation(ds, 10, seed=1), split_validation(ds, 10, seed=2)
    assert rows(a["validation"]) == rows(b["validation"]) != rows(c["validation"])
    assert len(a["validation"]) == 10 and len(a["train"]) == 90
    assert not set(rows(a["train"])) & set(rows(a["validation"]))
    assert len(split_validation(ds, 0.2, seed=1)["validation"]) == 20


def test_max_samples_truncate_each_split():
    raw = split_validation(toy_dataset(100), 20, seed=0)
    raw["test"] = toy_dataset(30)
    cut = apply_max_samples(raw, max_train_samples=5, max_eval_samples=3)
    assert {k: len(v) for k, v in cut.items()} == {"train": 5, "validation": 3, "test": 30}
    assert rows(cut["train"]) == rows(raw["train"])[:5]
    assert truncate(raw["train"], None) is raw["train"] and len(truncate(raw["train"], 1000)) == 80


def test_load_raw_datasets_from_files(tmp_path):
    train = write_tatoeba(tmp_path / "train.txt", [f"e{i}\tf{i}" for i in range(40)])
    valid = write_tatoeba(tmp_path / "valid.txt", ["Hi.\tSalut !"])
    carved = load_raw_datasets("en", "fr", train_file=train, validation_split_size=4, seed=0)
    assert {k: len(v) for k, v in carved.items()} == {"train": 36, "validation": 4}
    given = load_raw_datasets("fr", "en", train_file=train, validation_file=valid, test_file=valid)
    assert {k: len(v) for k, v in given.items()} == {"train": 40, "validation": 1, "test": 1}


def test_hub_code_path_with_a_local_builder(tmp_path):
    # `datasets.load_dataset` with a builder name, as for a Hub name, but offline: the "json" builder and a local file.
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"translation": {"en": e, "fr": f}}) + "\n" for e, f in PAIRS))
    raw = load_hub_dataset("json", None, "en", "fr", data_files={"train": str(path)}, cache_dir=str(tmp_path / "c"))
    assert rows(raw["train"]) == PAIRS
    with pytest.raises(ValueError, match=r"json \[train\].*'de' not found; languages present: en, fr"):
        load_hub_dataset("json", None, "en", "de", data_files={"train": str(path)}, cache_dir=str(tmp_path / "c"))


def test_number_words_are_deterministic_disjoint_and_spelt_right():
    kwargs = dict(num_examples=2_700, max_number=100_000, validation_size=50, test_size=50, seed=3, basic_repeats=2)
    raw, again = number_words_dataset(**kwargs), number_words_dataset(**kwargs)
    basics = set(range(1001)) | set(range(100, 10_000, 100)) | set(range(1000, 100_000, 1000))
    assert {k: len(v) for k, v in raw.items()} == {"train": 2 * len(basics) + 2_700 - len(basics) - 100,
                                                   "validation": 50, "test": 50}
    assert all(raw[k]["number"] == again[k]["number"] for k in raw)
    numbers = {k: set(v["number"]) for k, v in raw.items()}
    assert basics <= numbers["train"]  # what people try first is all learnt, twice here
    assert sorted(raw["train"]["number"]).count(7) == 2
    assert numbers["train"].isdisjoint(numbers["test"]) and numbers["train"].isdisjoint(numbers["validation"])
    assert numbers["test"].isdisjoint(numbers["validation"])
    held_out = numbers["test"] | numbers["validation"]
    assert min(held_out) > 1000 and max(held_out) >= 10_000  # drawn above the basic numbers, over all lengths
    assert set(number_words_dataset(**{**kwargs, "seed": 4})["test"]["number"]) != numbers["test"]
    english = [t["en"] for split in raw.values() for t in split["translation"]]
    assert not any("," in e or " and " in f" {e} " for e in english)


def test_built_in_splits_do_not_follow_the_training_seed():
    """The built-in test split is one fixed set of numbers, so that runs with different seeds score alike."""
    assert load_raw_datasets(seed=1)["test"]["number"] == load_raw_datasets(seed=2)["test"]["number"]


def test_number_words_spelling():
    from hf_gru_seq2seq.data import number_to_words

    assert number_to_words(342, "en") == "three hundred forty-two"
    assert number_to_words(342, "fr") == "trois cent quarante-deux"
    assert number_to_words(21_101, "en") == "twenty-one thousand one hundred one"
    assert number_to_words(21_101, "fr") == "vingt et un mille cent un"


def test_default_data_needs_english_and_french():
    with pytest.raises(ValueError, match="number-words data is English<->French"):
        load_raw_datasets("en", "de")


def expected_protocol(text):
    """The protocol, restated from its definition."""
    lines = [line.replace("\u202f", " ").replace("\xa0", " ").strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    perm = list(range(len(lines)))
    random.Random(1234).shuffle(perm)
    pick = lambda idx: [tuple(lines[i].split("\t")[:2]) for i in sorted(idx)]  # noqa: E731
    return {"test": pick(perm[:2000]), "validation": pick(perm[2000:3000]), "train": pick(perm[3000:])}


def test_tatoeba_protocol_on_a_synthetic_file(tmp_path):
    rng = random.Random(0)
    lines = []
    for i in range(3400):
        lines.append(f"English {i}.\tFrançais\u202f{i} !")
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "   ", "\xa0"]))  # empty once cleaned: not indexed
    path = tmp_path / "fra.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = tatoeba_protocol_splits(path, "en", "fr")
    expected = expected_protocol(path.read_text(encoding="utf-8"))
    assert {k: len(v) for k, v in raw.items()} == {"train": 400, "validation": 1000, "test": 2000}
    for split in ("train", "validation", "test"):
        assert rows(raw[split]) == expected[split], split
    flipped = tatoeba_protocol_splits(path, "fr", "en")
    assert rows(flipped["test"], "en", "fr") == expected["test"]


def test_tatoeba_protocol_keeps_indices_when_a_line_is_bad(tmp_path):
    lines = [f"e{i}\tf{i}" for i in range(3100)]
    lines[7] = "no tab"
    path = write_tatoeba(tmp_path / "fra.txt", lines)
    raw = tatoeba_protocol_splits(path)
    expected = expected_protocol(path.read_text())
    for split, pairs in expected.items():
        assert rows(raw[split]) == [p for p in pairs if len(p) == 2], split


def test_tatoeba_protocol_needs_enough_lines(tmp_path):
    path = write_tatoeba(tmp_path / "small.txt", ["a\tb"] * 3000)
    with pytest.raises(ValueError, match="more than 3000 non-empty lines, got 3000"):
        tatoeba_protocol_splits(path)


def test_tatoeba_protocol_on_d2l_file(shared_dir):
    path = shared_dir / "data" / "fra-eng.txt"
    text = path.read_text(encoding="utf-8")
    n = sum(1 for line in text.split("\n") if line.replace("\u202f", " ").replace("\xa0", " ").strip())
    raw = tatoeba_protocol_splits(path, "en", "fr")
    assert {k: len(v) for k, v in raw.items()} == {"train": n - 3000, "validation": 1000, "test": 2000}
    assert rows(raw["test"]) == expected_protocol(text)["test"]
