"""The training script's flags: `ModelArguments`, `DataTrainingArguments` and `Seq2SeqTrainingArguments`, read by one
`HfArgumentParser` as in transformers' examples/pytorch/translation/run_translation.py.

Model defaults come from `GRUSeq2SeqConfig` (one source of truth); where this recipe differs, the help says why.
Some defaults depend on what is trained: the built-in number-words data gets a smaller, quicker recipe
(`BUILTIN_DATA_DEFAULTS`), and a CPU-only machine gets no pinned memory and fp32. Every default yields to its flag.
"""

import os
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import HfArgumentParser, Seq2SeqTrainingArguments

from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import GRUSeq2SeqGenerationMixin

CONFIG = GRUSeq2SeqConfig()
# The beam size of the final scores and of the saved generation config: the model's translation default.
FINAL_NUM_BEAMS = GRUSeq2SeqGenerationMixin.default_generation_config(CONFIG).num_beams
# The config fields a trained model takes from the flags of the same names.
MODEL_FIELDS = ("embedding_size", "hidden_size", "num_hidden_layers", "dropout", "bidirectional_encoder",
                "reverse_source", "tie_word_embeddings", "init_std", "gru_autocast")
DEFAULT_OUTPUT_DIR = "outputs/gru-seq2seq"
MAX_DECODED = 5000  # default cap of the validation and test pairs decoded, whatever the corpus size
MIN_PAIRS_PER_WORKERS = 50_000  # below this, one process tokenizes faster than starting workers

# The built-in number-words task is small and regular: a smaller model learns it in about a minute on a CPU.
BUILTIN_DATA_DEFAULTS = dict(embedding_size=64, hidden_size=128, num_train_epochs=3, per_device_train_batch_size=64,
                             output_dir="outputs/number-words", lowercase=True, tokenizer_type="word")


def _on_builtin(name: str) -> str:
    return f"; {BUILTIN_DATA_DEFAULTS[name]} on the built-in data"


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from a saved model (a folder or a Hub id) instead of a new one."})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "A saved tokenizer (folder or Hub id); by default one is trained on the data."})
    tokenizer_type: Literal["bpe", "word"] = field(
        default="bpe", metadata={"help": "Kind of trained tokenizer: byte-level BPE, or d2l-style words (a closed "
                                         "vocabulary: other words become <unk>, and translation warns of them)"
                                         + _on_builtin("tokenizer_type")})
    tokenizer_vocab_size: int = field(default=8000, metadata={"help": "Vocabulary size of a trained tokenizer."})
    tokenizer_min_frequency: int = field(default=2, metadata={"help": "Minimum count of a trained token."})
    tokenizer_max_sentences: int = field(
        default=1_000_000,
        metadata={"help": "A trained tokenizer learns from at most this many training pairs (a seeded sample: the same "
                          "--seed gives the same tokenizer), both sides of each."})
    lowercase: bool = field(
        default=False, metadata={"help": "Lowercase all text in a trained tokenizer (d2l does), so that input case "
                                         "does not matter" + _on_builtin("lowercase")})
    embedding_size: int = field(
        default=CONFIG.embedding_size,
        metadata={"help": "Size of the source and target token embeddings" + _on_builtin("embedding_size")})
    hidden_size: int = field(
        default=CONFIG.hidden_size,
        metadata={"help": "GRU state size, encoder and decoder" + _on_builtin("hidden_size")})
    num_hidden_layers: int = field(default=CONFIG.num_hidden_layers,
                                   metadata={"help": "Stacked GRU layers, in the encoder and in the decoder."})
    dropout: float = field(default=CONFIG.dropout, metadata={"help": "Dropout between stacked GRU layers, in [0, 1)."})
    bidirectional_encoder: bool = field(
        default=CONFIG.bidirectional_encoder,
        metadata={"help": "Read sources both ways; each layer's two final states are joined by a learned bridge."})
    reverse_source: bool = field(
        default=True,
        metadata={"help": "Read each source from its last token to its first (Sutskever et al., 2014), so the "
                          "decoder starts next to the words it translates first. On in this recipe, where it "
                          "helps; off in GRUSeq2SeqConfig, which keeps d2l's reading order."})
    tie_word_embeddings: bool = field(
        default=CONFIG.tie_word_embeddings,
        metadata={"help": "Share the target embedding with the output layer (needs embedding_size == hidden_size)."})
    init_std: float = field(
        default=CONFIG.init_std, metadata={"help": "Standard deviation of the embeddings' normal initialisation."})
    gru_autocast: Literal["match", "float32", "torch"] = field(
        default=CONFIG.gru_autocast,
        metadata={"help": "What the GRUs run in under mixed precision: autocast's dtype, float32, or autocast's own "
                          "choice (float16 on cuDNN)."})
    precision: Literal["auto", "fp32", "fp16", "bf16"] = field(
        default="auto",
        metadata={"help": "auto: bf16 on GPUs that have it, else fp16 with loss scaling; fp32 on a CPU. An explicit "
                          "--fp16 or --bf16 wins."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code saved with a given tokenizer."})


@dataclass
class DataTrainingArguments:
    source_lang: str = field(default="en", metadata={"help": "Source language code."})
    target_lang: str = field(default="fr", metadata={"help": "Target language code."})
    dataset_name: str | None = field(
        default=None, metadata={"help": "A datasets Hub dataset with a translation column."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Its configuration name."})
    train_file: str | None = field(default=None, metadata={"help": "JSON lines, CSV/TSV or Tatoeba text."})
    validation_file: str | None = field(default=None, metadata={"help": "As train_file; else carved from train."})
    test_file: str | None = field(default=None, metadata={"help": "As train_file; scored at the end."})
    file_format: Literal["json", "csv", "tsv", "tatoeba"] | None = field(
        default=None, metadata={"help": "Format of the files; by default told by their extension."})
    streaming: bool = field(
        default=False, metadata={"help": "Read the training data as it is consumed (--dataset_name or --train_file), "
                                         "never into a cache; needs --max_steps. Validation: --validation_file, else "
                                         "the first --validation_split_size pairs of the stream (3,000 by default)."})
    tatoeba_protocol_file: str | None = field(
        default=None, metadata={"help": "d2l's fra-eng.txt, split by the fixed protocol (test 2000, validation 1000)."})
    validation_split_size: float | None = field(
        default=None, metadata={"help": "Validation carved off train when none is given: a fraction below 1, else a "
                                        "count of pairs; by default 5%% of train, at most 3,000 pairs."})
    max_source_length: int = field(default=64, metadata={"help": "Sources are cut to this many tokens (</s> kept)."})
    max_target_length: int = field(
        default=64, metadata={"help": "Targets are cut to this many tokens (</s> kept); the saved generation "
                                      "config stops at twice this."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training pairs."})
    max_eval_samples: int | None = field(
        default=MAX_DECODED, metadata={"help": "Use only the first N validation pairs: every decoding pass stays "
                                               "bounded however big a given validation file is."})
    max_predict_samples: int | None = field(
        default=MAX_DECODED, metadata={"help": "Use only the first N test pairs (the final decoding passes)."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenizing; by default the CPU count for splits of "
                                        f"{MIN_PAIRS_PER_WORKERS:,} pairs or more, one process below."})
    max_tokens_per_batch: int | None = field(
        default=None, metadata={"help": "Batches by tokens instead of sentences (fairseq's --max-tokens): pairs "
                                        "bucketed by length, each batch at most N tokens (pairs x longest side, "
                                        "padding included) per device. Replaces --per_device_train_batch_size."})
    final_num_beams: int = field(
        default=FINAL_NUM_BEAMS,
        metadata={"help": "Beam size of the final evaluation and of the saved generation config; greedy decoding is "
                          "scored too."})
    bleu_lowercase: bool = field(default=False, metadata={"help": "Case-insensitive BLEU and chrF."})
    dataset_display_name: str | None = field(default=None, metadata={"help": "The data's name on the model card."})
    dataset_license: str | None = field(default=None, metadata={"help": "The data's license on the model card."})
    num_sample_translations: int = field(default=5, metadata={"help": "Test translations printed at the end."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a model already in output_dir (else a new run never does)."})


# Training defaults of this recipe (the library's are for Transformers): every one can be overridden by its flag.
TRAINING_DEFAULTS = dict(
    output_dir=DEFAULT_OUTPUT_DIR,
    per_device_train_batch_size=128,
    per_device_eval_batch_size=256,
    learning_rate=5e-3,
    num_train_epochs=10,
    lr_scheduler_type="linear",
    warmup_steps=0.02,
    weight_decay=0.0,
    max_grad_norm=1.0,
    label_smoothing_factor=0.1,
    eval_strategy="epoch",
    save_strategy="epoch",
    save_total_limit=2,
    logging_steps=25,
    predict_with_generate=True,
    generation_num_beams=1,  # evaluation during training decodes greedily, for speed; the final one both ways
    report_to="none",
    train_sampling_strategy="group_by_length",
    dataloader_num_workers=0,
    use_cache=True,  # the Trainer copies this into the saved config.json; False would mislead its readers
)


def _has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


DESCRIPTION = """Train a GRU translator: data -> tokenizer -> model -> Seq2SeqTrainer -> BLEU/chrF, plot and model
card. With no flag at all it trains on the built-in number-words data (English -> French), offline."""

EPILOG = (
    "Defaults that depend on the data: with no data flag (--train_file, --dataset_name, --tatoeba_protocol_file, "
    "...) and no --model_name_or_path, the built-in data is trained with "
    + " ".join(f"--{k} {v}" for k, v in BUILTIN_DATA_DEFAULTS.items())
    + ". On a machine without a GPU: fp32 and no pinned memory. With none of --do_train, --do_eval, --do_predict: "
    "all three."
)


def parse_args(argv: list[str]):
    """
    `(model_args, data_args, training_args)` from the flags. The raw flags first tell what is trained and where; the
    defaults that depend on it are then set, so that every given flag still wins:
    - the built-in data (no data flag, no `--model_name_or_path`) gets `BUILTIN_DATA_DEFAULTS`;
    - `--precision` (see `ModelArguments`) picks `--bf16` / `--fp16` unless one was given;
    - on a machine without an accelerator: no pinned memory, and `--use_cpu` when launched as several processes
      (torchrun, accelerate launch), without which Accelerate sets up no CPU DDP and each process would train alone;
    - with none of `--do_train`, `--do_eval` and `--do_predict`, all three.
    """
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, Seq2SeqTrainingArguments),
                              description=DESCRIPTION, epilog=EPILOG)
    parser.set_defaults(**TRAINING_DEFAULTS)
    given = parser.parse_known_args(list(argv))[0]  # the flags as typed, before any dataclass fills in its own
    defaults = {}
    data_flags = ("dataset_name", "train_file", "validation_file", "test_file", "tatoeba_protocol_file")
    if not any(getattr(given, name) for name in (*data_flags, "model_name_or_path")):
        defaults.update(BUILTIN_DATA_DEFAULTS)
    use_cpu = given.use_cpu
    if not _has_accelerator():
        defaults["dataloader_pin_memory"] = False
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            defaults["use_cpu"] = use_cpu = True
    precision = given.precision
    if not (given.fp16 or given.bf16):
        if precision == "auto" and torch.cuda.is_available() and not use_cpu:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if precision in ("fp16", "bf16"):
            defaults[precision] = True
    if not (given.do_train or given.do_eval or given.do_predict):
        defaults.update(do_train=True, do_eval=True, do_predict=True)
    parser.set_defaults(**defaults)
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=list(argv))
    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps: a stream has no length, so epochs cannot be counted")
    if data_args.streaming and data_args.max_tokens_per_batch:
        raise ValueError("--max_tokens_per_batch needs the stored lengths of a cached dataset; not with --streaming")
    if data_args.streaming:  # each process reads the stream and keeps its own batches (Accelerate's shard): rank 0
        training_args.accelerator_config.dispatch_batches = False  # could not send batches of unequal lengths
    return model_args, data_args, training_args


def model_config_kwargs(model_args: ModelArguments) -> dict:
    """The `GRUSeq2SeqConfig` fields the flags set."""
    return {name: getattr(model_args, name) for name in MODEL_FIELDS}

