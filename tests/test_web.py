"""The page of `hf-gru-seq2seq-export-web`, in a real (headless, system) Chromium: it translates 200 test numbers typed
into it as Python's generate() does on the same int8 graphs, greedy and beam; it tokenizes both kinds of tokenizer
the package trains exactly as Python does; it flags unknown words, keeps blank lines, says why a model fails to load;
and the command answers bad input in one line."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from model_tester import GRUSeq2SeqModelTester
from PIL import Image
from script_runs import REPO
from transformers import AutoTokenizer

from hf_gru_seq2seq.data import number_words_dataset
from hf_gru_seq2seq.modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration
from hf_gru_seq2seq.pipeline_gru_seq2seq import unknown_words
from hf_gru_seq2seq.translate import translate_lines, unknown_words_warning
from hf_gru_seq2seq.vocabulary import train_tokenizer
from hf_gru_seq2seq.web_export import export_web

if str(REPO) not in sys.path:  # `benchmarks` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(REPO))
from benchmarks import browser  # noqa: E402 (after the sys.path line above)

# Case, punctuation, accents, compatibility forms, extra and odd spaces, a literal metaspace, an emoji, special tokens.
TRICKY = ["Hello, world!", "  HELLO,   World!!  ", "Café naïve «open»", "l'homme quarante-deux",
          "Ｆｕｌｌ\u00a0width ﬁne", "unknown zebra, and Zebra!", "trois  cent\tquarante-deux.", "(enfin) ... ¿qué?",
          "e\u0301te\u0301 CAFÉ", "x▁y ▁ z", "İstanbul ẞ straße", "!!!", "don't stop…", "emoji 😀 here",
          "a </s> b", "zebra <unk> cold", "hello<pad>world", "<s>Go!</s>"]  # special tokens typed in
PAIRS = [("Hello, world!", "Bonjour, le monde !"), ("three hundred forty-two", "trois cent quarante-deux"),
         ("I'm cold.", "J'ai froid."), ("The café is «open»", "Le café est « ouvert »"), ("naïve? (yes)", "naïf ? (oui)")]


def missing(what: str, how: str) -> None:
    """Fail under CI (which installs `what`), skip elsewhere, saying how to get it."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: .ci/run installs it ({how})")
    pytest.skip(f"{what} is missing ({how}); CI installs it and runs this test")


@pytest.fixture(scope="session")  # session: checked before the session's trained model is made for nothing
def web_libraries():
    from hf_gru_seq2seq.web_export import check_libraries

    try:
        check_libraries()
    except FileNotFoundError:
        missing("the page's npm packages", "npm ci --prefix web")


@pytest.fixture(scope="session")
def chromium(web_libraries):
    if browser.chromium_path() is None:
        missing("chromium", "apt-get install -y chromium")
    with browser.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def number_words_page(number_words_export, tmp_path_factory):
    """The main job's model as a page (int8 graphs), served on 127.0.0.1."""
    folder = export_web(str(number_words_export), tmp_path_factory.mktemp("web") / "number-words")
    with browser.serve(folder) as url:
        yield folder, url


def test_page_translates_typed_numbers_as_generate_does(chromium, number_words_page, number_words_export, tmp_path):
    """200 test numbers typed into the page: its lines equal Python generate() on the same int8 graphs for at least
    99% (greedy and beam) and the references for at least 99%; a phone-sized screenshot is not blank."""
    folder, url = number_words_page
    pairs = number_words_dataset()["test"]["translation"][:200]
    sources, references = [p["en"] for p in pairs], [p["fr"] for p in pairs]
    model = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(folder, quantized=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    page = browser.open_page(chromium, url, viewport={"width": 390, "height": 844})
    assert page.evaluate("document.body.dataset.state") == "ready", page.locator("#error").text_content()
    folder_name = number_words_export.parent.name if number_words_export.name == "onnx" else number_words_export.name
    assert page.locator("h1").text_content() == folder_name  # a folder is named by its name (an onnx/ by its parent's)
    assert page.locator("#languages").text_content().startswith("en → fr")
    browser.type_text(page, "\n".join(sources))
    for beam, num_beams in ((False, 1), (True, model.generation_config.num_beams)):
        got = browser.translate(page, beam)
        expected = translate_lines(model, tokenizer, sources, num_beams=num_beams)
        assert len(got["lines"]) == len(sources)
        same = sum(a == b for a, b in zip(got["lines"], expected))
        exact = sum(a == b for a, b in zip(got["lines"], references))
        assert same >= 0.99 * len(sources), (num_beams, same)
        assert exact >= 0.99 * len(sources), (num_beams, exact)
        assert got["warnings"] == ""  # byte-level BPE has every byte
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50 and pixels.std() > 20  # text and widgets, not a blank page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    page.close()


def test_fp32_page_translates_as_the_fp32_graphs(chromium, number_words_export, tmp_path):
    folder = export_web(str(number_words_export), tmp_path / "fp32", fp32=True)
    assert json.loads((folder / "page.json").read_text())["precision"] == "fp32"
    assert (folder / "encoder_model.onnx").is_file() and not list(folder.glob("*_quantized.onnx"))
    sources = [p["en"] for p in number_words_dataset()["test"]["translation"][:20]]
    model = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with browser.serve(folder) as url:
        page = browser.open_page(chromium, url)
        page.locator("#source").fill("\n".join(sources))
        for beam, num_beams in ((False, 1), (True, 4)):
            assert browser.translate(page, beam)["lines"] == translate_lines(model, tokenizer, sources,
                                                                             num_beams=num_beams)
        page.close()


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_page_tokenizes_as_python(chromium, number_words_page, kind):
    """Token ids, decoded text and unknown words of tricky strings, for both kinds of tokenizer the package trains
    (cased and lowercased), through the page's own tokenizer module in the browser."""
    folder, url = number_words_page
    data = Dataset.from_list([{"translation": {"en": e, "fr": f}} for e, f in PAIRS * 3])
    page = browser.open_page(chromium, url)
    for lowercase in (False, True):
        tokenizer = train_tokenizer(data, "en", "fr", model_type=kind, min_frequency=1, lowercase=lowercase,
                                    vocab_size=300)
        name = f"tok-{kind}-{lowercase}"
        tokenizer.save_pretrained(folder / name)
        got = page.evaluate("""async ([name, strings]) => {
            const { LineTokenizer } = await import("./tokenizer.js");
            const load = async (file) => (await fetch(`${name}/${file}`)).json();
            const tok = new LineTokenizer(await load("tokenizer.json"), await load("tokenizer_config.json"));
            return strings.map((s) => ({ ids: tok.encode(s), unknown: tok.unknownWords(s),
                                         text: tok.decode(tok.encode(s)) }));
        }""", [name, TRICKY])
        for line, row in zip(TRICKY, got):
            ids = tokenizer(line)["input_ids"]
            assert row == {"ids": ids, "unknown": unknown_words(tokenizer, line),
                           "text": tokenizer.decode(ids, skip_special_tokens=True)}, (kind, lowercase, line)
        if kind == "word":
            assert sum(len(row["unknown"]) for row in got) > 10  # the strings do hold unknown words
    page.close()


@pytest.fixture(scope="module")
def word_level_page(tmp_path_factory):
    """A small random model with a word-level, lowercasing tokenizer, exported from its PyTorch folder."""
    root = tmp_path_factory.mktemp("web-word")
    data = Dataset.from_list([{"translation": {"en": e, "fr": f}} for e, f in PAIRS])
    tokenizer = train_tokenizer(data, "en", "fr", model_type="word", min_frequency=1, lowercase=True)
    tester = GRUSeq2SeqModelTester(vocab_size=len(tokenizer), decoder_vocab_size=len(tokenizer))
    model = tester.model(logit_scale=4.0)
    model.generation_config.max_length = 8  # random weights: short outputs, whatever they say
    model.add_translation_task("en", "fr")
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    folder = export_web(str(root / "model"), root / "page")
    with browser.serve(folder) as url:
        yield folder, url


def test_page_flags_unknown_words_and_keeps_blank_lines(chromium, word_level_page):
    folder, url = word_level_page
    lines = ["Hello world", "", "zebra, cold GO!", "  I'm  Zebra  ", "   "]
    model = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(folder, quantized=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    page = browser.open_page(chromium, url)
    browser.type_text(page, "\n".join(lines))
    for beam, num_beams in ((False, 1), (True, 4)):
        got = browser.translate(page, beam)
        assert got["lines"] == translate_lines(model, tokenizer, lines, num_beams=num_beams)
        assert got["lines"][1] == got["lines"][4] == "" and all(got["lines"][i] for i in (0, 2, 3))
        assert got["warnings"] == unknown_words_warning(tokenizer, lines)  # the CLI's line
        assert got["warnings"] == ('warning: 3 word(s) unknown to the tokenizer, translated as <unk>: "zebra" (line 3), '
                                   '"GO" (line 3), "Zebra" (line 4)')
    page.close()


@pytest.mark.parametrize("length_penalty, early_stopping, max_length",
                         [(1.0, False, 8), (0.5, True, 8), (2.0, "never", 8), (-1.0, False, 5), (1.0, True, 12)])
def test_page_beam_search_follows_the_generation_config(chromium, word_level_page, length_penalty, early_stopping,
                                                        max_length):
    """Length penalty, early stopping (False, True, "never") and max_length, changed in the page's generation config,
    give the beams generate() gives with the same settings (random weights: long, close beams)."""
    folder, url = word_level_page
    lines = [pair[0] for pair in PAIRS] + [pair[1] for pair in PAIRS] + ["cold cold hello", "world ."]
    model = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(folder, quantized=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    page = browser.open_page(chromium, url)
    settings = {"length_penalty": length_penalty, "early_stopping": early_stopping, "max_length": max_length}
    page.evaluate("settings => Object.assign(window.translator.generation, settings)", settings)
    page.locator("#source").fill("\n".join(lines))
    expected = translate_lines(model, tokenizer, lines, num_beams=4, length_penalty=length_penalty,
                               early_stopping=early_stopping, max_length=max_length)
    assert browser.translate(page, beam=True)["lines"] == expected
    page.close()


def test_page_says_why_a_model_fails_to_load(chromium, number_words_page, tmp_path):
    folder, _ = number_words_page
    broken = shutil.copytree(folder, tmp_path / "broken")
    (broken / "decoder_model_quantized.onnx").unlink()
    with browser.serve(broken) as url:
        page = browser.open_page(chromium, url)
        assert page.evaluate("document.body.dataset.state") == "error"
        assert "decoder_model_quantized.onnx: HTTP 404" in page.locator("#error").text_content()
        assert page.locator("#translate").is_disabled()
        page.close()


def test_export_command_answers_bad_input_in_one_line(web_libraries, number_words_export, tmp_path, monkeypatch,
                                                      capsys):
    from hf_gru_seq2seq.cli import export_web_main

    no_graphs = shutil.copytree(number_words_export, tmp_path / "no-graphs",
                                ignore=shutil.ignore_patterns("*_quantized.onnx"))
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    cases = {no_graphs: "no encoder_model_quantized.onnx in", other: "model_type 'bert' is not supported"}
    monkeypatch.delenv("HF_GRU_SEQ2SEQ_TRACEBACK", raising=False)
    for model, message in cases.items():
        monkeypatch.setattr(sys, "argv", ["hf-gru-seq2seq-export-web", str(model), str(tmp_path / "out")])
        with pytest.raises(SystemExit) as exit_info:
            export_web_main()
        out, err = capsys.readouterr()
        assert exit_info.value.code == 2 and out == "", err
        assert err.count("\n") == 1 and err.startswith("hf-gru-seq2seq-export-web: error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_export_says_how_to_get_the_libraries(tmp_path, monkeypatch):
    from hf_gru_seq2seq import web_export

    web = shutil.copytree(web_export.WEB_DIR, tmp_path / "web", ignore=shutil.ignore_patterns("node_modules"))
    with pytest.raises(FileNotFoundError, match=f"run npm ci --prefix {web}"):
        web_export.check_libraries(Path(web))


def test_web_benchmark_writes_its_report(chromium, word_level_page, tmp_path):
    """`python -m benchmarks web` on a small model, one round: every row timed, the page's lines equal to Python
    ONNX Runtime's, the target ratio computed, JSON and markdown written."""
    from benchmarks import web

    folder, _ = word_level_page
    report = web.main(["--model", str(folder.parent / "model"), "--page", str(folder), "--rounds", "1", "--loads",
                       "1", "--out", str(tmp_path), "--name", "tiny"], chromium=chromium)
    assert {(r["workload"], r["decoding"], r["impl"]) for r in report["rows"]} == {
        (w, d, i) for w in web.WORKLOADS for d in web.DECODINGS for i in ("page", "ort-int8", "pytorch")}
    assert all(r["median_s"] > 0 for r in report["rows"])
    assert all(r["same_lines_as_ort"] == 1.0 for r in report["rows"] if r["impl"] == "page")  # same int8 graphs
    assert report["ratios"][0]["value"] > 0 and report["page_load_s"]["median_wall_s"] > 0
    assert len(list(tmp_path.glob("*-tiny.json"))) == 1 and len(list(tmp_path.glob("*-tiny.md"))) == 1


@pytest.mark.parametrize("change", [{"eos_token_id": [2, 5]}, {"repetition_penalty": 1.2}, {"do_sample": True},
                                    {"num_return_sequences": 2}, {"no_repeat_ngram_size": 3}])
def test_export_refuses_generation_settings_the_page_does_not_follow(word_level_page, tmp_path, change):
    from hf_gru_seq2seq.web_export import MODEL_FILES, check_supported

    folder, _ = word_level_page
    for name in MODEL_FILES:
        shutil.copy(folder / name, tmp_path / name)
    check_supported(tmp_path)  # as exported
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    (tmp_path / "generation_config.json").write_text(json.dumps({**generation, **change}))
    with pytest.raises(ValueError, match=f"{next(iter(change))}=.* is not supported by the page"):
        check_supported(tmp_path)
