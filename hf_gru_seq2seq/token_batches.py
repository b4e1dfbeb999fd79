"""Batches by tokens, not by sentences (fairseq's `--max-tokens`, OpenNMT's `batch_type: tokens`).

A pair costs its longer side: a batch of B pairs whose longest side is L tokens is padded to B x L, and stays at most
`max_tokens`. Pairs are bucketed by that cost; each epoch every bucket is shuffled and cut into batches of
`max_tokens // cost` pairs, and all the batches are shuffled together: short sentences travel in big batches, long
ones in small, and padding is only what the other side adds. Every pair is in exactly one batch an epoch, and the
number of batches is the same every epoch (it depends only on the buckets' sizes).

Memory stays flat with the corpus: the buckets are the memory-mapped `LengthIndex`, a bucket's shuffle is a
`Permutation` computed a batch at a time, and only the list of batches (a bucket and a number each, about 8 bytes a
batch) is held.

Under DDP the sampler yields every rank's batches in turn, as many as a multiple of the number of processes (the
first batches are repeated to fill the last round); Accelerate deals batch i to rank i mod N, so each rank has its
own batches and all take the same number of steps.
"""

import numpy as np

from .length_index import LengthIndex
from .shuffle import Permutation


class TokenBatchSampler:
    """A batch sampler (lists of dataset indices) for `DataLoader(batch_sampler=...)`; a new order each epoch (each
    `iter()`, or `set_epoch`), the same for the same `seed` on every rank."""

    def __init__(self, index: LengthIndex, max_tokens: int, seed: int = 0, num_replicas: int = 1):
        if max_tokens < 1:
            raise ValueError(f"max_tokens_per_batch must be positive, got {max_tokens}")
        costs = np.flatnonzero(index.counts)  # the costs some pair has, ascending
        if len(costs) and costs[-1] > max_tokens:
            worst = int(index.pairs_of_cost(costs[-1])[0])
            raise ValueError(f"max_tokens_per_batch={max_tokens} is below pair {worst}'s {costs[-1]} tokens; "
                             "raise it to at least max_source_length / max_target_length")
        self.index, self.max_tokens, self.seed, self.num_replicas, self.epoch = index, max_tokens, seed, num_replicas, 0
        per_batch = max_tokens // np.maximum(costs, 1)
        batches = -(-index.counts[costs] // per_batch)  # ceil: batches of each bucket
        self.batch_cost = np.repeat(costs, batches).astype(np.int32)  # (B,) the bucket of each batch
        self.batch_number = np.concatenate([np.arange(b, dtype=np.int32) for b in batches]) if len(costs) \
            else np.zeros(0, np.int32)  # (B,) its number within the bucket

    def __len__(self) -> int:
        return len(self.batch_cost) + (-len(self.batch_cost) % self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.batch_cost))
        short = -len(order) % self.num_replicas
        order = np.r_[order, order[:short]]  # fill the last round of the ranks
        shuffles = {}
        for b in order:
            cost, number = int(self.batch_cost[b]), int(self.batch_number[b])
            pairs = self.index.pairs_of_cost(cost)
            if cost not in shuffles:
                shuffles[cost] = Permutation(len(pairs), [self.seed, epoch, cost])
            size = self.max_tokens // max(cost, 1)
            positions = shuffles[cost][number * size:min((number + 1) * size, len(pairs))]
            yield pairs[positions].tolist()

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of one epoch, in the order they are trained on."""
        saved, self.epoch = self.epoch, epoch
        try:
            return list(self)
        finally:
            self.epoch = saved
