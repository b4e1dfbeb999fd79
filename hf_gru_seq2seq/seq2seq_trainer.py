"""The `Seq2SeqTrainer` of the training script: evaluation in dataset order (also under DDP), a check that the weights
stay finite, and its wiring to the tokenized data, the collator and the BLEU/chrF metric."""

import torch
from torch.utils.data import SequentialSampler
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, TrainerCallback
from transformers.trainer_pt_utils import nested_truncate
from transformers.trainer_utils import EvalPrediction, has_length

from . import metrics


class OrderedEvalSeq2SeqTrainer(Seq2SeqTrainer):
    """Evaluates and predicts in dataset order. The Trainer otherwise reuses `train_sampling_strategy`'s length
    grouping (a shuffle) for evaluation, so the scores would pair each prediction with another pair's reference, and
    `generated_predictions.txt` would be out of order. Under DDP, `None` lets Accelerate shard in order."""

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


def build_trainer(model, tokenizer, tokenized, training_args, data_args) -> OrderedEvalSeq2SeqTrainer:
    """The trainer over the tokenized splits `training_args.do_*` asks for; batches padded by
    `DataCollatorForSeq2Seq` (to a multiple of 8 under mixed precision), scored with BLEU/chrF when it generates."""
    half = training_args.fp16 or training_args.bf16
    return OrderedEvalSeq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized.get("train") if training_args.do_train else None,
        eval_dataset=tokenized.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100,
                                             pad_to_multiple_of=8 if half else None),
        compute_metrics=metrics.build_compute_metrics(tokenizer, lowercase=data_args.bleu_lowercase)
        if training_args.predict_with_generate else None,
        callbacks=[FiniteWeightsCallback()],
    )
