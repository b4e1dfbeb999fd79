"""Batches by tokens, not by sentences (fairseq's `--max-tokens`, OpenNMT's `batch_type: tokens`).

A pair costs its longer side: a batch of B pairs whose longest side is L tokens is padded to B x L, and stays at most
`max_tokens`. Pairs are bucketed by that length (ties broken by a seeded shuffle, then by source length), each bucket
cut into batches of `max_tokens // L` pairs, and the batches shuffled: short sentences travel in big batches, long ones
in small, and padding is only what the other side adds. Every pair is in exactly one batch an epoch.

Under DDP the sampler yields every rank's batches in turn, as many as a multiple of the number of processes (the
first batches are repeated to fill the last round); Accelerate deals batch i to rank i mod N, so each rank has its
own batches and all take the same number of steps. Everything is numpy over the length columns that
`tokenize_dataset` stores: no pass over the data, a few bytes a pair.
"""

import numpy as np


class TokenBatchSampler:
    """A batch sampler (lists of dataset indices) for `DataLoader(batch_sampler=...)`; a new order each epoch (each
    `iter()`), the same for the same `seed` on every rank."""

    def __init__(self, source_lengths, target_lengths, max_tokens: int, seed: int = 0, num_replicas: int = 1):
        self.source = np.asarray(source_lengths, dtype=np.int32)
        self.cost = np.maximum(self.source, np.asarray(target_lengths, dtype=np.int32))  # (N,)
        if max_tokens < 1:
            raise ValueError(f"max_tokens_per_batch must be positive, got {max_tokens}")
        worst = int(self.cost.argmax()) if len(self.cost) else None
        if worst is not None and self.cost[worst] > max_tokens:
            raise ValueError(f"max_tokens_per_batch={max_tokens} is below pair {worst}'s {self.cost[worst]} tokens; "
                             "raise it to at least max_source_length / max_target_length")
        self.max_tokens, self.seed, self.num_replicas, self.epoch = max_tokens, seed, num_replicas, 0
        self._made = (None, None)  # (epoch, its batches): `len()` and then `iter()` of one epoch cut them once

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of one epoch, in the order they are trained on."""
        if self._made[0] != epoch:
            self._made = (epoch, self._cut(epoch))
        return self._made[1]

    def _cut(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.cost))
        order = order[np.lexsort((self.source[order], self.cost[order]))]  # by cost, then source length
        costs = self.cost[order]
        starts = np.flatnonzero(np.r_[True, costs[1:] != costs[:-1]])  # where each bucket begins
        ends = np.r_[starts[1:], len(order)]
        batches = []
        for start, end in zip(starts, ends):
            per_batch = self.max_tokens // int(costs[start])
            batches += [order[i:min(i + per_batch, end)] for i in range(start, end, per_batch)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        short = -len(batches) % self.num_replicas  # fill the last round, so every rank takes as many steps
        return batches + batches[:short]

    def __iter__(self):
        batches = self.batches(self.epoch)
        self.epoch += 1
        return (batch.tolist() for batch in batches)

    def __len__(self) -> int:  # the same every epoch: the buckets' sizes do not depend on the order
        return len(self.batches(self._made[0] if self._made[0] is not None else self.epoch))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
