"""Generation rows: decoders that each produce a fixed number of new tokens, timed interleaved, one call per step,
in output tokens per second. `time_decoders` serves the GPU rows here and the CPU command's rows (`cpu_rows`).

GPU impls: `hand` (the reference's cached greedy loop), `greedy` (eager `generate()`), `compiled` (greedy
`generate()` with Transformers' compiled decoding) and `beam4` (beam search, which Transformers never compiles).
"""

from __future__ import annotations

import contextlib
import time

import torch

from .models import compile_config, generate_fixed
from .reference import hand_greedy
from .timing import Timing, interleaved_loops, sync

GEN_IMPLS = ("hand", "greedy", "compiled", "beam4")


def time_decoders(decoders: dict, timing: Timing, device: torch.device) -> dict:
    """
    `decoders` maps a name to a function that decodes once and returns its new tokens (B, n). Each one's first call
    runs alone and is timed (`first_call_s`: for a compiled decoder, its compilation), then all are warmed up and timed
    interleaved (`interleaved_loops`). Returns name -> `interleaved_loops`' result plus `first_call_s` and `tokens`
    (the last call's output), or {"error"}.
    """
    last, first = {}, {}

    def factory(name: str, decode):
        def call(_i: int) -> None:
            last[name] = decode()

        def make():
            start = time.perf_counter()
            call(0)
            sync(device)
            first[name] = round(time.perf_counter() - start, 3)
            return call

        return make

    results = interleaved_loops({name: factory(name, d) for name, d in decoders.items()}, timing, device)
    for name, result in results.items():
        if "error" not in result:
            result.update(first_call_s=first[name], tokens=last[name])
    return results


def rate_fields(result: dict, batch: int, new_tokens: int) -> dict:
    """A decoder's row fields: output tokens per second (batch x new_tokens per call), calls, seconds, spread and
    first-call seconds; or {"error"} (also when it returned another shape than (batch, new_tokens))."""
    if "error" in result:
        return {"error": result["error"]}
    if tuple(result["tokens"].shape) != (batch, new_tokens):
        return {"error": f"returned shape {tuple(result['tokens'].shape)}, expected {(batch, new_tokens)}"}
    return {"tokens_per_s": round(result["steps_per_s"] * batch * new_tokens, 1), "calls": result["steps"],
            "seconds": result["seconds"], "spread": result["spread"], "first_call_s": result["first_call_s"]}


def _gpu_decoder(impl: str, model, ref, inputs: dict, new_tokens: int, amp, compile):
    if impl not in GEN_IMPLS:
        raise ValueError(f"unknown generation impl {impl!r}")

    def decode():
        with amp:
            if impl == "hand":
                return hand_greedy(ref, inputs["input_ids"], inputs["lengths"], new_tokens)
            out = generate_fixed(model, inputs["input_ids"], inputs["attention_mask"], new_tokens,
                                 num_beams=4 if impl == "beam4" else 1, compile=compile if impl == "compiled" else None)
            return out[:, 1:]  # drop the decoder start token

    return decode


def generate_rows(impls: list[str], precision: str, new_tokens: int, model, ref, inputs: dict, device,
                  timing: Timing, outputs: dict, compile_backend: str = "inductor") -> list[dict]:
    """Time the generation rows of one precision and length, interleaved (`time_decoders`). `model`/`ref` are
    already in the row's weight dtype; for "bf16-autocast" they are float32 and run under autocast. Each impl's last
    output is left in `outputs[(impl, precision, new_tokens)]`."""
    batch = inputs["input_ids"].shape[0]
    autocast_bf16 = precision == "bf16-autocast"
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if autocast_bf16 else contextlib.nullcontext()
    compile = compile_config(device, compile_backend)
    decoders = {impl: _gpu_decoder(impl, model, ref, inputs, new_tokens, amp, compile) for impl in impls}
    results = time_decoders(decoders, timing, device)
    rows = []
    for impl in impls:
        row = {"impl": impl, "precision": precision, "new_tokens": new_tokens, "batch": batch, "tokens_per_s": None}
        row.update(rate_fields(results[impl], batch, new_tokens))
        if "error" not in row:
            outputs[(impl, precision, new_tokens)] = results[impl]["tokens"]
        rows.append(row)
    return rows
