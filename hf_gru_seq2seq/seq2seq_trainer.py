"""The `Seq2SeqTrainer` of the training script: evaluation in dataset order (also under DDP), batches by tokens when
asked, length grouping read from the stored length column, a check that the weights stay finite, and its wiring to
the tokenized data, the collator and the BLEU/chrF metric."""

import logging

import datasets
import torch
from torch.utils.data import DataLoader, SequentialSampler
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, nested_truncate
from transformers.trainer_utils import EvalPrediction, has_length

from . import metrics
from .token_batches import TokenBatchSampler

logger = logging.getLogger("hf_gru_seq2seq.train")


class OrderedEvalSeq2SeqTrainer(Seq2SeqTrainer):
    """Evaluates and predicts in dataset order. The Trainer otherwise reuses `train_sampling_strategy`'s length
    grouping (a shuffle) for evaluation, so the scores would pair each prediction with another pair's reference, and
    `generated_predictions.txt` would be out of order. Under DDP, `None` lets Accelerate shard in order."""

    max_tokens_per_batch: int | None = None

    def _lengths(self, column: str):
        """A stored length column of the training set (numpy, a few bytes a pair), or None. Read as Arrow: the numpy
        formatter takes seconds a million rows, this milliseconds."""
        train = self.train_dataset
        if isinstance(train, datasets.Dataset) and column in train.column_names:
            return train.select_columns([column]).with_format("arrow")[:].column(0).to_numpy()
        return None

    def _get_train_sampler(self, train_dataset=None):
        """`group_by_length` reads the `length` column `tokenize_dataset` stored (the Trainer would look for it in the
        dataset it has already stripped to the model's inputs, and measure every row again)."""
        lengths = self._lengths("length")
        if self.args.train_sampling_strategy == "group_by_length" and lengths is not None:
            size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(size, lengths=lengths.tolist())
        return super()._get_train_sampler(train_dataset)

    def get_train_dataloader(self):
        """With `max_tokens_per_batch`, batches by tokens (`TokenBatchSampler`), dealt to the ranks by Accelerate."""
        if not self.max_tokens_per_batch:
            return super().get_train_dataloader()
        source, target = self._lengths("length"), self._lengths("target_length")
        if source is None or target is None:
            raise ValueError("max_tokens_per_batch needs the length columns that tokenize_dataset stores")
        sampler = TokenBatchSampler(source, target, self.max_tokens_per_batch, seed=self.args.seed,
                                    num_replicas=self.args.world_size)
        dataset = self._remove_unused_columns(self.train_dataset, description="Training")
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory)
        return self.accelerator.prepare(loader)

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not hasattr(eval_dataset, "__len__"):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def evaluation_loop(self, dataloader, *args, **kwargs):
        """Under DDP the Seq2SeqTrainer gathers generated ids with `gather`, which keeps the samples that padded the
        processes' last batches. Score, and return, exactly one prediction per sample, in order."""
        n = len(dataloader.dataset) if self.args.world_size > 1 and has_length(dataloader.dataset) else None
        compute = self.compute_metrics
        if n is not None and compute is not None:
            self.compute_metrics = lambda p: compute(EvalPrediction(predictions=_first(p.predictions, n),
                                                                    label_ids=_first(p.label_ids, n)))
        try:
            output = super().evaluation_loop(dataloader, *args, **kwargs)
        finally:
            self.compute_metrics = compute
        if n is None:
            return output
        return output._replace(predictions=_first(output.predictions, n), label_ids=_first(output.label_ids, n),
                               num_samples=n)


def _first(arrays, n: int):
    """The first `n` samples of gathered predictions or labels (None stays None)."""
    return None if arrays is None else nested_truncate(arrays, n)


class FiniteWeightsCallback(TrainerCallback):
    """Checks at each log that no weight is NaN or infinite (fp16 loss scaling skips such steps; this proves it)."""

    def on_log(self, args, state, control, model=None, **kwargs):
        for name, param in model.named_parameters():
            if not torch.isfinite(param).all():
                raise RuntimeError(f"non-finite weights in {name} at step {state.global_step}")


class FirstStepCallback(TrainerCallback):
    """Logs when the first training step begins (`python -m benchmarks data` times the job up to this line)."""

    def on_step_begin(self, args, state, control, **kwargs):
        if not getattr(self, "done", False):
            self.done = True
            logger.info("training: the first step begins")


def build_trainer(model, tokenizer, tokenized, training_args, data_args) -> OrderedEvalSeq2SeqTrainer:
    """The trainer over the tokenized splits `training_args.do_*` asks for; batches (by sentences, or by tokens with
    `data_args.max_tokens_per_batch`) padded by `DataCollatorForSeq2Seq` (to a multiple of 8 under mixed
    precision), scored with BLEU/chrF when it generates."""
    half = training_args.fp16 or training_args.bf16
    trainer = OrderedEvalSeq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized.get("train") if training_args.do_train else None,
        eval_dataset=tokenized.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100,
                                             pad_to_multiple_of=8 if half else None),
        compute_metrics=metrics.build_compute_metrics(tokenizer, lowercase=data_args.bleu_lowercase)
        if training_args.predict_with_generate else None,
        callbacks=[FiniteWeightsCallback(), FirstStepCallback()],
    )
    trainer.max_tokens_per_batch = data_args.max_tokens_per_batch
    return trainer
