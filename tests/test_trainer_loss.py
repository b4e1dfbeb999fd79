"""The loss the Trainer logs does not depend on how a step's batch is split for gradient accumulation."""

import pytest
import torch
from model_tester import EOS, GRUSeq2SeqModelTester
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments


class PadOnly:
    """DataCollatorForSeq2Seq needs only the tokenizer's padding."""

    pad_token_id, padding_side = 0, "right"

    def pad(self, features, **kwargs):
        width = max(len(f["input_ids"]) for f in features)
        ids = [f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in features]
        mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def examples(n=48, seed=0):
    """Sentences and targets of very different lengths, so micro-batches hold different token counts."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        src = int(torch.randint(1, 9, (1,), generator=g))
        tgt = int(torch.randint(1, 12, (1,), generator=g))
        out.append({"input_ids": torch.randint(3, 23, (src,), generator=g).tolist(),
                    "labels": torch.randint(3, 19, (tgt,), generator=g).tolist() + [EOS]})
    return out


def logged_losses(tmp_path, batch_size, accumulation):
    model = GRUSeq2SeqModelTester().model().train()
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / f"b{batch_size}x{accumulation}"), per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation, max_steps=4, logging_steps=1, learning_rate=1e-2,
        report_to=[], save_strategy="no", seed=7, data_seed=7, use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=examples(),
                             data_collator=DataCollatorForSeq2Seq(PadOnly(), model=model))
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_gradient_accumulation_logs_the_same_loss(tmp_path):
    whole = logged_losses(tmp_path, batch_size=8, accumulation=1)
    split = logged_losses(tmp_path, batch_size=2, accumulation=4)
    assert len(whole) == len(split) == 4
    assert split == pytest.approx(whole, rel=1e-4)
