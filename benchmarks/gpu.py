#!/usr/bin/env python
"""Throughput benchmark of hf-gru-seq2seq against a hand-written reference of the same architecture.

One run measures, and writes as it goes to `<out>/<YYYY-MM-DD>-<device-slug>.json` (and `.md`):

* training throughput (non-pad target tokens per second, peak GPU memory) of
  - `hand`:    a plain PyTorch loop (Adam, teacher forcing, cross-entropy, grad clip 1) over `ReferenceSeq2Seq`, a
               minimal batch-first re-implementation of the d2l GRU encoder-decoder written here;
  - `model`:   the package's `GRUSeq2SeqForConditionalGeneration` in the same loop;
  - `trainer`: the package model through `transformers.Seq2SeqTrainer`;
  for each precision (fp32, fp16, bf16) and size (d2l, base, large);
* generation throughput (output tokens per second) of a hand-written cached greedy loop over the reference
  (`hand`) and of the package's `generate()` (`greedy`, `beam4`), with fp32 weights, bf16 weights, and fp32
  weights under bf16 autocast;
* how often half-precision greedy output equals fp32's (`half_precision_match_rate`);
* the ratios the project targets (see `ratios()`).

Implementations compared in a ratio are timed interleaved: short timed segments of each in turn (see
`Interleaved`; the Trainer's segments run inside its own loop, the others between them), so that the machine's
drift touches all alike.

Run on a GPU:   PYTHONPATH=. python benchmarks/gpu.py --out DIR
Quick CPU run:  PYTHONPATH=. python benchmarks/gpu.py --cpu          (writes under /tmp; never commit CPU numbers)

Imports only torch, transformers, accelerate (through the Trainer) and this package.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import transformers  # noqa: E402
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback  # noqa: E402

import hf_gru_seq2seq  # noqa: E402
from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration  # noqa: E402

PAD, BOS, EOS, FIRST_TOKEN = 0, 1, 2, 3  # random tokens are drawn from [FIRST_TOKEN, vocab)


@dataclass(frozen=True)
class Size:
    name: str
    vocab: int
    emb: int
    hid: int
    layers: int
    batch: int
    length: int  # source and target length (before padding is cut off)
    dropout: float = 0.2


SIZES = {
    "d2l": Size("d2l", vocab=200, emb=32, hid=32, layers=2, batch=64, length=10),
    "small": Size("small", vocab=1000, emb=64, hid=128, layers=2, batch=32, length=16),  # the --cpu stand-in
    "base": Size("base", vocab=8000, emb=256, hid=512, layers=2, batch=128, length=32),
    "large": Size("large", vocab=32000, emb=512, hid=1024, layers=4, batch=256, length=64),
}
AMP_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
WEIGHT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TRAIN_IMPLS = ("hand", "model", "trainer")
GEN_IMPLS = ("hand", "greedy", "beam4")
LEARNING_RATE = 1e-3
# The package's GRU precision policy under autocast, when it has one (see GRUSeq2SeqConfig.gru_autocast).
PACKAGE_GRU_AUTOCAST = getattr(GRUSeq2SeqConfig(), "gru_autocast", None)


# ----------------------------------------------------------------------------------------------------------------
# The reference implementation
# ----------------------------------------------------------------------------------------------------------------


class ReferenceSeq2Seq(nn.Module):
    """
    The d2l GRU encoder-decoder, batch-first, as little code as it takes: embedding + GRU encoder over the real
    tokens (packed, lengths known on the host); the decoder reads `[embedding(token) ; context]`, context being the
    encoder's final top-layer state, and starts from the encoder's final state; a linear head.

    `gru_autocast` is the GRUs' precision under `torch.autocast`, as the package's config field of that name:
    "torch" leaves it to autocast (cuDNN GRUs then run in float16, even under bf16 autocast), "match" runs them in
    autocast's dtype, "float32" keeps them in float32.
    """

    def __init__(self, vocab: int, tgt_vocab: int, emb: int, hid: int, layers: int, dropout: float = 0.0,
                 gru_autocast: str = "torch"):
        super().__init__()
        if gru_autocast not in ("torch", "match", "float32"):
            raise ValueError(f"gru_autocast must be torch, match or float32, got {gru_autocast!r}")
        self.gru_autocast = gru_autocast
        dropout = dropout if layers > 1 else 0.0
        self.enc_emb = nn.Embedding(vocab, emb)
        self.enc_rnn = nn.GRU(emb, hid, layers, dropout=dropout, batch_first=True)
        self.dec_emb = nn.Embedding(tgt_vocab, emb)
        self.dec_rnn = nn.GRU(emb + hid, hid, layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hid, tgt_vocab)

    @classmethod
    def for_size(cls, size: Size, gru_autocast: str = "torch") -> "ReferenceSeq2Seq":
        return cls(size.vocab, size.vocab, size.emb, size.hid, size.layers, size.dropout, gru_autocast)

    def run_gru(self, rnn: nn.GRU, x, state):
        device = (x.data if isinstance(x, PackedSequence) else x).device.type
        if self.gru_autocast == "torch" or not torch.is_autocast_enabled(device):
            return rnn(x, state)
        dtype = torch.float32 if self.gru_autocast == "float32" else torch.get_autocast_dtype(device)
        if device == "cuda" and dtype == torch.bfloat16 and (torch.backends.cudnn.version() or 0) < 91300:
            return rnn(x, state)  # cuDNN before 9.13 has no bf16 RNN: as the package, leave it to autocast
        state = None if state is None else state.to(dtype)
        with torch.autocast(device, enabled=False):
            if rnn.weight_ih_l0.dtype == dtype:
                return rnn(x.to(dtype), state)
            # One cast of all weights into one contiguous buffer, in nn.GRU's order. (For bf16, cuDNN still copies
            # them into its own layout at every call, with a warning, as it does for the package model.)
            names = rnn._flat_weights_names
            weights = [getattr(rnn, n) for n in names]
            flat = torch.cat([w.reshape(-1) for w in weights]).to(dtype)
            views = {n: v.view_as(w) for n, w, v in zip(names, weights, flat.split([w.numel() for w in weights]))}
            return torch.func.functional_call(rnn, views, (x.to(dtype), state))

    def encode(self, input_ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(B, S) ids, host lengths (None: no padding) -> final state (L, B, H)."""
        x = self.enc_emb(input_ids)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return self.run_gru(self.enc_rnn, x, None)[1]

    def decode(self, tokens: torch.Tensor, state: torch.Tensor, context: torch.Tensor):
        """(B, T) ids, (L, B, H) state, (B, H) context -> logits (B, T, V), new state."""
        e = self.dec_emb(tokens)
        x = torch.cat([e, context[:, None].expand(-1, tokens.shape[1], -1).to(e.dtype)], -1)
        y, state = self.run_gru(self.dec_rnn, x, state.to(e.dtype))
        return self.head(y), state

    def forward(self, input_ids, lengths, decoder_input_ids):
        state = self.encode(input_ids, lengths)
        return self.decode(decoder_input_ids, state, state[-1])[0]


def copy_package_weights(ref: ReferenceSeq2Seq, model: GRUSeq2SeqForConditionalGeneration) -> ReferenceSeq2Seq:
    """Load the package model's weights into the reference (in place; GRU weights stay cuDNN-flat)."""
    src = model.state_dict()
    prefixes = {"enc_emb.": "model.encoder.embedding.", "enc_rnn.": "model.encoder.rnn.",
                "dec_emb.": "model.decoder.embedding.", "dec_rnn.": "model.decoder.rnn.", "head.": "lm_head."}
    mapped = {}
    for key in ref.state_dict():
        prefix = next(p for p in prefixes if key.startswith(p))
        mapped[key] = src[prefixes[prefix] + key[len(prefix):]]
    ref.load_state_dict(mapped)
    return ref


def reference_loss(ref: ReferenceSeq2Seq, batch: dict) -> torch.Tensor:
    logits = ref(batch["input_ids"], batch["lengths"], batch["decoder_input_ids"])
    return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100)


@torch.no_grad()
def hand_greedy(ref: ReferenceSeq2Seq, input_ids, lengths, new_tokens: int, bos: int = BOS, eos: int = EOS):
    """Cached greedy decoding: the encoder once, then one GRU step per token carrying the state. Never emits eos
    (as `generate(min_new_tokens=new_tokens)`), so every row decodes exactly `new_tokens` tokens."""
    state = ref.encode(input_ids, lengths)
    context = state[-1]
    token = torch.full((input_ids.shape[0], 1), bos, dtype=torch.long, device=input_ids.device)
    out = torch.empty((input_ids.shape[0], new_tokens), dtype=torch.long, device=input_ids.device)
    for t in range(new_tokens):
        logits, state = ref.decode(token, state, context)
        logits = logits[:, -1].float()  # generate() also picks the argmax of float32 scores
        logits[:, eos] = -float("inf")
        token = logits.argmax(-1, keepdim=True)
        out[:, t : t + 1] = token
    return out


# ----------------------------------------------------------------------------------------------------------------
# Data and models
# ----------------------------------------------------------------------------------------------------------------


def make_batches(size: Size, n_batches: int, seed: int = 0, batch: int | None = None) -> list[dict]:
    """
    Random right-padded batches on the host. Source and target lengths are uniform in [length/2, length]; every
    batch holds a permutation of the same lengths, so all batches have the same number of non-pad target tokens
    (`tokens_per_batch`) and the same packing work, whichever of them an implementation happens to read.
    """
    g = torch.Generator().manual_seed(seed)
    b, n = batch or size.batch, size.length
    src_lengths = torch.randint(max(1, n // 2), n + 1, (b,), generator=g)
    tgt_lengths = torch.randint(max(1, n // 2), n + 1, (b,), generator=g)
    pos = torch.arange(n)
    batches = []
    for _ in range(n_batches):
        src_mask = pos[None] < src_lengths[torch.randperm(b, generator=g)][:, None]
        tgt_mask = pos[None] < tgt_lengths[torch.randperm(b, generator=g)][:, None]
        input_ids = torch.randint(FIRST_TOKEN, size.vocab, (b, n), generator=g).masked_fill(~src_mask, PAD)
        labels = torch.randint(FIRST_TOKEN, size.vocab, (b, n), generator=g).masked_fill(~tgt_mask, -100)
        batches.append({"input_ids": input_ids, "attention_mask": src_mask.long(), "labels": labels})
    return batches


def tokens_per_batch(batch: dict) -> int:
    return int(batch["labels"].ne(-100).sum())


def hand_batch(batch: dict, device: torch.device) -> dict:
    """What a hand-written loop gets from its data pipeline: tensors on the device, lengths on the host, the
    decoder input (labels shifted right behind BOS)."""
    lengths = batch["attention_mask"].sum(1)
    dec_in = torch.cat([torch.full_like(batch["labels"][:, :1], BOS), batch["labels"][:, :-1]], 1)
    out = {k: v.to(device) for k, v in batch.items()}
    out["decoder_input_ids"] = dec_in.masked_fill(dec_in == -100, PAD).to(device)
    out["lengths"] = None if int(lengths.min()) == batch["input_ids"].shape[1] else lengths
    return out


def package_config(size: Size, dropout: float | None = None, gru_autocast: str | None = None) -> GRUSeq2SeqConfig:
    extra = {} if gru_autocast is None else {"gru_autocast": gru_autocast}
    return GRUSeq2SeqConfig(
        vocab_size=size.vocab, embedding_size=size.emb, hidden_size=size.hid, num_hidden_layers=size.layers,
        dropout=size.dropout if dropout is None else dropout, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
        **extra,
    )


def build_model(size: Size, device: torch.device, seed: int = 0, dropout: float | None = None,
                gru_autocast: str | None = None):
    """The package model; `gru_autocast` None keeps the package's default policy."""
    torch.manual_seed(seed)
    with torch.device(device):  # initialise in place: GRU weights are created cuDNN-flat on the device
        return GRUSeq2SeqForConditionalGeneration(package_config(size, dropout, gru_autocast))


def build_reference(size: Size, device: torch.device, seed: int = 0, gru_autocast: str | None = None):
    """The reference; `gru_autocast` None follows the package's default policy ("torch" if it has none)."""
    torch.manual_seed(seed)
    with torch.device(device):
        return ReferenceSeq2Seq.for_size(size, gru_autocast or PACKAGE_GRU_AUTOCAST or "torch")


def watch_gru_dtypes(module: nn.Module) -> set:
    """The dtypes the module's GRUs output on their next call, collected into the returned set (the hooks then
    remove themselves). The package's encoder and decoder call their GRU's weights without the module (layer by
    layer), so their own outputs, which are the GRU outputs, are watched instead."""
    seen, handles = set(), {}
    package_modules = (hf_gru_seq2seq.modeling_gru_seq2seq.GRUSeq2SeqEncoder,
                       hf_gru_seq2seq.modeling_gru_seq2seq.GRUSeq2SeqDecoder)

    def hook(mod, _inputs, output):
        out = output[0].data if isinstance(output[0], PackedSequence) else output[0]
        seen.add(str(out.dtype).removeprefix("torch."))
        handles.pop(id(mod)).remove()

    for m in module.modules():
        if isinstance(m, (nn.GRU, *package_modules)):
            handles[id(m)] = m.register_forward_hook(hook)
    return seen


# ----------------------------------------------------------------------------------------------------------------
# Timing helpers
# ----------------------------------------------------------------------------------------------------------------


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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class MemoryMeter:
    """Peak memory allocated above what was allocated at `start()`, in GB (0 on CPU)."""

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


def autocast(device: torch.device, precision: str):
    dtype = AMP_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(params, device: torch.device) -> torch.optim.Optimizer:
    # Fused Adam on CUDA: the Trainer's default optimizer there is fused AdamW (weight decay 0 = Adam).
    return torch.optim.Adam(params, lr=LEARNING_RATE, fused=device.type == "cuda")


def trainer_optim_name(device: torch.device) -> str:
    return "adamw_torch_fused" if device.type == "cuda" else "adamw_torch"


# ----------------------------------------------------------------------------------------------------------------
# Training rows
# ----------------------------------------------------------------------------------------------------------------


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


def package_loss(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


class FixedBatches(torch.utils.data.Dataset):
    """Each item is a whole pre-made batch (read with batch size 1 and `first_item` as collator)."""

    def __init__(self, batches: list[dict], length: int = 1_000_000):
        self.batches, self.length = batches, length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return self.batches[i % len(self.batches)]


def first_item(items: list[dict]) -> dict:
    return items[0]


class StepTimer(TrainerCallback):
    """Times optimizer steps after `timing.warmup` in segments, as `Interleaved` does, reading the clock at step
    ends; reads the peak memory after the warm-up; stops the Trainer when the last segment ends. `between()`, if
    given, runs after each segment but the last (off the Trainer's clock): it interleaves other loops."""

    def __init__(self, timing: Timing, device: torch.device, meter: MemoryMeter, between=None):
        self.timing, self.meter, self.clock, self.between = timing, meter, SegmentClock(device), between
        self.result, self.peak_mem_gb = None, None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.timing.warmup == 0:
            self.peak_mem_gb = self.meter.peak_gb()
            self.clock.begin()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.timing.warmup:
            sync(self.clock.device)
            self.peak_mem_gb = self.meter.peak_gb()
            self.clock.begin()
        elif state.global_step > self.timing.warmup and self.result is None and self.clock.tick(self.timing):
            if len(self.clock.segments) < max(1, self.timing.segments):
                if self.between is not None:
                    self.between()
                self.clock.begin()
            else:
                self.result = {**self.clock.summary(), "peak_mem_gb": self.peak_mem_gb}
                control.should_training_stop = True
        return control


def trainer_run(model, batches_cpu: list[dict], device, precision: str, timing: Timing, seed: int = 0,
                meter: MemoryMeter | None = None, between=None) -> dict:
    """Train through `Seq2SeqTrainer` until `timing` is met; return the timing summary (as `Interleaved`).
    `between` runs between the timed segments (see `StepTimer`)."""
    out_dir = tempfile.mkdtemp(prefix="gru-bench-trainer-")
    try:
        args = Seq2SeqTrainingArguments(
            output_dir=out_dir,
            per_device_train_batch_size=1,  # one pre-made batch per item
            max_steps=timing.warmup + timing.step_cap + 1,
            learning_rate=LEARNING_RATE,
            weight_decay=0.0,
            optim=trainer_optim_name(device),
            lr_scheduler_type="constant",
            max_grad_norm=1.0,
            logging_steps=1_000_000,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            dataloader_num_workers=0,
            fp16=precision == "fp16",
            bf16=precision == "bf16",
            use_cpu=device.type == "cpu",
            disable_tqdm=True,
            remove_unused_columns=False,
            seed=seed,
        )
        timer = StepTimer(timing, device, meter or MemoryMeter(device), between)
        trainer = Seq2SeqTrainer(
            model=model, args=args, train_dataset=FixedBatches(batches_cpu), data_collator=first_item,
            callbacks=[timer],
        )
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # no end-of-training print
        trainer.train()
        if timer.result is None:
            raise RuntimeError(f"the Trainer stopped after {trainer.state.global_step} steps, before timing ended")
        return timer.result
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def train_rows(size: Size, precision: str, impls: list[str], device: torch.device, timing: Timing,
               n_batches: int = 8, seed: int = 0, gru_autocast: str | None = None) -> list[dict]:
    """
    Measure the training rows of one size and precision, all interleaved: "hand" and "model" are built and warmed up
    (`Interleaved`), then the Trainer trains, and after each of its timed segments one segment of each of the
    others runs. Every impl reads the same batches. Errors are recorded in the rows, never raised.
    """
    rows = {i: {"size": size.name, "precision": precision, "impl": i, "tokens_per_s": None, "peak_mem_gb": None}
            for i in impls}
    try:
        batches = make_batches(size, n_batches, seed)
    except Exception as error:  # noqa: BLE001
        text = error_text(error)
        return [{**row, "error": text} for row in rows.values()]
    tokens = tokens_per_batch(batches[0])
    modules, gru_dtypes, results = {}, {}, {}

    def factory(impl: str):
        def make():
            if impl == "hand":
                module, loss_fn = build_reference(size, device, seed, gru_autocast=gru_autocast), reference_loss
            elif impl == "model":
                module, loss_fn = build_model(size, device, seed, gru_autocast=gru_autocast), package_loss
            else:
                raise ValueError(f"unknown training impl {impl!r}")
            modules[impl], gru_dtypes[impl] = module, watch_gru_dtypes(module)
            return hand_loop_step(module, loss_fn, on_device, device, precision)

        return make

    reset_memory(device)
    loops = None
    try:
        on_device = [hand_batch(b, device) for b in batches]
        loops = Interleaved({i: factory(i) for i in impls if i != "trainer"}, timing, device)
        if "trainer" in impls:
            try:
                meter = MemoryMeter(device)
                module = modules["trainer"] = build_model(size, device, seed, gru_autocast=gru_autocast)
                gru_dtypes["trainer"] = watch_gru_dtypes(module)
                results["trainer"] = trainer_run(module, batches, device, precision, timing, seed, meter,
                                                 between=loops.run_round)
            except Exception as error:  # noqa: BLE001
                results["trainer"] = {"error": error_text(error)}
        results.update(loops.finish())
    except Exception as error:  # noqa: BLE001
        text = error_text(error)
        for impl in impls:
            results.setdefault(impl, {"error": text})
    finally:
        del loops
        modules.clear()
        reset_memory(device)
    for impl, row in rows.items():
        result = results.get(impl, {"error": "not measured"})
        if "error" in result:
            row["error"] = result["error"]
            continue
        row.update(tokens_per_s=round(result["steps_per_s"] * tokens, 1), peak_mem_gb=result["peak_mem_gb"],
                   steps=result["steps"], seconds=result["seconds"], spread=result["spread"],
                   gru_dtype="/".join(sorted(gru_dtypes.get(impl, ()))))
    return list(rows.values())


# ----------------------------------------------------------------------------------------------------------------
# Generation rows
# ----------------------------------------------------------------------------------------------------------------


def generate_fixed(model, input_ids, attention_mask, new_tokens: int, num_beams: int = 1):
    """`generate()` that decodes exactly `new_tokens` tokens (eos suppressed by min_new_tokens)."""
    return model.generate(
        input_ids=input_ids, attention_mask=attention_mask, num_beams=num_beams, do_sample=False,
        max_new_tokens=new_tokens, min_new_tokens=new_tokens,
    )


def generate_rows(impls: list[str], precision: str, new_tokens: int, model, ref, inputs: dict, device,
                  timing: Timing, outputs: dict) -> list[dict]:
    """Time the generation rows of one precision and length, interleaved (`interleaved_loops`). `model`/`ref` are
    already in the row's weight dtype; for "bf16-autocast" they are float32 and run under autocast. Each impl's last
    output is left in `outputs[(impl, precision, new_tokens)]`."""
    batch = inputs["input_ids"].shape[0]
    autocast_bf16 = precision == "bf16-autocast"
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if autocast_bf16 else contextlib.nullcontext()
    last = {}

    def factory(impl: str):
        def call(_i):
            with amp:
                if impl == "hand":
                    last[impl] = hand_greedy(ref, inputs["input_ids"], inputs["lengths"], new_tokens)
                else:
                    num_beams = 1 if impl == "greedy" else 4
                    out = generate_fixed(model, inputs["input_ids"], inputs["attention_mask"], new_tokens, num_beams)
                    last[impl] = out[:, 1:]  # drop the decoder start token

        def make():
            if impl not in GEN_IMPLS:
                raise ValueError(f"unknown generation impl {impl!r}")
            return call

        return make

    results = interleaved_loops({i: factory(i) for i in impls}, timing, device)
    rows = []
    for impl in impls:
        row = {"impl": impl, "precision": precision, "new_tokens": new_tokens, "batch": batch, "tokens_per_s": None}
        result = results[impl]
        if "error" not in result and last[impl].shape != (batch, new_tokens):
            result = {"error": f"{impl} returned shape {tuple(last[impl].shape)}, expected {(batch, new_tokens)}"}
        if "error" in result:
            row["error"] = result["error"]
        else:
            outputs[(impl, precision, new_tokens)] = last[impl]
            row.update(tokens_per_s=round(result["steps_per_s"] * batch * new_tokens, 1), calls=result["steps"],
                       seconds=result["seconds"], spread=result["spread"])
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Half-precision agreement
# ----------------------------------------------------------------------------------------------------------------


def _pad_to(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return F.pad(t, (0, width - t.shape[1]), value=value) if t.shape[1] < width else t


@torch.no_grad()
def half_precision_match_rate(model, input_ids, attention_mask, new_tokens: int | None = None,
                              dtypes=("bf16", "fp16"), num_beams: int = 1, details: bool = False,
                              min_new_tokens: int | None = None) -> dict:
    """
    Fraction of rows whose greedy output (or beam output, with `num_beams`) with the weights in each half dtype
    equals, token for token, the output of the same model in float32 on the same inputs. Decoding stops at eos
    as usual (`max_new_tokens=new_tokens`, default source length + 10; `min_new_tokens` forbids eos before that
    many tokens); rows are compared padded.

    `model` is left as it was (copies are converted). Returns `{"bf16": 0.97, "fp16": 1.0}`; a dtype that fails on
    this device maps to None. With `details`, each value is a dict: `rows`, `tokens` (fraction of equal positions,
    over the padded width), `fp32_mean_length` (tokens before eos in the fp32 output: near 0, the comparison says
    little), `error`.
    """
    new_tokens = new_tokens or input_ids.shape[1] + 10
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    was_training = model.training
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, num_beams=num_beams, do_sample=False,
                  max_new_tokens=new_tokens, min_new_tokens=min_new_tokens)
    try:
        base = model.eval() if model.dtype == torch.float32 else copy.deepcopy(model).float().eval()
        reference = base.generate(**kwargs)
        eos = model.config.eos_token_id
        # Tokens decoded before eos (or the end), averaged over rows: near 0 means the comparison is trivial.
        body = reference[:, 1:]
        stopped = body.eq(eos).cumsum(1).gt(0) if eos is not None else torch.zeros_like(body, dtype=torch.bool)
        fp32_mean_length = (~stopped).sum(1).float().mean().item()
        result = {}
        for name in dtypes:
            try:
                half = copy.deepcopy(base).to(WEIGHT_DTYPES[name]).eval()
                out = half.generate(**kwargs)
                del half
                width = max(out.shape[1], reference.shape[1])
                a, b = _pad_to(out, width, pad), _pad_to(reference, width, pad)
                rows = a.eq(b).all(1).float().mean().item()
                result[name] = {"rows": rows, "tokens": a.eq(b).float().mean().item(),
                                "fp32_mean_length": fp32_mean_length, "error": None}
            except Exception as error:  # noqa: BLE001 - e.g. a dtype this device cannot run
                result[name] = {"rows": None, "tokens": None, "fp32_mean_length": fp32_mean_length,
                                "error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        model.train(was_training)
    return result if details else {k: v["rows"] for k, v in result.items()}


# ----------------------------------------------------------------------------------------------------------------
# Ratios and reports
# ----------------------------------------------------------------------------------------------------------------


def _train_tps(train: list[dict], size: str, precision: str, impl: str):
    for r in train:
        if (r["size"], r["precision"], r["impl"]) == (size, precision, impl):
            return r["tokens_per_s"]
    return None


def _gen_tps(gen: list[dict], impl: str, precision: str, new_tokens: int):
    for r in gen:
        if (r["impl"], r["precision"], r["new_tokens"]) == (impl, precision, new_tokens):
            return r["tokens_per_s"]
    return None


def _ratio(name, num, den, target, higher_is_better=True):
    value = None if not num or not den else round(num / den, 3)
    ok = None if value is None or target is None else (value >= target if higher_is_better else value <= target)
    return {"name": name, "value": value, "target": (">= " if higher_is_better else "<= ") + str(target), "ok": ok}


def ratios(train: list[dict], gen: list[dict]) -> list[dict]:
    """The ratios the project targets, computed from whatever rows were measured (missing rows give None)."""
    out = []
    sizes = list(dict.fromkeys(r["size"] for r in train))
    precisions = list(dict.fromkeys(r["precision"] for r in train))
    for size in ("base", "large"):
        for p in ("bf16", "fp16"):
            if size in sizes:
                out.append(_ratio(f"trainer / hand, {size} {p}", _train_tps(train, size, p, "trainer"),
                                  _train_tps(train, size, p, "hand"), 0.9))
    for size in sizes:
        for p in precisions:
            out.append(_ratio(f"model / hand (same loop), {size} {p}", _train_tps(train, size, p, "model"),
                              _train_tps(train, size, p, "hand"), 0.97))
    if "large" in sizes:
        for impl in TRAIN_IMPLS:
            mixed = [_train_tps(train, "large", p, impl) for p in ("bf16", "fp16")]
            mixed = [m for m in mixed if m]
            out.append(_ratio(f"best mixed precision / fp32, large {impl}", max(mixed) if mixed else None,
                              _train_tps(train, "large", "fp32", impl), 2.5))
    if "base" in sizes:
        for impl in TRAIN_IMPLS:
            for p in ("bf16", "fp16"):
                out.append(_ratio(f"{p} / fp32, base {impl}", _train_tps(train, "base", p, impl),
                                  _train_tps(train, "base", "fp32", impl), 1.0))
    gen_precisions = list(dict.fromkeys(r["precision"] for r in gen))
    new_tokens = sorted(set(r["new_tokens"] for r in gen))
    for p in gen_precisions:
        for n in new_tokens:
            out.append(_ratio(f"generate greedy / hand cached loop, {p} {n} tokens", _gen_tps(gen, "greedy", p, n),
                              _gen_tps(gen, "hand", p, n), 0.5))
    if len(new_tokens) >= 2:
        short, long = new_tokens[0], new_tokens[-1]
        for p in gen_precisions:
            a, b = _gen_tps(gen, "greedy", p, short), _gen_tps(gen, "greedy", p, long)
            # time(long) / time(short) = (long / tps_long) / (short / tps_short)
            t_long, t_short = (long / b if b else None), (short / a if a else None)
            # The target is 2.2 for 96 vs 48 tokens: 1.1 x the token ratio (10% fixed cost allowed).
            out.append(_ratio(f"greedy time({long}) / time({short}), {p}", t_long, t_short,
                              round(1.1 * long / short, 3), higher_is_better=False))
    return out


def _fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def _short_dtype(name: str | None) -> str:
    short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
    return "/".join(short.get(n, n) for n in name.split("/")) if name else "-"


def markdown(report: dict) -> str:
    lines = [f"# GRU seq2seq benchmark: {report['device']}", ""]
    v = report["versions"]
    lines.append("Versions: " + ", ".join(f"{k} {v[k]}" for k in v) + ".")
    lines.append("")
    lines.append(f"Settings: {json.dumps(report.get('settings', {}))}")
    lines += ["", "## Training (non-pad target tokens / s; peak memory GB)", ""]
    lines.append("| size | precision | hand | model | trainer | model/hand | trainer/hand | GRU dtype h/m/t | "
                 "peak GB h/m/t | max spread |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---|---|---:|")
    train = report["train"]
    keys = list(dict.fromkeys((r["size"], r["precision"]) for r in train))
    for size, p in keys:
        rows = {r["impl"]: r for r in train if (r["size"], r["precision"]) == (size, p)}
        tps = {i: rows[i]["tokens_per_s"] if i in rows else None for i in TRAIN_IMPLS}
        mem = "/".join(_fmt(rows[i]["peak_mem_gb"], 2) if i in rows else "-" for i in TRAIN_IMPLS)
        gru = "/".join(_short_dtype(rows[i].get("gru_dtype")) if i in rows else "-" for i in TRAIN_IMPLS)
        spreads = [r["spread"] for r in rows.values() if r.get("spread") is not None]
        mh = round(tps["model"] / tps["hand"], 3) if tps["model"] and tps["hand"] else None
        th = round(tps["trainer"] / tps["hand"], 3) if tps["trainer"] and tps["hand"] else None
        lines.append(f"| {size} | {p} | {_fmt(tps['hand'])} | {_fmt(tps['model'])} | {_fmt(tps['trainer'])} | "
                     f"{_fmt(mh, 3)} | {_fmt(th, 3)} | {gru} | {mem} | {_fmt(max(spreads) if spreads else None, 2)} |")
    lines += ["", "## Generation (output tokens / s)", ""]
    lines.append("| precision | new tokens | batch | hand | greedy | beam4 | greedy/hand | max spread |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    gen = report["generate"]
    for p, n in dict.fromkeys((r["precision"], r["new_tokens"]) for r in gen):
        rows = {r["impl"]: r for r in gen if (r["precision"], r["new_tokens"]) == (p, n)}
        tps = {i: rows[i]["tokens_per_s"] if i in rows else None for i in GEN_IMPLS}
        batch = next(iter(rows.values()))["batch"]
        gh = round(tps["greedy"] / tps["hand"], 3) if tps["greedy"] and tps["hand"] else None
        spreads = [r["spread"] for r in rows.values() if r.get("spread") is not None]
        lines.append(f"| {p} | {n} | {batch} | {_fmt(tps['hand'])} | {_fmt(tps['greedy'])} | {_fmt(tps['beam4'])} | "
                     f"{_fmt(gh, 3)} | {_fmt(max(spreads) if spreads else None, 2)} |")
    lines += ["", "## Targets", "", "| ratio | value | target | met |", "|---|---:|---|---|"]
    for r in report.get("ratios", []):
        met = {True: "yes", False: "**no**", None: "-"}[r["ok"]]
        lines.append(f"| {r['name']} | {_fmt(r['value'], 3)} | {r['target']} | {met} |")
    match = report.get("match")
    if match:
        lines += ["", "## Half-precision greedy output = fp32 output (fraction of rows; tokens)", ""]
        lines.append("| model | inputs | fp32 mean length | bf16 rows | bf16 tokens | fp16 rows | fp16 tokens |")
        lines.append("|---|---|---:|---:|---:|---:|---:|")
        for m in match.get("runs", []):
            r = m["rates"]
            cells = [_fmt(next((x.get("fp32_mean_length") for x in r.values() if x), None), 1)]
            for d in ("bf16", "fp16"):
                x = r.get(d) or {}
                cells += [_fmt(x.get("rows"), 3), _fmt(x.get("tokens"), 3)]
            lines.append(f"| {m['model']} | {m['inputs']} | " + " | ".join(cells) + " |")
        if match.get("note"):
            lines += ["", f"_{match['note']}._"]
    checks = report.get("checks")
    if checks:
        lines += ["", "## Checks", ""] + [f"- {k}: {v}" for k, v in checks.items()]
    errors = [r for r in report["train"] + report["generate"] if r.get("error")]
    if errors:
        lines += ["", "## Errors", ""]
        for r in errors:
            what = " ".join(str(r[k]) for k in ("size", "impl", "precision", "new_tokens") if k in r)
            lines.append(f"- {what}: `{r['error']}`")
    if report.get("skipped"):
        lines += ["", "## Skipped (over --max-seconds)", ""] + [f"- {s}" for s in report["skipped"]]
    for note in report.get("notes", []):
        lines.append(f"\n_{note}_")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def versions() -> dict:
    import accelerate

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "hf_gru_seq2seq": hf_gru_seq2seq.__version__,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="quick CPU run: sizes d2l,small, fp32, short rows, out /tmp")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results; --cpu: /tmp/...)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="skip remaining rows once this much time has passed (default 225; --cpu 50)")
    p.add_argument("--row-seconds", type=float, default=None, help="timed wall time per row (default 2; --cpu 0.3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per training row (default 3; --cpu 1)")
    p.add_argument("--min-steps", type=int, default=3, help="at least this many timed steps/calls per row")
    p.add_argument("--max-steps", type=int, default=1000, help="at most this many timed steps per training row")
    p.add_argument("--sizes", default=None,
                   help="training sizes in run order (default base,large,d2l; --cpu d2l,small)")
    p.add_argument("--precisions", default=None, help="training precisions (default fp32,bf16,fp16; --cpu fp32)")
    p.add_argument("--impls", default=",".join(TRAIN_IMPLS), help="training impls")
    p.add_argument("--gen-size", default=None, help="generation model size (default base; --cpu small)")
    p.add_argument("--gen-batch", type=int, default=None, help="generation batch (default 128; --cpu 16)")
    p.add_argument("--gen-new-tokens", default=None, help="new tokens per row (default 48,96; --cpu 8,16)")
    p.add_argument("--gen-precisions", default=None,
                   help="generation precisions: fp32, bf16, fp16 (weights converted) and bf16-autocast (float32 "
                        "weights under autocast) (default fp32,bf16,bf16-autocast; --cpu fp32)")
    p.add_argument("--gen-impls", default=",".join(GEN_IMPLS), help="generation impls")
    p.add_argument("--segments", type=int, default=4, help="timed segments per row; a row's rate is their median")
    p.add_argument("--gru-autocast", default=None, choices=("torch", "match", "float32"),
                   help="GRU precision under autocast, for the package model and the hand reference alike "
                        f"(default: the package's, now {PACKAGE_GRU_AUTOCAST!r})")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-generate", action="store_true")
    p.add_argument("--skip-match", action="store_true")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's own; --cpu 1, as the sizes are tiny)")
    p.add_argument("--seed", type=int, default=0)
    return p


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    cpu = args.cpu
    defaults = {
        "max_seconds": 50.0 if cpu else 225.0,
        "row_seconds": 0.3 if cpu else 2.0,
        "warmup": 1 if cpu else 3,
        "sizes": "d2l,small" if cpu else "base,large,d2l",
        "precisions": "fp32" if cpu else "fp32,bf16,fp16",
        "gen_size": "small" if cpu else "base",
        "gen_batch": 16 if cpu else 128,
        "gen_new_tokens": "8,16" if cpu else "48,96",
        "gen_precisions": "fp32" if cpu else "fp32,bf16,bf16-autocast",
        "threads": 1 if cpu else 0,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.gru_autocast is not None and PACKAGE_GRU_AUTOCAST is None:
        raise SystemExit("--gru-autocast: this version of the package has no gru_autocast setting")
    if args.out is None:
        default_out = os.path.join(tempfile.gettempdir(), "hf-gru-seq2seq-bench")
        args.out = default_out if cpu else str(ROOT / "benchmarks" / "results")
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    args.sizes, args.precisions, args.impls = split(args.sizes), split(args.precisions), split(args.impls)
    args.gen_new_tokens = [int(x) for x in split(args.gen_new_tokens)]
    args.gen_precisions, args.gen_impls = split(args.gen_precisions), split(args.gen_impls)
    for s in args.sizes + [args.gen_size]:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s!r}; known: {', '.join(SIZES)}")
    for given, known, what in ((args.precisions, AMP_DTYPES, "precision"), (args.impls, TRAIN_IMPLS, "training impl"),
                               (args.gen_precisions, (*WEIGHT_DTYPES, "bf16-autocast"), "generation precision"),
                               (args.gen_impls, GEN_IMPLS, "generation impl")):
        for x in given:
            if x not in known:
                raise SystemExit(f"unknown {what} {x!r}; known: {', '.join(known)}")
    return args


class Run:
    """Holds the report, writes it after every row, and keeps the time budget."""

    def __init__(self, args, device: torch.device):
        self.args, self.device = args, device
        self.t0 = time.perf_counter()
        cpu_name = f"cpu ({platform.processor() or platform.machine()})"
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name
        stem = f"{datetime.date.today().isoformat()}-{slug(name) if device.type == 'cuda' else 'cpu'}"
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        self.json_path, self.md_path = out / f"{stem}.json", out / f"{stem}.md"
        self.report = {
            "device": name,
            "versions": versions(),
            "train": [],
            "generate": [],
            "ratios": [],
            "match": None,
            "checks": {},
            "skipped": [],
            "settings": {
                "row_seconds": args.row_seconds, "warmup": args.warmup, "min_steps": args.min_steps,
                "max_steps": args.max_steps, "max_seconds": args.max_seconds, "seed": args.seed,
                "segments": args.segments, "cpu_threads": torch.get_num_threads(),
                "gru_autocast": args.gru_autocast or PACKAGE_GRU_AUTOCAST or "(package has no policy: torch)",
                "optimizer": f"Adam lr {LEARNING_RATE} (fused on CUDA); Trainer: {trainer_optim_name(device)}, "
                             "constant lr, weight decay 0",
                "dropout": SIZES[args.sizes[0]].dropout if args.sizes else None,
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "sizes": {s: asdict(SIZES[s]) for s in dict.fromkeys(args.sizes + [args.gen_size])},
            },
            "notes": [],
            "complete": False,
            "elapsed_s": 0.0,
        }

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {msg}", flush=True)

    def over_budget(self, what: str, cost: float) -> bool:
        if self.elapsed() + cost > self.args.max_seconds:
            self.report["skipped"].append(f"{what} (at {self.elapsed():.0f}s of {self.args.max_seconds:.0f}s)")
            self.log(f"skip {what}: over --max-seconds")
            return True
        return False

    def save(self) -> None:
        r = self.report
        r["ratios"] = ratios(r["train"], r["generate"])
        r["elapsed_s"] = round(self.elapsed(), 1)
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(r, indent=2) + "\n")
        tmp.replace(self.json_path)
        self.md_path.write_text(markdown(r))


def run_training(run: Run) -> None:
    args, device = run.args, run.device
    timing = Timing(args.warmup, args.min_steps, args.max_steps, args.row_seconds, args.segments)
    for size_name in args.sizes:
        size = SIZES[size_name]
        for precision in args.precisions:
            what = f"train {size_name} {precision} {'/'.join(args.impls)}"
            if run.over_budget(what, len(args.impls) * (args.row_seconds + 0.5) + 1.5):
                continue
            rows = train_rows(size, precision, args.impls, device, timing, seed=args.seed,
                              gru_autocast=args.gru_autocast)
            for row in rows:
                run.report["train"].append(row)
                extra = row.get("error") or (f"{row['steps']} steps in {row['seconds']} s, spread {row['spread']}, "
                                             f"peak {row['peak_mem_gb']} GB, GRU {row['gru_dtype']}")
                run.log(f"train {size_name} {precision} {row['impl']}: {_fmt(row['tokens_per_s'])} tok/s ({extra})")
            run.save()


def run_generation(run: Run) -> None:
    args, device = run.args, run.device
    size = SIZES[args.gen_size]
    timing = Timing(1, args.min_steps, 300, args.row_seconds, args.segments)
    inputs_cpu = make_batches(size, 1, args.seed + 7, batch=args.gen_batch)[0]
    inputs = hand_batch(inputs_cpu, device)
    fp32_model = build_model(size, device, args.seed, gru_autocast=args.gru_autocast).eval()
    fp32_ref = build_reference(size, device, args.seed, gru_autocast=args.gru_autocast)
    fp32_ref = copy_package_weights(fp32_ref, fp32_model).eval()
    outputs = {}
    for precision in args.gen_precisions:
        if run.over_budget(f"generate {precision} (all rows)", len(args.gen_impls) * (args.row_seconds + 0.3) + 0.5):
            continue
        try:
            if precision in ("fp32", "bf16-autocast"):
                model, ref = fp32_model, fp32_ref
            else:
                model = copy.deepcopy(fp32_model).to(WEIGHT_DTYPES[precision]).eval()
                ref = copy.deepcopy(fp32_ref).to(WEIGHT_DTYPES[precision]).eval()
        except Exception as error:  # noqa: BLE001
            for n in args.gen_new_tokens:
                for impl in args.gen_impls:
                    run.report["generate"].append({"impl": impl, "precision": precision, "new_tokens": n,
                                                   "batch": args.gen_batch, "tokens_per_s": None,
                                                   "error": f"{type(error).__name__}: {error}"[:500]})
            continue
        for n in args.gen_new_tokens:
            what = f"generate {'/'.join(args.gen_impls)} {precision} {n} tokens"
            if run.over_budget(what, len(args.gen_impls) * (args.row_seconds + 0.3) + 0.5):
                continue
            for row in generate_rows(args.gen_impls, precision, n, model, ref, inputs, device, timing, outputs):
                run.report["generate"].append(row)
                extra = row.get("error") or f"{row['calls']} calls in {row['seconds']} s, spread {row['spread']}"
                run.log(f"generate {row['impl']} {precision} {n} tokens: {_fmt(row['tokens_per_s'])} tok/s ({extra})")
            run.save()
            hand, greedy = outputs.get(("hand", precision, n)), outputs.get(("greedy", precision, n))
            if hand is not None and greedy is not None:
                same = hand.eq(greedy).all(1).float().mean().item()
                run.report["checks"][f"hand loop = generate greedy, {precision} {n} tokens (fraction of rows)"] = same
        if model is not fp32_model:
            del model, ref
        reset_memory(device)
    del fp32_model, fp32_ref, outputs
    reset_memory(device)


def run_match(run: Run) -> None:
    args, device = run.args, run.device
    if run.over_budget("half-precision match rate", 3.0):
        return
    size = SIZES[args.gen_size]
    runs = []
    try:
        model = build_model(size, device, args.seed, gru_autocast=args.gru_autocast).eval()
        inputs = hand_batch(make_batches(size, 1, args.seed + 7, batch=args.gen_batch)[0], device)
        rates = half_precision_match_rate(model, inputs["input_ids"], inputs["attention_mask"], details=True)
        runs.append({"model": f"{size.name}, random init", "inputs": "benchmark batch", "rates": rates})
        run.log(f"match rate, random init: {rates}")
        del model
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        runs.append({"model": size.name, "inputs": "-", "rates": {}, "error": f"{type(error).__name__}: {error}"[:500]})
    run.report["match"] = {"batch": args.gen_batch, "runs": runs,
                           "note": "random weights give near-uniform logits whose argmax flips easily, so this "
                                   "says little about a trained model: call half_precision_match_rate() on one"}
    reset_memory(device)
    run.save()


def main(argv: list[str] | None = None) -> dict:
    args = resolve_args(build_parser().parse_args(argv))
    if args.cpu:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        raise SystemExit("no CUDA device: use --cpu for a quick CPU run")
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run(args, device)
    run.log(f"device {run.report['device']}; versions {run.report['versions']}; writing {run.json_path}")
    if device.type == "cpu":
        run.report["notes"].append("CPU run: for checking the script only; do not commit or quote these numbers.")
    run.save()
    try:
        prime(device)
    except Exception as error:  # noqa: BLE001 - only a warm-up
        run.report["notes"].append(f"priming failed: {error_text(error)}")
    # Order: the rows most ratios need first, so that a budget cut loses the least.
    sizes = list(args.sizes)
    first, later = sizes[:1], sizes[1:]
    if not args.skip_train and first:
        args.sizes = first
        run_training(run)
    if not args.skip_generate:
        run_generation(run)
    if not args.skip_match:
        run_match(run)
    if not args.skip_train and later:
        args.sizes = later
        run_training(run)
    args.sizes = sizes
    run.report["complete"] = not run.report["skipped"]
    run.save()
    table = markdown(run.report)
    print(table, flush=True)
    run.log(f"wrote {run.json_path} and {run.md_path}")
    return run.report


if __name__ == "__main__":
    main()
