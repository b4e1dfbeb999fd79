"""Train a GRU translator end to end: data -> tokenizer -> model -> Seq2SeqTrainer -> metrics, plot and model card.

The flags follow transformers' examples/pytorch/translation/run_translation.py where they overlap (one
`HfArgumentParser` over `ModelArguments`, `DataTrainingArguments` and `Seq2SeqTrainingArguments`). With no flags at
all it trains on the built-in number-words data, offline, in a few minutes on a CPU.

Precision policy (`--precision`, default `auto`): on a GPU, bf16 where the device supports it, else fp16 (with the
Trainer's loss scaling); on a CPU, fp32. An explicit `--fp16` / `--bf16` wins. Under mixed precision the embeddings
and the output layer run in half precision through autocast, the loss is computed in float32, and the GRUs follow
`--gru_autocast` (see `GRUSeq2SeqConfig`): by default autocast's own dtype, so bf16 runs the GRU in bf16.
"""

import json
import logging
import os
import shlex
import sys
from pathlib import Path

import torch
import transformers
from torch.utils.data import SequentialSampler
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, Seq2SeqTrainer, TrainerCallback, set_seed
from transformers.trainer_pt_utils import nested_truncate
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, EvalPrediction, has_length

from . import card, data, metrics, tokenization
from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
from .training_args import BUILTIN_DATA_DEFAULTS, DEFAULT_OUTPUT_DIR, model_config_kwargs, parse_args
from .translate import check_model_reference, one_line

logger = logging.getLogger("hf_gru_seq2seq.train")

TATOEBA_LICENSE = "CC-BY 2.0 FR (Tatoeba, via manythings.org)"


class OrderedEvalSeq2SeqTrainer(Seq2SeqTrainer):
    """Evaluates and predicts in dataset order. The Trainer otherwise reuses `train_sampling_strategy`'s length
    grouping (a shuffle) for evaluation, so `scores` would pair each prediction with another pair's reference, and
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


def last_complete_checkpoint(folder) -> str | None:
    """The newest `checkpoint-N` in `folder` holding `trainer_state.json`, which the Trainer writes last: a run killed
    while saving leaves a checkpoint without it, which cannot be resumed (`get_last_checkpoint` would pick it)."""
    complete = {}
    for path in Path(folder).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = path.name.rsplit("-", 1)[-1]
        if step.isdigit() and (path / "trainer_state.json").is_file():
            complete[int(step)] = path
    return str(complete[max(complete)]) if complete else None


def check_output_dir(training_args, model_args, data_args) -> str | None:
    """
    Refuse to overwrite another model; return the checkpoint to resume from, if any.

    A command that names no `--output_dir` (the README's, run again) trains into the next folder beside the default
    one that holds no finished model (`outputs/number-words-2`, ...) and says so.
    """
    out = Path(training_args.output_dir)
    resume = training_args.resume_from_checkpoint
    if resume not in (None, "", "False", "false"):
        return resume
    if not out.is_dir() or data_args.overwrite_output_dir:
        return None
    if (out / "config.json").exists() and str(model_args.model_name_or_path or "") != str(out):
        if str(out) not in (DEFAULT_OUTPUT_DIR, BUILTIN_DATA_DEFAULTS["output_dir"]):
            raise FileExistsError(
                f"output_dir {out} already holds a trained model: choose another --output_dir, pass "
                "--overwrite_output_dir, or continue from it with --model_name_or_path"
            )
        taken = out
        out = next(path for n in range(2, 10_000) if not ((path := Path(f"{taken}-{n}")) / "config.json").exists())
        logger.warning("%s holds the model of an earlier run: this run trains into %s (choose with --output_dir, "
                       "or replace it with --overwrite_output_dir)", taken, out)
        training_args.output_dir = str(out)
        if not out.is_dir():
            return None
    last = last_complete_checkpoint(out)
    if last is not None:
        logger.info("Checkpoint found in %s: resuming from %s", out, last)
    return last


def load_splits(data_args, seed: int):
    """The raw DatasetDict to work on, and a short description of the data for the card."""
    if data_args.tatoeba_protocol_file:
        raw = data.tatoeba_protocol_splits(data_args.tatoeba_protocol_file, data_args.source_lang,
                                           data_args.target_lang)
        about = ("Tatoeba English-French (d2l's fra-eng.txt, fixed protocol split)", TATOEBA_LICENSE)
    else:
        raw = data.load_raw_datasets(
            data_args.source_lang, data_args.target_lang, dataset_name=data_args.dataset_name,
            dataset_config_name=data_args.dataset_config_name, train_file=data_args.train_file,
            validation_file=data_args.validation_file, test_file=data_args.test_file,
            file_format=data_args.file_format, validation_split_size=data_args.validation_split_size, seed=seed,
        )
        if data_args.dataset_name:
            about = (data_args.dataset_name, "see the dataset's card")
        elif data_args.train_file:
            about = (Path(data_args.train_file).name, "not given")
        else:
            about = ("number words (English -> French, generated with num2words)", "generated, no restriction")
    name = data_args.dataset_display_name or about[0]
    license = data_args.dataset_license or about[1]
    raw = data.apply_max_samples(raw, data_args.max_train_samples, data_args.max_eval_samples,
                                 data_args.max_predict_samples)
    return raw, name, license


def get_tokenizer(model_args, data_args, training_args, raw, resuming: bool):
    """A given tokenizer, the one saved in output_dir by the run being resumed, or a new one trained on train."""
    out = Path(training_args.output_dir)
    for flag, name in (("--tokenizer_name", model_args.tokenizer_name),
                       ("--model_name_or_path", model_args.model_name_or_path)):
        if name:
            check_model_reference(name, flag)
    source = model_args.tokenizer_name or model_args.model_name_or_path
    if source is None and resuming and (out / "tokenizer.json").exists():
        source = str(out)
    if source is not None:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=model_args.trust_remote_code)
    with training_args.main_process_first(desc="training the tokenizer"):
        if training_args.process_index > 0 and (out / "tokenizer.json").exists():
            return AutoTokenizer.from_pretrained(out)
        tokenizer = tokenization.train_tokenizer(
            raw["train"], data_args.source_lang, data_args.target_lang, model_type=model_args.tokenizer_type,
            vocab_size=model_args.tokenizer_vocab_size, min_frequency=model_args.tokenizer_min_frequency,
            lowercase=model_args.lowercase,
        )
        if training_args.should_save:
            tokenizer.save_pretrained(out)  # early, so a resumed run tokenizes exactly as this one
    return tokenizer


def get_model(model_args, data_args, tokenizer):
    if model_args.model_name_or_path:
        model = GRUSeq2SeqForConditionalGeneration.from_pretrained(model_args.model_name_or_path)
    else:
        config = GRUSeq2SeqConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, **model_config_kwargs(model_args),
        )
        model = GRUSeq2SeqForConditionalGeneration(config)
    model.add_translation_task(data_args.source_lang, data_args.target_lang)
    model.generation_config = translation_generation_config(model, data_args)
    return model


def translation_generation_config(model, data_args):
    """The generation defaults saved with the model: the final beam size, and at most twice the longest target
    seen in training (`max_length`, which callers' `max_length` and `max_new_tokens` override). Rebuilt after
    training: the Seq2SeqTrainer fills the model's generation config with library defaults while evaluating."""
    config = model.default_generation_config(model.config)
    config.max_length = 2 * data_args.max_target_length + 1  # the decoder start token counts
    config.num_beams = data_args.final_num_beams
    return config


def scores(trainer, dataset, raw_split, prefix: str, num_beams: int, data_args, metric):
    """
    Decode `dataset` with `num_beams` and score the output against the raw reference text (not the tokenized
    labels, which are truncated and, for a word-level vocabulary, lose unknown words). Returns (metrics, texts).
    """
    output = trainer.predict(dataset, metric_key_prefix=prefix, num_beams=num_beams)
    split_metrics = dict(output.metrics)
    generated = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    predictions = [one_line(text) for text in metrics.decode_for_metrics(generated, trainer.processing_class)]
    if len(raw_split) == len(dataset):
        references = [[pair[data_args.target_lang]] for pair in raw_split["translation"]]
        result = metric.compute(predictions=predictions, references=references, lowercase=data_args.bleu_lowercase)
        split_metrics.update({f"{prefix}_{m}": result[m] for m in ("bleu", "chrf", "exact_match")})
    else:
        logger.warning("%s: empty pairs were dropped, so scores use the tokenized references", prefix)
    return split_metrics, predictions


def run(argv: list[str] | None = None) -> dict:
    """The whole job; returns all results (also written to `all_results.json`)."""
    model_args, data_args, training_args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])
    transformers.utils.logging.set_verbosity_warning()
    logger.info("precision: fp16=%s bf16=%s; gru_autocast=%s", training_args.fp16, training_args.bf16,
                model_args.gru_autocast)
    resume = check_output_dir(training_args, model_args, data_args)
    set_seed(training_args.seed)

    raw, dataset_name, dataset_license = load_splits(data_args, training_args.seed)
    tokenizer = get_tokenizer(model_args, data_args, training_args, raw, resuming=resume is not None)
    model = get_model(model_args, data_args, tokenizer)
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = tokenization.tokenize_dataset(
            raw, tokenizer, data_args.source_lang, data_args.target_lang, data_args.max_source_length,
            data_args.max_target_length, num_proc=data_args.preprocessing_num_workers,
        )

    # The Trainer would push every checkpoint; this job pushes the finished folder once, in one commit, instead.
    push, training_args.push_to_hub = training_args.push_to_hub, False
    trainer = OrderedEvalSeq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized.get("train") if training_args.do_train else None,
        eval_dataset=tokenized.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100,
                                             pad_to_multiple_of=8 if training_args.fp16 or training_args.bf16 else None),
        compute_metrics=metrics.build_compute_metrics(tokenizer, lowercase=data_args.bleu_lowercase)
        if training_args.predict_with_generate else None,
        callbacks=[FiniteWeightsCallback()],
    )

    results = {}
    out = Path(training_args.output_dir)
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=resume)
        model.generation_config = translation_generation_config(model, data_args)
        trainer.save_model()  # model, config, generation config, code, tokenizer
        train_metrics = {**train_result.metrics, "train_samples": len(tokenized["train"])}
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()
        results.update(train_metrics)

    metric = metrics.load_translation_metric()
    decodings = {"greedy": 1}
    if data_args.final_num_beams > 1:
        decodings[f"beam={data_args.final_num_beams}"] = data_args.final_num_beams
    card_results, predictions = {}, None
    for split, prefix in [("validation", "eval"), ("test", "predict")]:
        wanted = training_args.do_eval if split == "validation" else training_args.do_predict
        if not wanted or split not in tokenized:
            continue
        for decoding, beams in decodings.items():
            key = prefix if beams == data_args.final_num_beams else f"{prefix}_greedy"
            split_metrics, preds = scores(trainer, tokenized[split], raw[split], key, beams, data_args, metric)
            split_metrics[f"{key}_samples"] = len(tokenized[split])
            trainer.save_metrics(key, split_metrics)
            results.update(split_metrics)
            if split == "test" and beams == data_args.final_num_beams:
                predictions = preds
            if split == "test" or "test" not in tokenized or not training_args.do_predict:
                card_results[decoding] = {m: round(split_metrics[f"{key}_{m}"], 2) for m in ("bleu", "chrf")
                                          if f"{key}_{m}" in split_metrics}
    eval_split = "test" if "test" in tokenized and training_args.do_predict else "validation"

    if trainer.is_world_process_zero():
        samples = write_predictions(out, raw, predictions, data_args)
        if training_args.do_train:
            card.plot_training_curves(trainer.state.log_history, out / "training_curves.png")
            card.render_model_card(
                out, source_lang=data_args.source_lang, target_lang=data_args.target_lang,
                dataset_name=dataset_name, dataset_license=dataset_license,
                dataset_sizes={split: len(ds) for split, ds in raw.items()},
                hyperparameters=hyperparameters(model, training_args, data_args, model_args),
                results=card_results, eval_split=eval_split,
                repo_id=training_args.hub_model_id, tokenizer_summary=tokenizer_summary(model_args, tokenizer),
                example_input=samples[0][0] if samples else "",
            )
        report(results, samples)
    if push and training_args.do_train and trainer.is_world_process_zero():
        from .hub import push_to_hub

        push_to_hub(out, training_args.hub_model_id or out.name, token=training_args.hub_token,
                    private=training_args.hub_private_repo)
    if training_args.do_train and trainer.is_world_process_zero():
        example = samples[0][0] if samples else card.EXAMPLE_INPUTS.get(data_args.source_lang, "...")
        print(f"Model saved in {out}; translate with: echo {shlex.quote(example)} | hf-gru-seq2seq-translate "
              f"--model {shlex.quote(str(out))}", flush=True)
    return results


def write_predictions(out, raw, texts, data_args) -> list[tuple[str, str, str]]:
    """Write `generated_predictions.txt` (one line per test pair) and return a few (source, output, reference)."""
    if texts is None:
        return []
    (out / "generated_predictions.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    pairs = raw["test"]["translation"][: len(texts)]
    return [(p[data_args.source_lang], t, p[data_args.target_lang])
            for p, t in zip(pairs[: data_args.num_sample_translations], texts)]


def hyperparameters(model, training_args, data_args, model_args) -> dict:
    c = model.config
    return {
        "embedding / hidden size": f"{c.embedding_size} / {c.hidden_size}",
        "layers": c.num_hidden_layers,
        "dropout": c.dropout,
        "bidirectional encoder": c.bidirectional_encoder,
        "reversed source": c.reverse_source,
        "tied output embeddings": c.tie_word_embeddings,
        "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
        "optimizer": f"{_name(training_args.optim)}, lr {training_args.learning_rate}, "
                     f"{_name(training_args.lr_scheduler_type)}",
        "batch size": training_args.per_device_train_batch_size * max(1, training_args.world_size)
        * training_args.gradient_accumulation_steps,
        "epochs": training_args.num_train_epochs,
        "label smoothing": training_args.label_smoothing_factor,
        "gradient clipping": training_args.max_grad_norm,
        "max source / target tokens": f"{data_args.max_source_length} / {data_args.max_target_length}",
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
    }


def _name(option) -> str:
    """An option's value as the user would type it: `adamw_torch_fused`, not `OptimizerNames.ADAMW_TORCH_FUSED`."""
    return str(getattr(option, "value", option))


def tokenizer_summary(model_args, tokenizer) -> str:
    """The card's tokenizer line, read from the tokenizer itself (a resumed run reuses the first run's tokenizer,
    whatever the flags now say)."""
    if model_args.tokenizer_name or model_args.model_name_or_path:
        return f"the given tokenizer ({len(tokenizer):,} tokens)"
    model_type = type(tokenizer.backend_tokenizer.model).__name__  # "BPE", "WordLevel"
    kind = {"BPE": "byte-level BPE", "WordLevel": "word-level"}.get(model_type, model_type)
    return f"{kind}, {len(tokenizer):,} tokens shared by source and target"


def report(results: dict, samples) -> None:
    """Print the scores and a few translations."""
    lines = ["", "Results:"]
    for key in sorted(results):
        if key.endswith(("_bleu", "_chrf", "_exact_match", "_loss")) or key in ("train_runtime",):
            lines.append(f"  {key:24s} {results[key]:.2f}")
    if samples:
        lines.append("Sample translations (test):")
        for source, output, reference in samples:
            lines += [f"  source:    {source}", f"  output:    {output}", f"  reference: {reference}"]
    print("\n".join(lines), flush=True)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    results = run(argv)
    if os.environ.get("HF_GRU_SEQ2SEQ_PRINT_JSON"):
        print(json.dumps(results))
