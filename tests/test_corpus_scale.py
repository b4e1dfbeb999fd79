"""Big corpora at a small scale: files read into the Arrow cache and reused, skipped lines counted, the carved
validation split and the decoded splits capped, the tokenizer trained on a seeded sample, token batches."""

import json
import logging

import datasets
import numpy as np
import pytest
from accelerate.data_loader import BatchSamplerShard
from datasets import Dataset
from test_training import TINY_CPU, read_json

from hf_gru_seq2seq import data, training, training_args
from hf_gru_seq2seq.length_index import LengthIndex
from hf_gru_seq2seq.token_batches import TokenBatchSampler
from hf_gru_seq2seq.vocabulary import tokenize_dataset, train_tokenizer, training_sample

N_PAIRS = 30_000
BAD_LINES = {2: "no tab here", 15_000: "only English\t ", 29_999: "another line without a tab"}  # 1-based


def synthetic_pairs(count: int) -> list[tuple[str, str]]:
    """Distinct pairs of 2 to 13 words, so that lengths vary."""
    return [(" ".join(["word"] * (i % 12) + [f"w{i}"]), " ".join([f"m{i}"] + ["mot"] * (i % 7))) for i in range(count)]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test its own datasets cache (the reader and `map` read the setting when called)."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """A Tatoeba file of N_PAIRS lines, three of them malformed; returns (path, the good pairs in order)."""
    path = tmp_path_factory.mktemp("corpus") / "big.txt"
    pairs = synthetic_pairs(N_PAIRS)
    lines = [BAD_LINES.get(i, f"{en}\t{fr}") for i, (en, fr) in enumerate(pairs, 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [pair for i, pair in enumerate(pairs, 1) if i not in BAD_LINES]


def rows(dataset, src="en", tgt="fr"):
    return [(t[src], t[tgt]) for t in dataset["translation"]]


def test_a_second_read_reuses_the_cache_and_its_report(big_file, monkeypatch, caplog):
    path, good = big_file
    first, report = data.read_parallel_file(path, "en", "fr")
    assert rows(first) == good
    assert first.cache_files  # memory-mapped from the cache, not an in-memory table
    assert report.summary() == (f"{path}: {len(good)} pairs, 3 lines skipped "
                                "(no tab: 2, lines 2, 29999; empty side: 1, line 15000)")

    def not_again(*args):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(data, "iter_pairs", not_again)
    with caplog.at_level(logging.INFO, logger="hf_gru_seq2seq.data"):
        second, again = data.read_parallel_file(path, "en", "fr")
    assert "reused the Arrow cache" in caplog.text
    assert rows(second) == good and again.summary() == report.summary()


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text("Go.\tVa !\n", encoding="utf-8")
    assert len(data.read_parallel_file(path, "en", "fr")[0]) == 1
    path.write_text("Go.\tVa !\nHi.\tSalut !\n", encoding="utf-8")
    assert rows(data.read_parallel_file(path, "en", "fr")[0]) == [("Go.", "Va !"), ("Hi.", "Salut !")]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv", ".tsv"])
def test_the_cached_path_gives_the_pairs_of_the_file(tmp_path, suffix):
    pairs = synthetic_pairs(2000) + [("a, \"quoted\" one", "une, « citée »")]
    path = tmp_path / f"pairs{suffix}"
    if suffix == ".txt":
        path.write_text("".join(f"{en}\t{fr}\n" for en, fr in pairs), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"translation": {"en": e, "fr": f}}) + "\n" for e, f in pairs))
    else:
        import csv

        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter="," if suffix == ".csv" else "\t").writerows([("en", "fr"), *pairs])
    dataset, report = data.read_parallel_file(path, "en", "fr")
    assert rows(dataset) == pairs and report.pairs == len(pairs)


def test_the_carved_validation_split_is_capped(big_file):
    path, good = big_file
    default = data.load_raw_datasets("en", "fr", train_file=path)
    assert len(default["validation"]) == min(round(0.05 * len(good)), 3000) == 1500
    assert len(default["train"]) + len(default["validation"]) == len(good)
    assert len(data.split_validation(Dataset.from_dict({"x": list(range(100_000))}))["validation"]) == 3000
    fifth = data.load_raw_datasets("en", "fr", train_file=path, validation_split_size=0.2)["validation"]
    assert len(fifth) == 6000  # 20% of 29,997, rounded up as datasets does


def test_no_decoding_pass_decodes_more_than_5000_pairs_by_default(big_file, tmp_path):
    path, _ = big_file
    _, data_args, train_args = training_args.parse_args(
        ["--train_file", str(path), "--validation_file", str(path), "--test_file", str(path),
         "--output_dir", str(tmp_path / "out")])
    raw, *_ = training.load_splits(data_args, train_args.seed)
    assert len(raw["validation"]) == len(raw["test"]) == 5000
    _, data_args, _ = training_args.parse_args(["--train_file", str(path), "--validation_file", str(path),
                                                "--max_eval_samples", "6000"])
    assert len(training.load_splits(data_args, 0)[0]["validation"]) == 6000  # the user asked


def test_the_tokenizer_sample_is_seeded(big_file):
    dataset, _ = data.read_parallel_file(big_file[0], "en", "fr")
    sample = training_sample(dataset, 3000, seed=1)
    assert len(sample) == 3000 and set(rows(sample)) < set(rows(dataset))
    assert rows(sample) != rows(training_sample(dataset, 3000, seed=2))
    first, second = (train_tokenizer(dataset, "en", "fr", vocab_size=400, max_pairs=3000, seed=1) for _ in range(2))
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_token_batches_hold_at_most_n_tokens_and_every_pair_once(big_file):
    dataset, _ = data.read_parallel_file(big_file[0], "en", "fr")
    tokenizer = train_tokenizer(dataset, "en", "fr", vocab_size=400, max_pairs=3000)
    tokenized = tokenize_dataset(dataset, tokenizer, "en", "fr")
    sizes = [max(len(s), len(t)) for s, t in zip(tokenized["input_ids"], tokenized["labels"])]
    sampler = TokenBatchSampler(LengthIndex.of_dataset(tokenized), max_tokens=200, seed=3)
    epochs = [list(sampler), list(sampler)]
    for batches in epochs:
        assert len(batches) == len(sampler)
        assert all(len(b) * max(sizes[i] for i in b) <= 200 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(len(tokenized)))
    assert epochs[0] != epochs[1]  # a new order each epoch
    with pytest.raises(ValueError, match="max_tokens_per_batch=8 is below"):
        TokenBatchSampler(LengthIndex.of_dataset(tokenized), max_tokens=8)


def test_under_ddp_every_rank_has_its_own_token_batches_and_as_many(big_file):
    lengths = np.random.default_rng(0).integers(2, 30, size=(2, 5001))
    index = LengthIndex.of_arrays(*lengths)
    ranks = [list(BatchSamplerShard(TokenBatchSampler(index, max_tokens=300, num_replicas=2), 2, rank))
             for rank in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 10
    seen = [i for batches in ranks for b in batches for i in b]
    assert set(seen) == set(range(5001))
    assert len(seen) - 5001 <= max(len(b) for b in ranks[0] + ranks[1])  # at most one batch repeated


def test_training_by_tokens_and_a_cached_rerun(tmp_path, caplog):
    path = tmp_path / "train.txt"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in synthetic_pairs(600)), encoding="utf-8")
    flags = ["--train_file", str(path), *TINY_CPU, "--max_steps", "3", "--do_train", "--eval_strategy", "no",
             "--max_tokens_per_batch", "64", "--overwrite_output_dir"]
    training.run(["--output_dir", str(tmp_path / "a"), *flags])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        results = training.run(["--output_dir", str(tmp_path / "b"), *flags])
    assert read_json(tmp_path / "b" / "trainer_state.json")["global_step"] == 3
    assert results["train_samples"] == 570  # 600 less the 30 carved for validation
    for said in ("reused the Arrow cache", "reusing the tokenizer", "train split: reusing the tokenized cache"):
        assert said in caplog.text
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()
    assert "| batch size | 64 tokens a device |" in (tmp_path / "b" / "README.md").read_text(encoding="utf-8")


def test_the_streamed_path_trains_under_ddp(tmp_path):
    """Two processes (torchrun, gloo on CPUs) train on a streamed file: validation held out from the stream's head,
    the tokenizer trained on a sample of it, rank 0 reading and dealing the batches."""
    import subprocess
    import sys

    from script_runs import REPO, script_env

    path = tmp_path / "train.txt"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in synthetic_pairs(2000)) + "no tab\n", encoding="utf-8")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "scripts" / "train.py"), "--train_file", str(path), "--streaming", "--max_steps", "3",
               "--validation_split_size", "40", "--tokenizer_max_sentences", "500", "--output_dir", str(out),
               *TINY_CPU, "--eval_strategy", "no", "--do_train", "--do_eval"]
    env = dict(script_env(), CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", HF_GRU_SEQ2SEQ_PRINT_JSON="1",
               HF_DATASETS_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log
    per_process = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"')]
    assert len(per_process) == 2 and all(r["eval_samples"] == 40 for r in per_process), log
    state = read_json(out / "trainer_state.json")
    assert state["global_step"] == 3 and [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3]
    assert "the first 40 pairs of the stream are held out" in done.stdout
    assert "| train | streamed |" in (out / "README.md").read_text(encoding="utf-8")


def test_a_streamed_hub_dataset_holds_out_validation_from_its_head(tmp_path, monkeypatch):
    """`--streaming --dataset_name`: `load_dataset(..., streaming=True)`, offline here through the "json" builder."""
    from functools import partial
    from types import SimpleNamespace

    from hf_gru_seq2seq import streaming

    path = tmp_path / "train.jsonl"
    pairs = synthetic_pairs(300)
    path.write_text("".join(json.dumps({"translation": {"en": e, "fr": f}, "id": i}) + "\n"
                            for i, (e, f) in enumerate(pairs)))
    monkeypatch.setattr(datasets, "load_dataset", partial(datasets.load_dataset, data_files={"train": str(path)}))
    args = SimpleNamespace(source_lang="en", target_lang="fr", dataset_name="json", dataset_config_name=None,
                           train_file=None, validation_file=None, test_file=None, file_format=None,
                           validation_split_size=20, max_train_samples=None)
    raw = streaming.load_streaming_splits(args)
    assert isinstance(raw["train"], datasets.IterableDataset)
    streamed = [(row["translation"]["en"], row["translation"]["fr"]) for row in raw["train"]]
    assert rows(raw["validation"]) == pairs[:20] and streamed == pairs[20:]
