"""Model card: Hub metadata that huggingface_hub reads back, the body's tables, and the training-curve PNG."""

import matplotlib.image
import pytest
from huggingface_hub import ModelCard

from hf_gru_seq2seq import card as card_module
from hf_gru_seq2seq.card import find_model_card_template, plot_training_curves, render_model_card

LOG_HISTORY = [
    {"loss": 4.1, "grad_norm": 2.0, "learning_rate": 0.005, "epoch": 0.5, "step": 50},
    {"loss": 3.2, "epoch": 1.0, "step": 100},
    {"eval_loss": 3.4, "eval_bleu": 4.5, "eval_chrf": 20.1, "eval_gen_len": 9.0, "epoch": 1.0, "step": 100},
    {"loss": 2.5, "epoch": 1.5, "step": 150},
    {"eval_loss": 2.9, "eval_bleu": 11.25, "eval_chrf": 31.0, "epoch": 2.0, "step": 200},
    {"train_runtime": 60.0, "train_loss": 3.1, "epoch": 2.0, "step": 200},
]
RESULTS = {"greedy": {"bleu": 31.25, "chrf": 50.5}, "beam=4": {"bleu": 32.75, "chrf": 51.0}}


def render(output_dir, **overrides):
    kwargs = dict(
        source_lang="en",
        target_lang="fr",
        dataset_name="Tatoeba fra-eng (manythings.org)",
        dataset_license="CC-BY 2.0 FR",
        dataset_sizes={"train": 164_130, "validation": 1_000, "test": 2_000},
        hyperparameters={"hidden_size": 256, "learning_rate": 0.005, "tokenizer": "bpe, 8000"},
        results=RESULTS,
        model_name="gru-en-fr",
    )
    return render_model_card(output_dir, **{**kwargs, **overrides})


def test_card_metadata_reads_back(tmp_path):
    render(tmp_path, dataset_id="someone/tatoeba-fra-eng")
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert data.language == ["en", "fr"] and data.license == "apache-2.0"
    assert data.library_name == "transformers" and data.pipeline_tag == "translation"
    assert "translation" in data.tags and data.datasets == ["someone/tatoeba-fra-eng"]
    assert set(data.metrics) == {"bleu", "chrf"}
    found = {(r.metric_name, r.metric_type): r.metric_value for r in data.eval_results}
    assert found[("BLEU (greedy)", "bleu")] == 31.25 and found[("BLEU (beam=4)", "bleu")] == 32.75
    assert found[("chrF (greedy)", "chrf")] == 50.5
    first = data.eval_results[0]
    assert (first.task_type, first.dataset_split, first.dataset_config) == ("translation", "test", "en-fr")
    assert data.to_dict()["model-index"][0]["name"] == "gru-en-fr"


def test_card_body_has_the_tables(tmp_path):
    text = render(tmp_path).text
    for line in [
        "# gru-en-fr", "English → French", "CC-BY 2.0 FR", "| train | 164,130 |",
        "| learning_rate | 0.005 |", "| Decoding | BLEU | chrF |", "| greedy | 31.25 | 50.50 |",
        "| beam=4 | 32.75 | 51.00 |", "## Intended use and limitations", 'tokenizer(["I am cold."]',
    ]:
        assert line in text, line
    assert "$" not in text  # every placeholder was filled
    assert "No curves were recorded." in text  # no plot file yet


def test_usage_snippet_quotes_the_example(tmp_path):
    text = render(tmp_path, example_input='Il a dit "non" \\ « oui »').text
    snippet = text.split("```python\n")[1].split("```")[0]
    compile(snippet, "snippet", "exec")  # valid Python
    assert 'tokenizer(["Il a dit \\"non\\" \\\\ « oui »"]' in snippet


def test_card_links_the_plot_when_present(tmp_path):
    plot_training_curves(LOG_HISTORY, tmp_path / "training_curves.png")
    assert "](training_curves.png)" in render(tmp_path).text


def test_template_prefers_the_packaged_copy(tmp_path, monkeypatch):
    package = tmp_path / "hf_gru_seq2seq"
    package.mkdir()
    monkeypatch.setattr(card_module, "__file__", str(package / "card.py"))
    with pytest.raises(FileNotFoundError, match="model_card.md"):
        find_model_card_template()
    (tmp_path / "model_card.md").write_text("top")
    assert find_model_card_template() == tmp_path / "model_card.md"
    (package / "model_card.md").write_text("packaged")
    assert find_model_card_template() == package / "model_card.md"


def test_repository_template_is_found():
    assert find_model_card_template().read_text().startswith("---\n$card_data\n---")


def test_plot_is_a_valid_png(tmp_path):
    path = plot_training_curves(LOG_HISTORY, tmp_path / "plots" / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 500  # two panels side by side
    loss_only = plot_training_curves([{"loss": 1.0, "step": 1}], tmp_path / "loss.png")
    assert matplotlib.image.imread(loss_only).shape[1] < image.shape[1]


def test_nothing_to_plot_writes_nothing(tmp_path, caplog):
    assert plot_training_curves([{"train_runtime": 1.0, "train_loss": 2.0, "step": 5}], tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists() and "no training curves" in caplog.text


def test_card_without_results(tmp_path):
    card = render(tmp_path, results={})
    assert "No evaluation was run." in card.text
    assert not ModelCard.load(tmp_path / "README.md").data.eval_results
