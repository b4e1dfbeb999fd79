"""Random batches of token ids, built so that every implementation does the same work per step, and the form a
hand-written loop reads them in."""

from __future__ import annotations

import torch

from .config import BOS, FIRST_TOKEN, PAD, Size


def make_batches(size: Size, n_batches: int, seed: int = 0, batch: int | None = None) -> list[dict]:
    """
    Random right-padded batches on the host. Source and target lengths are uniform in `[min_length, length]` (see
    `Size`); every batch holds a permutation of the same lengths, so all batches have the same number of non-pad
    target tokens (`tokens_per_batch`) and the same packing work, whichever of them an implementation happens to read.
    """
    g = torch.Generator().manual_seed(seed)
    b, n = batch or size.batch, size.length
    low = size.min_length if size.min_length is not None else max(1, n // 2)
    src_lengths = torch.randint(low, n + 1, (b,), generator=g)  # (B,)
    tgt_lengths = torch.randint(low, n + 1, (b,), generator=g)  # (B,)
    pos = torch.arange(n)
    batches = []
    for _ in range(n_batches):
        src_mask = pos[None] < src_lengths[torch.randperm(b, generator=g)][:, None]  # (B, n)
        tgt_mask = pos[None] < tgt_lengths[torch.randperm(b, generator=g)][:, None]  # (B, n)
        input_ids = torch.randint(FIRST_TOKEN, size.vocab, (b, n), generator=g).masked_fill(~src_mask, PAD)
        labels = torch.randint(FIRST_TOKEN, size.vocab, (b, n), generator=g).masked_fill(~tgt_mask, -100)
        batches.append({"input_ids": input_ids, "attention_mask": src_mask.long(), "labels": labels})
    return batches


def tokens_per_batch(batch: dict) -> int:
    """Non-pad target tokens: what a training row's tokens per second count."""
    return int(batch["labels"].ne(-100).sum())


def hand_batch(batch: dict, device: torch.device) -> dict:
    """What a hand-written loop gets from its data pipeline: tensors on the device, source lengths on the host (None
    when nothing is padded), the decoder input (labels shifted right behind BOS)."""
    lengths = batch["attention_mask"].sum(1)  # (B,) on the host
    out = {k: v.to(device) for k, v in batch.items()}
    dec_in = torch.cat([torch.full_like(batch["labels"][:, :1], BOS), batch["labels"][:, :-1]], 1)  # (B, T)
    out["decoder_input_ids"] = dec_in.masked_fill(dec_in == -100, PAD).to(device)
    out["lengths"] = None if int(lengths.min()) == batch["input_ids"].shape[1] else lengths
    return out
