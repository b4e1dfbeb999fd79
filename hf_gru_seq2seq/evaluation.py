"""The final decoding and scoring of a training run, and what it writes and prints.

Every split asked for (validation as `eval_*`, test as `predict_*`) is decoded greedily and with the final beam size,
and scored (BLEU, chrF, exact match) against the raw reference text, not the tokenized labels, which are truncated
and, for a word-level vocabulary, lose unknown words. The model card shows the test split's scores when the test
split was scored, else the validation split's.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import metrics
from .translate import one_line

logger = logging.getLogger("hf_gru_seq2seq.train")

SPLITS = {"validation": "eval", "test": "predict"}  # split -> the Trainer's metric prefix
SCORES = ("bleu", "chrf", "exact_match")


@dataclass
class FinalScores:
    metrics: dict = field(default_factory=dict)  # e.g. predict_bleu, predict_greedy_chrf, eval_exact_match
    by_split: dict = field(default_factory=dict)  # split -> decoding ("greedy", "beam=4") -> {"bleu", "chrf"}
    test_predictions: list[str] | None = None  # with the final beam size, in dataset order

    @property
    def card_split(self) -> str:
        return "test" if "test" in self.by_split else "validation"

    @property
    def card_results(self) -> dict:
        return self.by_split.get(self.card_split, {})


def decodings(final_num_beams: int) -> dict[str, int]:
    """Decoding name -> beam size: greedy always, and the final beam size when it is more than one."""
    return {"greedy": 1, **({f"beam={final_num_beams}": final_num_beams} if final_num_beams > 1 else {})}


def score_split(trainer, dataset, raw_split, prefix: str, num_beams: int, data_args, metric):
    """Decode `dataset` with `num_beams` and score it against `raw_split`'s references. Returns (metrics, texts)."""
    output = trainer.predict(dataset, metric_key_prefix=prefix, num_beams=num_beams)
    split_metrics = dict(output.metrics)
    generated = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    predictions = [one_line(text) for text in metrics.decode_for_metrics(generated, trainer.processing_class)]
    if len(raw_split) == len(dataset):
        references = [[pair[data_args.target_lang]] for pair in raw_split["translation"]]
        result = metric.compute(predictions=predictions, references=references, lowercase=data_args.bleu_lowercase)
        split_metrics.update({f"{prefix}_{m}": result[m] for m in SCORES})
    else:
        logger.warning("%s: empty pairs were dropped, so scores use the tokenized references", prefix)
    split_metrics[f"{prefix}_samples"] = len(dataset)
    return split_metrics, predictions


def final_scores(trainer, tokenized, raw, data_args, training_args) -> FinalScores:
    """Score every split asked for (`--do_eval`, `--do_predict`) with every decoding; save each as the Trainer does
    (`eval_results.json`, ...). Keys: `<prefix>_<score>` for the final beam size, `<prefix>_greedy_<score>` else."""
    final, metric = FinalScores(), metrics.load_translation_metric()
    wanted = {"validation": training_args.do_eval, "test": training_args.do_predict}
    for split, prefix in SPLITS.items():
        if not wanted[split] or split not in tokenized:
            continue
        for decoding, beams in decodings(data_args.final_num_beams).items():
            key = prefix if beams == data_args.final_num_beams else f"{prefix}_greedy"
            split_metrics, texts = score_split(trainer, tokenized[split], raw[split], key, beams, data_args, metric)
            trainer.save_metrics(key, split_metrics)
            final.metrics.update(split_metrics)
            final.by_split.setdefault(split, {})[decoding] = {
                m: round(split_metrics[f"{key}_{m}"], 2) for m in ("bleu", "chrf") if f"{key}_{m}" in split_metrics}
            if split == "test" and beams == data_args.final_num_beams:
                final.test_predictions = texts
    return final


def write_predictions(out: Path, raw, texts, data_args) -> list[tuple[str, str, str]]:
    """Write `generated_predictions.txt` (one line per test pair) and return a few (source, output, reference)."""
    if texts is None:
        return []
    (out / "generated_predictions.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    pairs = raw["test"]["translation"][: len(texts)]
    return [(p[data_args.source_lang], t, p[data_args.target_lang])
            for p, t in zip(pairs[: data_args.num_sample_translations], texts)]


def report(results: dict, samples) -> None:
    """Print the scores and a few translations."""
    lines = ["", "Results:"]
    for key in sorted(results):
        if key.endswith(("_bleu", "_chrf", "_exact_match", "_loss")) or key in ("train_runtime",):
            lines.append(f"  {key:28s} {results[key]:.2f}")
    if samples:
        lines.append("Sample translations (test):")
        for source, output, reference in samples:
            lines += [f"  source:    {source}", f"  output:    {output}", f"  reference: {reference}"]
    print("\n".join(lines), flush=True)
