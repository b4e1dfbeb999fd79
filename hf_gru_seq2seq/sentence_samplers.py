"""Samplers of the training set for batches of a fixed number of pairs, whose memory does not grow with the corpus.

torch's `RandomSampler` makes a Python list of every index each epoch (a pointer and an int object a pair) and the
Trainer's `LengthGroupedSampler` several (lengths, permutation, megabatches). These two compute their
order a chunk at a time from a `Permutation` and the memory-mapped `LengthIndex`:

- `ShuffledOrder`: every index once an epoch, in a seeded random order (`train_sampling_strategy="random"`);
- `LengthGroupedOrder`: the same, then, as the Trainer's `group_by_length` does, cut into megabatches of 50 batches
  each sorted by source length, longest first, so that a batch holds pairs of similar lengths and little padding.

Both give a new order each epoch (each `iter()`, or `set_epoch`), the same for the same seed on every rank, so that
Accelerate can deal the batches to DDP ranks.
"""

import numpy as np

from .length_index import LengthIndex
from .shuffle import Permutation

MEGABATCH_BATCHES = 50  # the Trainer's LengthGroupedSampler uses 50 batches a megabatch


class ShuffledOrder:
    """Every index of `range(n)` once an epoch, in a seeded random order."""

    chunk = 1 << 16

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _chunks(self):
        permutation = Permutation(self.n, [self.seed, self.epoch])
        self.epoch += 1
        return permutation.chunks(self.chunk)

    def __iter__(self):
        for chunk in self._chunks():
            yield from chunk.tolist()


class LengthGroupedOrder(ShuffledOrder):
    """A random order where each run of `MEGABATCH_BATCHES * batch_size` indices is sorted by source length, longest
    first (the Trainer's `LengthGroupedSampler`, with `LengthIndex.source` as the lengths)."""

    def __init__(self, index: LengthIndex, batch_size: int, seed: int = 0):
        super().__init__(len(index), seed)
        self.index = index
        self.chunk = MEGABATCH_BATCHES * batch_size

    def __iter__(self):
        for megabatch in self._chunks():
            lengths = self.index.source[megabatch].astype(np.int32)  # (M,) read from the memory-mapped lengths
            yield from megabatch[np.argsort(-lengths, kind="stable")].tolist()
