"""The CPU command's rows: one decoding workload timed interleaved over five decoders, and the training step of the
package model against the hand reference's.

Decoders, all greedy and all decoding exactly `new_tokens` tokens per row (end of sentence suppressed with
`min_new_tokens = max_new_tokens`, in the hand loop by masking it):
`eager` (PyTorch `generate()`), `compiled` (`generate()` with Transformers' compiled decoding), `ort-fp32` and
`ort-int8` (the ONNX export's graphs in ONNX Runtime behind the same `generate()`), `hand` (the reference's cached
greedy loop in PyTorch).
"""

from __future__ import annotations

import torch

from .batches import hand_batch, make_batches
from .config import Size
from .generate_rows import rate_fields, time_decoders
from .models import generate_fixed
from .reference import hand_greedy
from .report import same_rows
from .timing import Timing
from .train_rows import train_rows

CPU_IMPLS = ("eager", "compiled", "ort-fp32", "ort-int8", "hand")
# name -> (batch, shortest source, longest source): one 10-word sentence and its </s>; a batch of 64 sentences.
WORKLOADS = {"latency": (1, 11, 11), "throughput": (64, 8, 16)}


def workload_inputs(workload: str, vocab: int, seed: int = 0) -> dict:
    """Random source ids of the workload's batch and lengths (right-padded), as `hand_batch` gives them on the CPU."""
    batch, shortest, longest = WORKLOADS[workload]
    # make_batches reads only the vocabulary, batch and lengths of a Size: the model fields are left at 0.
    size = Size(workload, vocab=vocab, emb=0, hid=0, layers=0, batch=batch, length=longest, min_length=shortest)
    return hand_batch(make_batches(size, 1, seed)[0], torch.device("cpu"))


def decoders(models: dict, inputs: dict, new_tokens: int, compile) -> dict:
    """impl -> a function decoding `inputs` once, returning the (B, new_tokens) new tokens. `models` holds "eager"
    (the PyTorch model, also used compiled), "ort-fp32", "ort-int8" and "hand" (the reference)."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    config = models["eager"].config

    def generate(model, compiled=None):
        return lambda: generate_fixed(model, ids, mask, new_tokens, compile=compiled)[:, 1:]

    return {
        "eager": generate(models["eager"]),
        "compiled": generate(models["eager"], compile),
        "ort-fp32": generate(models["ort-fp32"]),
        "ort-int8": generate(models["ort-int8"]),
        "hand": lambda: hand_greedy(models["hand"], ids, inputs["lengths"], new_tokens,
                                    bos=config.decoder_start_token_id, eos=config.eos_token_id),
    }


def workload_rows(workload: str, models: dict, new_tokens: int, timing: Timing, compile, impls=CPU_IMPLS,
                  seed: int = 0) -> tuple[list[dict], dict]:
    """The rows of one workload (tokens per second, ms per call, first-call seconds: the compilation for
    `compiled`) and the checks: the fraction of rows each decoder decodes as eager `generate()` does."""
    inputs = workload_inputs(workload, models["eager"].config.vocab_size, seed)
    batch = inputs["input_ids"].shape[0]
    chosen = {k: v for k, v in decoders(models, inputs, new_tokens, compile).items() if k in impls}
    results = time_decoders(chosen, timing, torch.device("cpu"))
    rows, checks = [], {}
    for impl in chosen:
        row = {"workload": workload, "impl": impl, "batch": batch, "source_length": inputs["input_ids"].shape[1],
               "new_tokens": new_tokens, "tokens_per_s": None, **rate_fields(results[impl], batch, new_tokens)}
        if row["tokens_per_s"]:
            row["ms_per_call"] = round(1000 * batch * new_tokens / row["tokens_per_s"], 3)
        rows.append(row)
    eager = results.get("eager", {}).get("tokens")
    for impl in chosen:
        if impl != "eager" and eager is not None and "tokens" in results[impl]:
            checks[f"{impl} = eager generate, {workload} (fraction of rows)"] = same_rows(results[impl]["tokens"],
                                                                                          eager)
    return rows, checks


def training_pair(size: Size, timing: Timing, seed: int = 0) -> list[dict]:
    """The package model's training step against the hand reference's, in the same loop, fp32 on the CPU."""
    return train_rows(size, "fp32", ["hand", "model"], torch.device("cpu"), timing, seed=seed)
