"""The model card (`README.md`) of a trained model folder, and its training-curve plot.

The Hub metadata (language, license, datasets, metrics, `model-index` with the scores) is built with
`huggingface_hub.ModelCardData`/`EvalResult`, so the Hub and `ModelCard.load` read it back; the body is the
repository's `model_card.md`, filled with `string.Template`.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

from huggingface_hub import EvalResult, ModelCard, ModelCardData

LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese"}
METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF"}
logger = logging.getLogger(__name__)
EXAMPLE_INPUTS = {"en": "I am cold.", "fr": "J'ai froid."}


def find_model_card_template() -> Path:
    """`hf_gru_seq2seq/model_card.md` (an installed package's copy), else the repository's top-level one."""
    package = Path(__file__).resolve().parent
    candidates = [package / "model_card.md", package.parent / "model_card.md"]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no model card template; looked for {', '.join(map(str, candidates))}")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured markdown table of `str(value)` cells."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(v).replace("|", "\\|") for v in line) + " |" for line in lines)


def build_card_data(
    *, model_name, source_lang, target_lang, dataset_name, dataset_id, results, eval_split, license, tags=()
) -> ModelCardData:
    """Hub metadata: one `model-index` entry per (decoding, metric) of `results`, e.g. "BLEU (greedy)"."""
    eval_results = [
        EvalResult(
            task_type="translation",
            task_name="Translation",
            dataset_type=dataset_id or dataset_name,
            dataset_name=dataset_name,
            dataset_config=f"{source_lang}-{target_lang}",
            dataset_split=eval_split,
            metric_type=metric,
            metric_name=f"{METRIC_NAMES.get(metric, metric)} ({decoding})",
            metric_value=float(value),
        )
        for decoding, scores in results.items()
        for metric, value in scores.items()
    ]
    return ModelCardData(
        model_name=model_name,
        language=[source_lang, target_lang],
        license=license,
        library_name="transformers",
        pipeline_tag="translation",
        tags=["translation", "seq2seq", "gru", "d2l", *tags],
        datasets=[dataset_id] if dataset_id else None,
        metrics=sorted({metric for scores in results.values() for metric in scores}) or None,
        eval_results=eval_results or None,
    )


def render_model_card(
    output_dir,
    *,
    source_lang: str,
    target_lang: str,
    dataset_name: str,
    dataset_license: str,
    dataset_sizes: Mapping[str, int],
    hyperparameters: Mapping[str, object],
    results: Mapping[str, Mapping[str, float]],
    dataset_id: str | None = None,
    eval_split: str = "test",
    model_name: str | None = None,
    license: str = "apache-2.0",
    repo_id: str | None = None,
    tokenizer_summary: str = "byte-level BPE",
    example_input: str | None = None,
    plot_file: str | None = "training_curves.png",
    template_path=None,
) -> ModelCard:
    """
    Write `output_dir/README.md` and return it as a `ModelCard`. `results` maps a decoding to its scores, e.g.
    `{"greedy": {"bleu": 31.2, "chrf": 50.1}, "beam=4": {...}}`; every score also goes to `model-index`.
    `dataset_sizes` maps split -> pairs ("streamed" for a stream). `plot_file` (relative to `output_dir`) is shown
    when it exists.
    `dataset_id` is the Hub id for `datasets:` metadata, if there is one.
    """
    output_dir = Path(output_dir)
    model_name = model_name or output_dir.resolve().name
    data = build_card_data(model_name=model_name, source_lang=source_lang, target_lang=target_lang,
                           dataset_name=dataset_name, dataset_id=dataset_id, results=results, eval_split=eval_split,
                           license=license)
    template = Template(Path(template_path or find_model_card_template()).read_text(encoding="utf-8"))
    card = ModelCard(template.substitute(
        card_data=data.to_yaml(),
        model_name=model_name,
        source_name=LANGUAGE_NAMES.get(source_lang, source_lang),
        target_name=LANGUAGE_NAMES.get(target_lang, target_lang),
        tokenizer_summary=tokenizer_summary,
        repo_id=repo_id or "path/to/this/folder",
        example_input=json.dumps(example_input or EXAMPLE_INPUTS.get(source_lang, "..."), ensure_ascii=False),
        dataset_name=dataset_name,
        dataset_license=dataset_license,
        dataset_sizes=markdown_table(["Split", "Sentence pairs"],
                                     [[k, f"{v:,}" if isinstance(v, int) else v] for k, v in dataset_sizes.items()]),
        hyperparameters=markdown_table(["Hyperparameter", "Value"], list(hyperparameters.items())),
        eval_split=eval_split,
        results=results_table(results),
        training_curves=curves_markdown(output_dir, plot_file),
    ))
    output_dir.mkdir(parents=True, exist_ok=True)
    card.save(output_dir / "README.md")
    return card


def curves_markdown(output_dir: Path, plot_file: str | None) -> str:
    """The card's image link to the training curves, when that plot was written."""
    if plot_file and (output_dir / plot_file).is_file():
        return f"![Training loss and validation BLEU]({plot_file})"
    return "No curves were recorded."


def results_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of scores, one row per decoding and one column per metric (a dash where one is missing)."""
    if not results:
        return "No evaluation was run."
    metrics = list(dict.fromkeys(m for scores in results.values() for m in scores))
    rows = [[decoding, *(f"{s[m]:.2f}" if m in s else "–" for m in metrics)] for decoding, s in results.items()]
    return markdown_table(["Decoding", *(METRIC_NAMES.get(m, m) for m in metrics)], rows)


def plot_training_curves(log_history: Sequence[Mapping], path) -> Path | None:
    """
    PNG of the training loss (and validation loss) and validation BLEU (and chrF) against the step, from
    `trainer.state.log_history`. Uses matplotlib's Agg canvas directly: no display, no pyplot global state.
    Returns the path, or None (with a warning, and no file) when the history holds no point to draw, as after a run
    shorter than `logging_steps` without evaluation: the end of a training run should not fail on a plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def series(key):
        points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
        return tuple(zip(*points)) if points else None

    panels = [
        ("Loss", [("train", series("loss")), ("validation", series("eval_loss"))]),
        ("Validation score", [("BLEU", series("eval_bleu")), ("chrF", series("eval_chrf"))]),
    ]
    panels = [(title, [(label, s) for label, s in lines if s]) for title, lines in panels]
    panels = [(title, lines) for title, lines in panels if lines]
    if not panels:
        logger.warning("no training curves to plot: log_history has no loss or eval score with a step")
        return None
    fig = Figure(figsize=(5 * len(panels), 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (title, lines) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for label, (steps, values) in lines:
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=label)
        ax.set(title=title, xlabel="step")
        ax.legend()
        ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
