"""The `Seq2SeqTrainer` of the training script: evaluation in dataset order (also under DDP), batches by tokens when
asked, length grouping read from the stored length column, a check that the weights stay finite, and its wiring to
the tokenized data, the collator and the BLEU/chrF metric."""

import logging

import datasets
import torch
from torch.utils.data import DataLoader, SequentialSampler
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, TrainerCallback
from transformers.trainer_pt_utils import nested_truncate
from transformers.trainer_utils import EvalPrediction, has_length

from . import metrics
from .length_index import LengthIndex
from .sentence_samplers import LengthGroupedOrder, ShuffledOrder
from .token_batches import TokenBatchSampler

logger = logging.getLogger("hf_gru_seq2seq.train")


class OrderedEvalSeq2SeqTrainer(Seq2SeqTrainer):
    """Evaluates and predicts in dataset order. The Trainer otherwise reuses `train_sampling_strategy`'s length
    grouping (a shuffle) for evaluation, so the scores would pair each prediction with another pair's reference, and
    `generated_predictions.txt` would be out of order. Under DDP, `None` lets Accelerate shard in order."""

    max_tokens_per_batch: int | None = None

    def _length_index(self) -> LengthIndex:
        """The memory-mapped lengths of the training set (`LengthIndex`), built once."""
        if getattr(self, "_index_of", (None,))[0] is not self.train_dataset:
            self._index_of = (self.train_dataset, LengthIndex.of_dataset(self.train_dataset))
        return self._index_of[1]

    def _data_seed(self) -> int:
        """The seed of the training order: `--data_seed`, else `--seed` (as the Trainer's own samplers)."""
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def _get_train_sampler(self, train_dataset=None):
        """Orders whose memory does not grow with the corpus (`sentence_samplers`): `group_by_length` reads the
        `length` column `tokenize_dataset` stored (the Trainer would look for it in the dataset it has already
        stripped to the model's inputs, measure every row again, and hold Python lists of every index), and `random`
        shuffles without a list of every index. Other datasets and strategies: the Trainer's own."""
        train = self.train_dataset  # the Trainer passes it stripped to the model's inputs: the same rows
        given = train_dataset if train_dataset is not None else train
        if not isinstance(train, datasets.Dataset) or not has_length(given) or len(given) != len(train):
            return super()._get_train_sampler(train_dataset)
        seed = self._data_seed()
        strategy = self.args.train_sampling_strategy
        if strategy == "group_by_length" and "length" in train.column_names:
            size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedOrder(self._length_index(), size, seed=seed)
        if strategy == "random":
            return ShuffledOrder(len(train), seed=seed)
        return super()._get_train_sampler(train_dataset)

    def get_train_dataloader(self):
        """With `max_tokens_per_batch`, batches by tokens (`TokenBatchSampler`), dealt to the ranks by Accelerate."""
        if not self.max_tokens_per_batch:
            return super().get_train_dataloader()
        if not isinstance(self.train_dataset, datasets.Dataset):
            raise ValueError("max_tokens_per_batch needs the length columns that tokenize_dataset stores")
        seed = self._data_seed()
        sampler = TokenBatchSampler(self._length_index(), self.max_tokens_per_batch, seed=seed,
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
