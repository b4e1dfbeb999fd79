"""The training orders that hold no per-pair Python objects: the lazy permutation, the memory-mapped length index,
and the sentence and token samplers the Trainer gets from them."""

import datasets
import numpy as np
import pytest
from datasets import Dataset
from test_training import TINY_CPU

from hf_gru_seq2seq import training, training_args
from hf_gru_seq2seq.length_index import LengthIndex
from hf_gru_seq2seq.sentence_samplers import LengthGroupedOrder, ShuffledOrder
from hf_gru_seq2seq.seq2seq_trainer import build_trainer
from hf_gru_seq2seq.shuffle import Permutation
from hf_gru_seq2seq.token_batches import TokenBatchSampler


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 65, 1000, 4097, 100_003])
def test_the_permutation_is_a_bijection_of_range_n(n):
    values = Permutation(n, 5)[0:n]
    assert np.array_equal(np.sort(values), np.arange(n))
    assert np.array_equal(np.concatenate(list(Permutation(n, 5).chunks(333)) or [np.zeros(0, np.int64)]), values)


def test_the_permutation_depends_on_the_seed_only():
    first, again, other = Permutation(10_000, [1, 2])[:], Permutation(10_000, [1, 2])[:], Permutation(10_000, [1, 3])[:]
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert abs(np.corrcoef(np.arange(10_000), first)[0, 1]) < 0.05  # no trace of the input order
    assert np.array_equal(Permutation(10_000, 7)[[5, 9, 2]], Permutation(10_000, 7)[:][[5, 9, 2]])


def lengths_dataset(tmp_path, n=5000):
    """A tokenized-like dataset on disk with the two length columns (and an id per row to check rows by)."""
    rng = np.random.default_rng(0)
    frame = {"row": np.arange(n), "length": rng.integers(2, 40, n), "target_length": rng.integers(2, 40, n)}
    path = tmp_path / "lengths.arrow"
    Dataset.from_dict(frame).map(lambda b: b, batched=True, cache_file_name=str(path))
    return Dataset.from_file(str(path)), frame


def test_the_length_index_is_memory_mapped_beside_the_cache_and_reused(tmp_path):
    dataset, frame = lengths_dataset(tmp_path)
    index = LengthIndex.of_dataset(dataset)
    assert all(isinstance(a, np.memmap) for a in (index.source, index.target, index.by_cost))
    assert np.array_equal(index.source, frame["length"]) and np.array_equal(index.target, frame["target_length"])
    cost = np.maximum(frame["length"], frame["target_length"])
    for c in range(41):
        assert np.array_equal(index.pairs_of_cost(c), np.flatnonzero(cost == c))  # in dataset order
    files = sorted((tmp_path / "hf_gru_seq2seq_lengths").rglob("*.npy"))
    stamps = [f.stat().st_mtime_ns for f in files]
    LengthIndex.of_dataset(dataset)
    assert [f.stat().st_mtime_ns for f in files] == stamps and len(files) == 3  # read again, not written
    memory = LengthIndex.of_dataset(Dataset.from_dict(frame))  # no cache files: in memory, the same index
    assert np.array_equal(memory.by_cost, index.by_cost)


def test_the_shuffled_order_gives_every_index_once_an_epoch():
    sampler = ShuffledOrder(10_001, seed=3)
    epochs = [list(sampler), list(sampler)]
    assert all(sorted(e) == list(range(10_001)) for e in epochs) and epochs[0] != epochs[1]
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1] and len(sampler) == 10_001


def test_the_length_grouped_order_sorts_each_megabatch_longest_first(tmp_path):
    dataset, frame = lengths_dataset(tmp_path)
    order = list(LengthGroupedOrder(LengthIndex.of_dataset(dataset), batch_size=8, seed=1))
    assert sorted(order) == list(range(len(dataset)))
    for start in range(0, len(order), 400):  # 50 batches of 8
        lengths = frame["length"][order[start:start + 400]]
        assert np.all(lengths[:-1] >= lengths[1:])
    assert order != sorted(order, key=lambda i: -frame["length"][i])  # grouped, not sorted overall


def test_token_batches_from_the_memory_mapped_index_match_the_lengths(tmp_path):
    dataset, frame = lengths_dataset(tmp_path)
    sampler = TokenBatchSampler(LengthIndex.of_dataset(dataset), max_tokens=256, seed=2)
    batches = list(sampler)
    cost = np.maximum(frame["length"], frame["target_length"])
    assert len(batches) == len(sampler)
    assert all(len(b) * cost[b].max() <= 256 and len(set(cost[b])) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(len(dataset)))
    assert sampler.batches(0) == batches  # an epoch can be replayed (resuming)


@pytest.mark.parametrize("strategy, kind", [("group_by_length", LengthGroupedOrder), ("random", ShuffledOrder)])
def test_the_trainer_samples_with_the_flat_memory_orders(tmp_path, strategy, kind):
    path = tmp_path / "train.txt"
    path.write_text("".join(f"word {i} {'x ' * (i % 9)}\tmot {i}\n" for i in range(400)), encoding="utf-8")
    flags = ["--train_file", str(path), *TINY_CPU, "--do_train", "--output_dir", str(tmp_path / "out"),
             "--train_sampling_strategy", strategy, "--per_device_train_batch_size", "4"]
    model_args, data_args, args = training_args.parse_args(flags)
    raw, *_ = training.load_splits(data_args, args.seed)
    tokenizer = training.get_tokenizer(model_args, data_args, args, raw, resuming=False)
    tokenized = training.tokenize(raw, tokenizer, data_args, args)
    trainer = build_trainer(training.get_model(model_args, data_args, tokenizer), tokenizer, tokenized, args,
                            data_args)
    loader = trainer.get_train_dataloader()
    assert isinstance(trainer._get_train_sampler(), kind)
    seen = [row for batch in loader for row in batch["input_ids"].tolist()]
    assert len(seen) == len(tokenized["train"])
    pad = tokenizer.pad_token_id
    expected = sorted(tuple(ids) for ids in tokenized["train"]["input_ids"])
    assert sorted(tuple(t for t in row if t != pad) for row in seen) == expected  # every pair once
