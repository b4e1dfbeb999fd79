"""Training rows: `hand` (the reference in a plain loop), `model` (the package model in the same loop) and
`trainer` (the package model through `Seq2SeqTrainer`), for one size and precision, timed interleaved. A row holds
non-pad target tokens per second, peak device memory and the dtype the GRUs really ran in."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .batches import hand_batch, make_batches, tokens_per_batch
from .config import AMP_DTYPES, LEARNING_RATE, Size
from .models import build_model, package_loss, watch_gru_dtypes
from .reference import build_reference, reference_loss
from .timing import Interleaved, MemoryMeter, Timing, error_text, reset_memory
from .trainer_rows import trainer_run

TRAIN_IMPLS = ("hand", "model", "trainer")
N_BATCHES = 8  # distinct batches every impl cycles through


def autocast(device: torch.device, precision: str):
    dtype = AMP_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(params, device: torch.device) -> torch.optim.Optimizer:
    # Fused Adam on CUDA: the Trainer's default optimizer there is fused AdamW (weight decay 0 = Adam).
    return torch.optim.Adam(params, lr=LEARNING_RATE, fused=device.type == "cuda")


def hand_loop_step(module: nn.Module, loss_fn, batches: list[dict], device, precision: str):
    """One training step function over `batches` (cycled): autocast forward, (scaled) backward, clip 1, Adam."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, device)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    module.train()

    def step(i: int) -> None:
        batch = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = loss_fn(module, batch)
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()

    return step


def _loop_factory(impl: str, size: Size, device, precision: str, batches: list[dict], seed: int,
                  gru_autocast: str | None, gru_dtypes: dict):
    """`Interleaved`'s factory for the "hand" or "model" impl: builds the module (its GRU dtypes watched in
    `gru_dtypes`) and returns its step function."""
    def make():
        if impl == "hand":
            module, loss_fn = build_reference(size, device, seed, gru_autocast=gru_autocast), reference_loss
        elif impl == "model":
            module, loss_fn = build_model(size, device, seed, gru_autocast=gru_autocast), package_loss
        else:
            raise ValueError(f"unknown training impl {impl!r}")
        gru_dtypes[impl] = watch_gru_dtypes(module)
        return hand_loop_step(module, loss_fn, batches, device, precision)

    return make


def _time_impls(size: Size, precision: str, impls: list[str], device, timing: Timing, batches: list[dict],
                seed: int, gru_autocast: str | None, gru_dtypes: dict) -> dict:
    """Build, warm up and time the impls interleaved (the Trainer's segments drive the others'); impl -> result."""
    results, loops = {}, None
    reset_memory(device)
    try:
        on_device = [hand_batch(b, device) for b in batches]
        loops = Interleaved({i: _loop_factory(i, size, device, precision, on_device, seed, gru_autocast, gru_dtypes)
                             for i in impls if i != "trainer"}, timing, device)
        if "trainer" in impls:
            try:
                meter = MemoryMeter(device)
                module = build_model(size, device, seed, gru_autocast=gru_autocast)
                gru_dtypes["trainer"] = watch_gru_dtypes(module)
                results["trainer"] = trainer_run(module, batches, device, precision, timing, seed, meter,
                                                 between=loops.run_round)
                del module  # freed before the other loops' last rounds and the memory reset below
            except Exception as error:  # noqa: BLE001
                results["trainer"] = {"error": error_text(error)}
        results.update(loops.finish())
    except Exception as error:  # noqa: BLE001
        text = error_text(error)
        for impl in impls:
            results.setdefault(impl, {"error": text})
    finally:
        del loops
        reset_memory(device)
    return results


def train_rows(size: Size, precision: str, impls: list[str], device: torch.device, timing: Timing,
               seed: int = 0, gru_autocast: str | None = None) -> list[dict]:
    """
    Measure the training rows of one size and precision, all interleaved: "hand" and "model" are built and warmed up
    (`Interleaved`), then the Trainer trains, and after each of its timed segments one segment of each of the
    others runs. Every impl reads the same batches. Errors are recorded in the rows, never raised.
    """
    rows = {i: {"size": size.name, "precision": precision, "impl": i, "tokens_per_s": None, "peak_mem_gb": None}
            for i in impls}
    try:
        batches = make_batches(size, N_BATCHES, seed)
    except Exception as error:  # noqa: BLE001
        text = error_text(error)
        return [{**row, "error": text} for row in rows.values()]
    tokens, gru_dtypes = tokens_per_batch(batches[0]), {}
    results = _time_impls(size, precision, impls, device, timing, batches, seed, gru_autocast, gru_dtypes)
    for impl, row in rows.items():
        result = results.get(impl, {"error": "not measured"})
        if "error" in result:
            row["error"] = result["error"]
            continue
        row.update(tokens_per_s=round(result["steps_per_s"] * tokens, 1), peak_mem_gb=result["peak_mem_gb"],
                   steps=result["steps"], seconds=result["seconds"], spread=result["spread"],
                   gru_dtype="/".join(sorted(gru_dtypes.get(impl, ()))))
    return list(rows.values())
