"""A seeded random permutation of `range(n)` that costs no memory: any slice of it is computed on demand.

`np.random.permutation(n)` holds n int64s (320 MB at 40M pairs) and torch's `RandomSampler` a Python list of n ints
(a pointer and an int object each). `Permutation(n, seed)` is a 4-round Feistel network over the smallest even power
of two >= n, with cycle walking (a value that lands outside `range(n)` is permuted again until it falls inside), the
construction of format-preserving encryption: a bijection of `range(n)` whose order looks random, computed for a numpy
array of positions at a time. Each (seed, round) pair gives an independent round key.
"""

import numpy as np

ROUNDS = 4
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _mix(values: np.ndarray, key: np.uint64) -> np.ndarray:
    """A 64-bit hash of `values` under `key` (splitmix64's finaliser)."""
    z = (values + key) * _MIX[0]
    z = (z ^ (z >> np.uint64(30))) * _MIX[1]
    z = (z ^ (z >> np.uint64(27))) * _MIX[2]
    return z ^ (z >> np.uint64(31))


class Permutation:
    """`perm[positions]`: where each position of the shuffled order points in `range(n)`; the same for the same
    `(n, seed)`, on every process."""

    def __init__(self, n: int, seed):
        self.n = int(n)
        bits = max(2, (max(self.n - 1, 1)).bit_length())
        self.half = (bits + 1) // 2
        self.mask = np.uint64((1 << self.half) - 1)
        entropy = np.random.SeedSequence(seed).generate_state(ROUNDS, dtype=np.uint64)
        self.keys = [np.uint64(k) for k in entropy]

    def _round_trip(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> np.uint64(self.half), x & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right, key) & self.mask)
        return (left << np.uint64(self.half)) | right

    def __getitem__(self, positions) -> np.ndarray:
        """The permuted values at `positions` (an int, a slice or an array of ints in `range(n)`), as int64."""
        if isinstance(positions, slice):
            positions = np.arange(*positions.indices(self.n))
        x = np.asarray(positions, dtype=np.uint64)
        with np.errstate(over="ignore"):
            x = self._round_trip(x)
            outside = x >= self.n
            while outside.any():  # cycle walking: at most a few rounds, as the domain is < 4n
                x[outside] = self._round_trip(x[outside])
                outside = x >= self.n
        return x.astype(np.int64)

    def __len__(self) -> int:
        return self.n

    def chunks(self, size: int):
        """The whole permutation, `size` values at a time."""
        for start in range(0, self.n, size):
            yield self[start:min(start + size, self.n)]
