"""BLEU and chrF for `Seq2SeqTrainer(compute_metrics=...)`, through `evaluate`, offline.

The metric is the `evaluate` module shipped in `evaluate_modules/translation_scores/` (sacrebleu's corpus BLEU, 13a
tokenization, and chrF), loaded from its local folder: nothing is fetched from the Hub.
"""

from pathlib import Path

import evaluate
import numpy as np

METRIC_DIR = Path(__file__).resolve().parent / "evaluate_modules" / "translation_scores"


def load_translation_metric(**kwargs) -> evaluate.EvaluationModule:
    """`evaluate.load` of the packaged BLEU + chrF metric (keyword arguments go to `evaluate.load`)."""
    return evaluate.load(str(METRIC_DIR), **kwargs)


def decode_for_metrics(ids, tokenizer) -> list[str]:
    """Token ids (a batch; -100 marks ignored label positions) -> stripped text without special tokens."""
    if isinstance(ids, tuple):  # (generated ids, ...) from some models
        ids = ids[0]
    ids = np.where(np.asarray(ids) != -100, ids, tokenizer.pad_token_id)
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def build_compute_metrics(tokenizer, metric=None, lowercase: bool = False):
    """
    A `compute_metrics(eval_preds)` for `Seq2SeqTrainer` (with `predict_with_generate=True`): decodes generated
    ids and labels and returns `{"bleu", "chrf", "gen_len"}`, which the trainer logs as `eval_bleu`, ... .
    `gen_len` is the mean generated length in tokens (see `generated_lengths`).
    """
    metric = metric if metric is not None else load_translation_metric()

    def compute_metrics(eval_preds):
        preds, labels = tuple(eval_preds)[:2]  # an EvalPrediction or a plain pair
        if isinstance(preds, tuple):
            preds = preds[0]
        preds = np.where(np.asarray(preds) != -100, preds, tokenizer.pad_token_id)
        predictions, references = decode_for_metrics(preds, tokenizer), decode_for_metrics(labels, tokenizer)
        scores = metric.compute(predictions=predictions, references=[[r] for r in references], lowercase=lowercase)
        gen_len = float(np.mean(generated_lengths(preds, tokenizer.pad_token_id, tokenizer.eos_token_id)))
        return {"bleu": scores["bleu"], "chrf": scores["chrf"], "gen_len": gen_len}

    return compute_metrics


def generated_lengths(ids: np.ndarray, pad_token_id: int, eos_token_id: int) -> np.ndarray:
    """
    Tokens per generated row, the decoder start and the first `</s>` included: run_translation.py counts non-padding
    tokens, but Transformers' beam search fills finished rows with `</s>` instead when the pad id is 0 (it takes
    `pad_token_id or eos_token_id`), which would count every row as long as the longest one.
    """
    is_eos = ids == eos_token_id
    return np.where(is_eos.any(-1), is_eos.argmax(-1) + 1, np.count_nonzero(ids != pad_token_id, axis=-1))
