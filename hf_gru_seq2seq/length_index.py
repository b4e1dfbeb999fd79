"""The token lengths of a tokenized training set, and its pairs grouped by cost, as arrays the samplers read on demand.

`tokenize_dataset` stores `length` (source tokens) and `target_length` columns. Batching by length needs them for
every pair, and a token batcher also needs the pairs grouped by cost (a pair costs its longer side). Held in memory
that is 24 bytes a pair (two lengths and an index as int64). Instead, for a dataset in the datasets cache,
`LengthIndex.of_dataset` writes three `.npy` files beside the cache, once, a million rows at a time, and memory-maps
them: their pages are the page cache's, not the process's heap, so memory stays flat however big the corpus. A second
run on the same tokenized data (same fingerprint) maps the files again. A dataset held in memory (the built-in data,
tests) gets in-memory arrays.

Files, in `<cache folder>/hf_gru_seq2seq_lengths/<fingerprint>/`:
- `source.npy`, `target.npy` (uint16): tokens of each pair's source and target;
- `by_cost.npy` (int64): the pair indices sorted by cost, stable (a counting sort), so the pairs of cost `c` are
  `by_cost[start[c]:start[c + 1]]`, in dataset order.
"""

import os
from pathlib import Path

import numpy as np

from .vocabulary import LENGTH_COLUMNS

CHUNK = 1 << 20  # rows read at a time
FILES = ("source", "target", "by_cost")


class LengthIndex:
    """`source[i]`, `target[i]`, `cost[i] = max(source[i], target[i])`, and `pairs_of_cost(c)`."""

    def __init__(self, source, target, by_cost):
        self.source, self.target, self.by_cost = source, target, by_cost
        counts = np.zeros(1, dtype=np.int64)
        for start in range(0, len(source), CHUNK):
            counts = _add_counts(counts, self.cost(slice(start, start + CHUNK)))
        self.counts = counts  # (max cost + 1,): pairs of each cost
        self.starts = np.r_[0, np.cumsum(counts)]

    def __len__(self) -> int:
        return len(self.source)

    def cost(self, rows) -> np.ndarray:
        """The costs of `rows` (a slice or an index array)."""
        return np.maximum(self.source[rows], self.target[rows])

    def pairs_of_cost(self, cost: int) -> np.ndarray:
        """The indices of the pairs whose longer side has `cost` tokens, in dataset order (a memory-mapped view)."""
        if not 0 <= cost < len(self.counts):
            return self.by_cost[:0]
        return self.by_cost[self.starts[cost]:self.starts[cost + 1]]

    @classmethod
    def of_arrays(cls, source_lengths, target_lengths) -> "LengthIndex":
        """An in-memory index of two length sequences."""
        source = _lengths(source_lengths, "source")
        target = _lengths(target_lengths, "target")
        if len(source) != len(target):
            raise ValueError(f"{len(source)} source lengths but {len(target)} target lengths")
        by_cost = np.argsort(np.maximum(source, target), kind="stable")
        return cls(source, target, by_cost)

    @classmethod
    def of_dataset(cls, dataset) -> "LengthIndex":
        """The index of a tokenized `datasets.Dataset` with the two length columns: memory-mapped files beside its
        cache (written on first use), or in memory for a dataset that has no cache files."""
        missing = [c for c in LENGTH_COLUMNS if c not in dataset.column_names]
        if missing:
            raise ValueError(f"the training set has no {', '.join(missing)} column: batching by length reads the "
                             "length columns that tokenize_dataset stores")
        if not dataset.cache_files:
            columns = dataset.select_columns(list(LENGTH_COLUMNS)).with_format("numpy")[:]
            return cls.of_arrays(columns["length"], columns["target_length"])
        folder = Path(dataset.cache_files[0]["filename"]).parent / "hf_gru_seq2seq_lengths" / dataset._fingerprint
        if not all((folder / f"{name}.npy").is_file() for name in FILES):
            _write(dataset, folder)
        arrays = [np.load(folder / f"{name}.npy", mmap_mode="r") for name in FILES]
        if len(arrays[0]) != len(dataset):
            raise ValueError(f"{folder} holds the lengths of {len(arrays[0])} pairs, not {len(dataset)}: delete it")
        return cls(*arrays)


def _lengths(values, side: str) -> np.ndarray:
    array = np.asarray(values)
    if len(array) and (array.min() < 0 or array.max() > np.iinfo(np.uint16).max):
        raise ValueError(f"{side} lengths must be in 0..65535, got {array.min()}..{array.max()}")
    return array.astype(np.uint16)


def _add_counts(counts: np.ndarray, costs: np.ndarray) -> np.ndarray:
    new = np.bincount(costs, minlength=len(counts))
    new[:len(counts)] += counts
    return new


def _read_chunks(dataset):
    """(start, source lengths, target lengths) of `dataset`, CHUNK rows at a time."""
    table = dataset.select_columns(list(LENGTH_COLUMNS)).with_format("arrow")
    for start in range(0, len(dataset), CHUNK):
        part = table[start:start + CHUNK]
        yield (start, _lengths(part.column(0).to_numpy(), "source"), _lengths(part.column(1).to_numpy(), "target"))


def _write(dataset, folder: Path) -> None:
    """Write the three files, a chunk at a time (two passes: lengths and counts, then the counting sort). Each file is
    written under a temporary name and renamed, so that processes writing at once (DDP ranks) never read half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    n, tag = len(dataset), f".{os.getpid()}.tmp.npy"
    temporary = {name: folder / f"{name}{tag}" for name in FILES}
    source = np.lib.format.open_memmap(temporary["source"], mode="w+", dtype=np.uint16, shape=(n,))
    target = np.lib.format.open_memmap(temporary["target"], mode="w+", dtype=np.uint16, shape=(n,))
    counts = np.zeros(1, dtype=np.int64)
    for start, src, tgt in _read_chunks(dataset):
        source[start:start + len(src)], target[start:start + len(tgt)] = src, tgt
        counts = _add_counts(counts, np.maximum(src, tgt))
    by_cost = np.lib.format.open_memmap(temporary["by_cost"], mode="w+", dtype=np.int64, shape=(n,))
    filled = np.r_[0, np.cumsum(counts)][:-1]  # where the next pair of each cost goes
    for start in range(0, n, CHUNK):
        costs = np.maximum(source[start:start + CHUNK], target[start:start + CHUNK])
        order = np.argsort(costs, kind="stable")
        sorted_costs = costs[order]
        present, first, size = np.unique(sorted_costs, return_index=True, return_counts=True)
        for cost, at, count in zip(present, first, size):
            by_cost[filled[cost]:filled[cost] + count] = start + order[at:at + count]
            filled[cost] += count
    for array in (source, target, by_cost):
        array.flush()
    del source, target, by_cost
    for name in FILES:
        os.replace(temporary[name], folder / f"{name}.npy")
