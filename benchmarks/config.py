"""What the benchmarks measure with: model and batch sizes, the special token ids of their random data, the
precisions, and the optimizer setting every training impl shares. One place, so that every row and every report reads
the same definitions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hf_gru_seq2seq import GRUSeq2SeqConfig

PAD, BOS, EOS, FIRST_TOKEN = 0, 1, 2, 3  # random tokens are drawn from [FIRST_TOKEN, vocab)
LEARNING_RATE = 1e-3
DEFAULT_GRU_AUTOCAST = GRUSeq2SeqConfig().gru_autocast  # the package's GRU precision policy under autocast

AMP_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}  # training: autocast dtype
WEIGHT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # generation: weight dtype


@dataclass(frozen=True)
class Size:
    """A model size and the training batch it is measured with. Source and target lengths are drawn uniformly in
    `[min_length, length]` (`min_length` None: `length // 2`), then right-padded to `length`."""

    name: str
    vocab: int
    emb: int
    hid: int
    layers: int
    batch: int
    length: int
    dropout: float = 0.2
    min_length: int | None = None


SIZES = {
    "d2l": Size("d2l", vocab=200, emb=32, hid=32, layers=2, batch=64, length=10),
    "small": Size("small", vocab=1000, emb=64, hid=128, layers=2, batch=32, length=16),  # the --cpu stand-in
    "base": Size("base", vocab=8000, emb=256, hid=512, layers=2, batch=128, length=32),
    "large": Size("large", vocab=32000, emb=512, hid=1024, layers=4, batch=256, length=64),
    # The CPU command's models: the training script's number-words recipe (its batch 64, lengths within a few tokens,
    # as the Trainer's group_by_length gives) and d2l's Tatoeba model.
    "number-words": Size("number-words", vocab=600, emb=64, hid=128, layers=2, batch=64, length=14, min_length=11),
    "tatoeba-d2l": Size("tatoeba-d2l", vocab=8000, emb=256, hid=256, layers=2, batch=128, length=16, min_length=12),
}
