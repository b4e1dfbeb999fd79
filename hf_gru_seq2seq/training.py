"""Train a GRU translator end to end, in named steps: flags -> output folder -> data -> tokenizer -> model -> trainer
-> train -> final scores -> card -> push.

The flags follow transformers' examples/pytorch/translation/run_translation.py where they overlap (see
`training_args.py`). With no flags at all it trains on the built-in number-words data, offline, in about a minute on a
CPU.

Precision policy (`--precision`, default `auto`): on a GPU, bf16 where the device supports it, else fp16 (with the
Trainer's loss scaling); on a CPU, fp32. An explicit `--fp16` / `--bf16` wins. Under mixed precision the embeddings
and the output layer run in half precision through autocast, the loss is computed in float32, and the GRUs follow
`--gru_autocast` (see `GRUSeq2SeqConfig`): by default autocast's own dtype, so bf16 runs the GRU in bf16.
"""

import hashlib
import json
import logging
import os
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import transformers
from datasets import Dataset
from transformers import AutoTokenizer, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import card, data, evaluation, streaming, vocabulary
from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
from .seq2seq_trainer import build_trainer
from .training_args import (BUILTIN_DATA_DEFAULTS, DEFAULT_OUTPUT_DIR, MIN_PAIRS_PER_WORKERS, model_config_kwargs,
                            parse_args)
from .translate import check_model_reference

logger = logging.getLogger("hf_gru_seq2seq.train")

TATOEBA_LICENSE = "CC-BY 2.0 FR (Tatoeba, via manythings.org)"


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
    if data_args.streaming:
        raw = streaming.load_streaming_splits(data_args)
        about = (data_args.dataset_name or Path(data_args.train_file).name,
                 "see the dataset's card" if data_args.dataset_name else "not given")
    elif data_args.tatoeba_protocol_file:
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
    raw = data.apply_max_samples(raw, None if data_args.streaming else data_args.max_train_samples,
                                 data_args.max_eval_samples, data_args.max_predict_samples)
    logger.info("splits: %s", ", ".join(f"{split} {sizes(raw)[split]} pairs" for split in raw))
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
        tokenizer = cached_tokenizer(model_args, data_args, raw["train"], training_args.seed)
        if training_args.should_save:
            tokenizer.save_pretrained(out)  # early, so a resumed run tokenizes exactly as this one
    return tokenizer


def cached_tokenizer(model_args, data_args, train, seed: int):
    """A tokenizer trained on (a seeded sample of) `train`. When `train` was read into the Arrow cache, the tokenizer
    is kept beside it, keyed on the data and the options, and a second run loads it instead of training again."""
    options = dict(model_type=model_args.tokenizer_type, vocab_size=model_args.tokenizer_vocab_size,
                   min_frequency=model_args.tokenizer_min_frequency, lowercase=model_args.lowercase,
                   max_pairs=model_args.tokenizer_max_sentences, seed=seed)
    langs = (data_args.source_lang, data_args.target_lang)
    if not getattr(train, "cache_files", None):  # in memory (the built-in data) or streamed: trained each run
        return vocabulary.train_tokenizer(train, *langs, **options)
    key = hashlib.sha256(json.dumps([train._fingerprint, langs, options], sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(train.cache_files[0]["filename"]).parent / "hf_gru_seq2seq_tokenizers" / key
    if (folder / "tokenizer.json").is_file():
        logger.info("reusing the tokenizer an earlier run trained on the same data: %s", folder)
    else:
        vocabulary.train_tokenizer(train, *langs, **options).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)  # loaded back in both cases, so both runs tokenize alike


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


def tokenize(raw, tokenizer, data_args, training_args):
    """`input_ids`, `attention_mask` and `labels` of every split (the main process first, others reuse its cache)."""
    workers = data_args.preprocessing_num_workers
    largest = max((n for n in sizes(raw).values() if n != "streamed"), default=0)
    if workers is None and largest >= MIN_PAIRS_PER_WORKERS:
        workers = os.cpu_count()
    with training_args.main_process_first(desc="tokenizing"):
        return vocabulary.tokenize_dataset(
            raw, tokenizer, data_args.source_lang, data_args.target_lang, data_args.max_source_length,
            data_args.max_target_length, num_proc=workers if workers and workers > 1 else None,
        )


@contextmanager
def stage(name: str):
    """Log how long one step of the job took (`python -m benchmarks data` reads these lines)."""
    start = time.perf_counter()
    yield
    logger.info("stage %s: %.1f s", name, time.perf_counter() - start)


def train(trainer, model, tokenized, data_args, resume) -> dict:
    """Train, then save the model (with its translation generation config), its metrics and the trainer state."""
    train_result = trainer.train(resume_from_checkpoint=resume)
    model.generation_config = translation_generation_config(model, data_args)
    trainer.save_model()  # model, config, generation config, code, tokenizer
    train_metrics = {**train_result.metrics, "train_samples": sizes(tokenized)["train"]}
    trainer.save_metrics("train", train_metrics)
    trainer.save_state()
    return train_metrics


def write_card(out: Path, trainer, final, about, raw, samples, model_args, data_args, training_args) -> None:
    """The training curves and the model card (README.md) of the output folder."""
    card.plot_training_curves(trainer.state.log_history, out / "training_curves.png")
    card.render_model_card(
        out, source_lang=data_args.source_lang, target_lang=data_args.target_lang,
        dataset_name=about[0], dataset_license=about[1], dataset_sizes=sizes(raw),
        hyperparameters=hyperparameters(trainer.model, training_args, data_args, model_args),
        results=final.card_results, eval_split=final.card_split, repo_id=training_args.hub_model_id,
        tokenizer_summary=tokenizer_summary(model_args, trainer.processing_class),
        example_input=samples[0][0] if samples else "",
    )


def push(out: Path, training_args) -> None:
    """The finished folder to the Hub, in one commit (the Trainer would push every checkpoint)."""
    from .hub import push_to_hub

    push_to_hub(out, training_args.hub_model_id or out.name, token=training_args.hub_token,
                private=training_args.hub_private_repo)


def run(argv: list[str] | None = None) -> dict:
    """The whole job; returns all results (also written to `all_results.json`)."""
    model_args, data_args, training_args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(model_args, training_args)
    resume = check_output_dir(training_args, model_args, data_args)
    set_seed(training_args.seed)
    with stage("read"), training_args.main_process_first(desc="reading the data"):
        raw, *about = load_splits(data_args, training_args.seed)
    with stage("tokenizer"):
        tokenizer = get_tokenizer(model_args, data_args, training_args, raw, resuming=resume is not None)
    model = get_model(model_args, data_args, tokenizer)
    with stage("tokenize"):
        tokenized = tokenize(raw, tokenizer, data_args, training_args)
    wants_push, training_args.push_to_hub = training_args.push_to_hub, False  # pushed once, at the end
    trainer = build_trainer(model, tokenizer, tokenized, training_args, data_args)
    results = train(trainer, model, tokenized, data_args, resume) if training_args.do_train else {}
    final = evaluation.final_scores(trainer, tokenized, raw, data_args, training_args)
    results.update(final.metrics)
    if not trainer.is_world_process_zero():
        return results
    out = Path(training_args.output_dir)
    samples = evaluation.write_predictions(out, raw, final.test_predictions, data_args)
    if training_args.do_train:
        write_card(out, trainer, final, about, raw, samples, model_args, data_args, training_args)
    evaluation.report(results, samples)
    if training_args.do_train:
        if wants_push:
            push(out, training_args)
        example = samples[0][0] if samples else card.EXAMPLE_INPUTS.get(data_args.source_lang, "...")
        print(f"Model saved in {out}; translate with: echo {shlex.quote(example)} | hf-gru-seq2seq-translate "
              f"--model {shlex.quote(str(out))}", flush=True)
    return results


def sizes(splits) -> dict:
    """Pairs per split; "streamed" for a stream, whose size is not known before it is read."""
    return {split: len(ds) if isinstance(ds, Dataset) else "streamed" for split, ds in splits.items()}


def setup_logging(model_args, training_args) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])
    transformers.utils.logging.set_verbosity_warning()
    logger.info("precision: fp16=%s bf16=%s; gru_autocast=%s", training_args.fp16, training_args.bf16,
                model_args.gru_autocast)


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
        "batch size": f"{data_args.max_tokens_per_batch:,} tokens a device" if data_args.max_tokens_per_batch
        else training_args.per_device_train_batch_size * max(1, training_args.world_size)
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


def main(argv: list[str] | None = None) -> None:
    results = run(argv)
    if os.environ.get("HF_GRU_SEQ2SEQ_PRINT_JSON"):
        print(json.dumps(results))
