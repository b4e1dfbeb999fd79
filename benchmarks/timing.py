"""How the benchmarks time: steps counted in segments read at device syncs, several implementations timed
interleaved (one segment of each in turn), and peak device memory above a starting point.

Interleaving is what makes a ratio of two rows mean something on a machine whose speed drifts (clocks, other
tenants): the drift touches every implementation of the ratio alike.
"""

from __future__ import annotations

import contextlib
import gc
import time
import traceback
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Timing:
    warmup: int = 3  # untimed steps (or generate calls) first
    min_steps: int = 3  # at least this many timed steps
    max_steps: int = 1000  # at most this many timed steps
    seconds: float = 2.0  # time steps until this much wall time has passed (checked without a sync)
    segments: int = 4  # the timed steps are cut in this many segments; the row's rate is their median

    @property
    def step_cap(self) -> int:
        """The most timed steps a row can take."""
        k = max(1, self.segments)
        return k * -(-self.max_steps // k)

    def segment_done(self, steps: int, elapsed: float) -> bool:
        """Whether a segment of `steps` steps over `elapsed` seconds (read without a sync) may end."""
        k = max(1, self.segments)
        return steps >= -(-self.max_steps // k) or (steps >= -(-self.min_steps // k) and elapsed >= self.seconds / k)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SegmentClock:
    """Device-synced clock readings at segment ends; `summary()` gives the median segment's steps per second."""

    def __init__(self, device: torch.device):
        self.device, self.segments = device, []
        self.start, self.steps = None, 0

    def begin(self) -> None:
        sync(self.device)
        self.start, self.steps = time.perf_counter(), 0

    def tick(self, timing: Timing) -> bool:
        """Count one step; True when the segment has ended (its time is then recorded)."""
        self.steps += 1
        if not timing.segment_done(self.steps, time.perf_counter() - self.start):
            return False
        sync(self.device)
        self.segments.append((self.steps, time.perf_counter() - self.start))
        return True

    def summary(self) -> dict:
        rates = sorted(n / t for n, t in self.segments)
        mid = len(rates) // 2
        median = rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2
        return {
            "steps_per_s": median,
            "steps": sum(n for n, _ in self.segments),
            "seconds": round(sum(t for _, t in self.segments), 3),
            "spread": round((rates[-1] - rates[0]) / median, 3),  # (fastest - slowest segment) / median
        }


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class MemoryMeter:
    """Peak memory allocated above what was allocated at construction, in GB (0 on CPU)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.base = 0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)

    def peak_gb(self) -> float:
        if self.device.type != "cuda":
            return 0.0
        return round((torch.cuda.max_memory_allocated(self.device) - self.base) / 1e9, 3)


def prime(device: torch.device) -> None:
    """Run a tiny GRU and linear layer forward and backward in each precision once, so that the one-time library
    set-up (cuBLAS and cuDNN handles and workspaces, which the caching allocator counts) is not charged to the
    first row's time or memory."""
    if device.type != "cuda":
        return
    gru, linear = nn.GRU(8, 8, 2, batch_first=True).to(device), nn.Linear(8, 8).to(device)
    x = torch.randn(2, 3, 8, device=device)
    for dtype in (None, torch.float16, torch.bfloat16):
        with contextlib.nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype):
            linear(gru(x)[0]).float().sum().backward()
    sync(device)


def error_text(error: BaseException) -> str:
    """Print the traceback; return the one line a row records."""
    traceback.print_exception(error)
    return f"{type(error).__name__}: {error}"[:500]


class Interleaved:
    """
    Step functions timed against each other. `factories` maps a name to a function that builds (model,
    optimizer...) and returns `step(i)`. Each is built and warmed up at once (`timing.warmup` untimed steps; its peak
    memory is read then). `run_round()` then times one segment of each, the order reversed every other round, so
    that a slow drift of the machine (clocks, other tenants) touches all alike; `finish()` runs the rounds left of
    `timing.segments` and returns the results. A segment ends at the first step after `timing.seconds / segments`
    (read without a device sync); its clock is read after one.

    Results: name -> {"steps_per_s" (median segment), "steps", "seconds", "spread", "peak_mem_gb"}, or
    {"error": text} for one that raised (the others go on).
    """

    def __init__(self, factories: dict, timing: Timing, device: torch.device):
        self.timing, self.device, self.rounds = timing, device, 0
        self.results, self.steps, self.clocks, self.counters = {}, {}, {}, {}
        for name, make in factories.items():
            try:
                meter = MemoryMeter(device)
                self.steps[name] = make()
                for i in range(timing.warmup):
                    self.steps[name](i)
                sync(device)
                self.results[name] = {"peak_mem_gb": meter.peak_gb()}
                self.clocks[name], self.counters[name] = SegmentClock(device), timing.warmup
            except Exception as error:  # noqa: BLE001 - a failing row must not end the run
                self.results[name] = {"error": error_text(error)}
                self.steps.pop(name, None)

    def run_round(self) -> None:
        names = list(self.clocks)
        for name in names if self.rounds % 2 == 0 else names[::-1]:
            clock = self.clocks[name]
            try:
                clock.begin()
                while True:
                    self.steps[name](self.counters[name])
                    self.counters[name] += 1
                    if clock.tick(self.timing):
                        break
            except Exception as error:  # noqa: BLE001
                self.results[name] = {"error": error_text(error)}
                del self.clocks[name], self.steps[name]
        self.rounds += 1

    def finish(self) -> dict:
        while self.rounds < max(1, self.timing.segments):
            self.run_round()
        for name, clock in self.clocks.items():
            self.results[name].update(clock.summary())
        self.clocks.clear()
        self.steps.clear()
        return self.results


def interleaved_loops(factories: dict, timing: Timing, device: torch.device) -> dict:
    """Build, warm up and time `factories` interleaved (see `Interleaved`); return their results."""
    return Interleaved(factories, timing, device).finish()
