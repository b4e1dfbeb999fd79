"""The `trainer` training rows: the package model trained through `transformers.Seq2SeqTrainer` on the same
pre-made batches as the hand loop, timed from inside the Trainer by a callback that also runs the other
implementations' segments between its own (off the Trainer's clock), so that all are timed interleaved."""

from __future__ import annotations

import shutil
import tempfile

import torch
import transformers
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

from .config import LEARNING_RATE
from .timing import MemoryMeter, SegmentClock, Timing


def trainer_optim_name(device: torch.device) -> str:
    """The Trainer's optimizer: fused AdamW on CUDA (with weight decay 0, the hand loop's fused Adam)."""
    return "adamw_torch_fused" if device.type == "cuda" else "adamw_torch"


class FixedBatches(torch.utils.data.Dataset):
    """Each item is a whole pre-made batch (read with batch size 1 and `first_item` as collator)."""

    def __init__(self, batches: list[dict]):
        self.batches = batches

    def __len__(self):
        return 1_000_000  # more items than the Trainer's max_steps reads

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


def training_arguments(out_dir: str, device: torch.device, precision: str, timing: Timing, seed: int):
    """The Trainer's settings: the hand loop's optimizer, clipping and precision; no logging, saving or evaluation."""
    return Seq2SeqTrainingArguments(
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


def trainer_run(model, batches_cpu: list[dict], device, precision: str, timing: Timing, seed: int,
                meter: MemoryMeter, between=None) -> dict:
    """Train through `Seq2SeqTrainer` until `timing` is met; return the timing summary (as `Interleaved`).
    `between` runs between the timed segments (see `StepTimer`)."""
    out_dir = tempfile.mkdtemp(prefix="gru-bench-trainer-")
    try:
        timer = StepTimer(timing, device, meter, between)
        trainer = Seq2SeqTrainer(
            model=model, args=training_arguments(out_dir, device, precision, timing, seed),
            train_dataset=FixedBatches(batches_cpu), data_collator=first_item, callbacks=[timer],
        )
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # no end-of-training print
        trainer.train()
        if timer.result is None:
            raise RuntimeError(f"the Trainer stopped after {trainer.state.global_step} steps, before timing ended")
        return timer.result
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
