"""Train end to end with `hf_gru_seq2seq.training.run`: the built-in data and small files, the saved folder and the
translate script, clear errors, resuming after a kill, and `--precision`. Tiny models and a few steps each."""

import io
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sacrebleu
import torch
from huggingface_hub import ModelCard
from PIL import Image
from safetensors.torch import load_file
from script_runs import REPO, script_env
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration, training, training_args
from hf_gru_seq2seq.data import number_to_words
from hf_gru_seq2seq.translate import translate_lines

TINY = [
    "--embedding_size", "16", "--hidden_size", "16", "--num_hidden_layers", "1", "--tokenizer_vocab_size", "300",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--final_num_beams", "2",
    "--max_target_length", "24", "--save_strategy", "no", "--logging_steps", "1", "--learning_rate", "1e-3",
]
TINY_CPU = [*TINY, "--use_cpu"]  # the same numbers on any machine (the translations are compared on the CPU)


def number_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """`count` distinct (English, French) number-word pairs of 1 to 6 digits, so sentence lengths vary."""
    rng, numbers = random.Random(seed), set()
    while len(numbers) < count:
        numbers.add(rng.randrange(10 ** rng.randint(1, 6)))
    return [(number_to_words(n, "en"), number_to_words(n, "fr")) for n in sorted(numbers, key=lambda _: rng.random())]


def write_tatoeba(path: Path, lines) -> Path:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return path


def tatoeba_lines(pairs) -> list[str]:
    return [f"{en}\t{fr}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}" for i, (en, fr) in enumerate(pairs)]


def write_jsonl(path: Path, pairs) -> Path:
    path.write_text("".join(json.dumps({"translation": {"en": e, "fr": f}}) + "\n" for e, f in pairs))
    return path


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def load_folder(out: Path):
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    return model, AutoTokenizer.from_pretrained(out)


def card_scores(out: Path) -> dict[str, float]:
    """`{"BLEU (beam=2)": value, ...}` from the model-index of the folder's README.md, as the Hub reads it."""
    return {r.metric_name: r.metric_value for r in ModelCard.load(out / "README.md").data.eval_results}


def logged_losses(out: Path) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in read_json(out / "trainer_state.json")["log_history"] if "loss" in e]


# ----------------------------------------------------------------------------------------------------------------
# 1. The built-in data, the saved folder, the translate script
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_in_run(tmp_path_factory):
    """No data flag: the built-in number words, cut to a few hundred pairs and a few steps."""
    out = tmp_path_factory.mktemp("built_in") / "gru-numbers"
    results = training.run([
        "--output_dir", str(out), *TINY_CPU, "--max_steps", "8", "--max_train_samples", "200",
        "--max_eval_samples", "16", "--max_predict_samples", "16",
    ])
    return out, results


def test_output_folder_holds_a_complete_model(built_in_run):
    out, _ = built_in_run
    for name in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "README.md", "training_curves.png", "all_results.json",
                 "eval_results.json", "predict_results.json", "train_results.json", "trainer_state.json"]:
        assert (out / name).is_file(), name
    assert not (out / "pytorch_model.bin").exists()
    assert (out / "training_curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(out / "training_curves.png") as image:
        image.verify()
    with Image.open(out / "training_curves.png") as image:
        assert image.format == "PNG" and min(image.size) > 100
    assert len((out / "generated_predictions.txt").read_text(encoding="utf-8").splitlines()) == 16


def test_results_files_use_hf_key_names(built_in_run):
    out, results = built_in_run
    all_results = read_json(out / "all_results.json")
    assert all_results == json.loads(json.dumps(results))  # what run() returned is what it recorded
    for key in ["train_loss", "eval_loss", "eval_bleu", "eval_chrf", "predict_loss", "predict_bleu", "predict_chrf"]:
        assert isinstance(all_results[key], float), key
    assert all_results["train_samples"] == 200
    assert all_results["eval_samples"] == all_results["predict_samples"] == 16
    for split in ["eval", "predict"]:
        split_results = read_json(out / f"{split}_results.json")
        assert {f"{split}_bleu", f"{split}_chrf", f"{split}_loss", f"{split}_samples"} <= set(split_results)
        assert all(key.startswith(f"{split}_") for key in split_results)
        assert all(all_results[key] == value for key, value in split_results.items())
    assert read_json(out / "trainer_state.json")["global_step"] == 8


def test_model_card_carries_the_reported_scores(built_in_run):
    out, results = built_in_run
    card = ModelCard.load(out / "README.md")
    assert card.data.language == ["en", "fr"]
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    scores = card_scores(out)
    assert scores["BLEU (beam=2)"] == round(results["predict_bleu"], 2)
    assert scores["chrF (beam=2)"] == round(results["predict_chrf"], 2)
    assert scores["BLEU (greedy)"] == round(results["predict_greedy_bleu"], 2)
    assert scores["chrF (greedy)"] == round(results["predict_greedy_chrf"], 2)


def test_saved_folder_loads_and_translates(built_in_run):
    out, _ = built_in_run
    model, tokenizer = load_folder(out)
    assert isinstance(model, GRUSeq2SeqForConditionalGeneration)
    assert model.config.hidden_size == 16 and model.config.vocab_size == len(tokenizer)
    assert model.generation_config.num_beams == 2
    lines = ["seven", "", "three hundred forty-two thousand one", "   ", "ninety-nine"]
    translations = translate_lines(model, tokenizer, lines)
    assert len(translations) == len(lines)
    assert translations[1] == translations[3] == ""
    assert all(isinstance(t, str) and "\n" not in t for t in translations)


def test_translate_script_gives_one_line_per_input_line(built_in_run, tmp_path):
    out, _ = built_in_run
    # Blank and whitespace-only lines, a form feed (as pdftotext writes) and a line separator inside lines.
    lines = ["seven", "", "three hundred forty-two thousand one", "   ", "\x0cninety-nine", "ten\u2028two",
             "Où est-il ?", "sixty"]
    model, tokenizer = load_folder(out)
    expected = translate_lines(model, tokenizer, lines)
    assert len(set(expected)) > 2  # else the order could not be told

    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "translate.py"), "--model", str(out), "--device", "cpu"]
    piped = subprocess.Popen(script, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=script_env())
    to_file = subprocess.Popen([*script, "--input", str(source), "--output", str(tmp_path / "out.txt")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=script_env())
    stdout, stderr = piped.communicate(("\n".join(lines) + "\n").encode(), timeout=120)
    assert piped.returncode == 0, stderr.decode()[-2000:]
    assert stdout.decode().split("\n") == [*expected, ""]
    # No loading bars around the translations: only the warning that the French line holds words the built-in
    # (word-level, number-words) vocabulary does not know.
    [warning] = stderr.decode().splitlines()
    assert warning.startswith("warning: ") and '"Où" (line 7), "est-il" (line 7)' in warning
    _, stderr = to_file.communicate(timeout=120)
    assert to_file.returncode == 0, stderr.decode()[-2000:]
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").split("\n") == [*expected, ""]


def test_translate_cli_names_unknown_words_in_one_warning_line(tmp_path, monkeypatch, capsys):
    """Words the tokenizer reads as <unk> are named on stderr, once each with their first line, in one line; every
    line is still translated, one output line per input line."""
    from model_tester import GRUSeq2SeqModelTester, tiny_tokenizer

    from hf_gru_seq2seq.cli import translate_main

    GRUSeq2SeqModelTester().model(logit_scale=4.0).save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    capsys.readouterr()  # what saving printed
    monkeypatch.setattr(sys, "stdin", io.StringIO("go .\nhello World !\n\nrun hello\nhi\n"))
    monkeypatch.setattr(sys, "argv", ["prog", "--model", str(tmp_path), "--device", "cpu", "--num_beams", "1",
                                      "--max_new_tokens", "4"])
    translate_main()
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        'warning: 2 word(s) unknown to the tokenizer, translated as <unk>: "hello" (line 2), "World" (line 2)']
    model, tokenizer = load_folder(tmp_path)
    lines = ["go .", "hello World !", "", "run hello", "hi"]
    assert out.split("\n") == [*translate_lines(model, tokenizer, lines, num_beams=1, max_new_tokens=4), ""]


def test_saved_folder_reads_as_a_user_expects(built_in_run):
    """A readable card (option names as typed), a config that does not claim the model caches nothing, Transformers
    4's pipeline task names, and a tokenizer that ignores case on the built-in data."""
    out, _ = built_in_run
    card = (out / "README.md").read_text(encoding="utf-8")
    row = next(line for line in card.splitlines() if line.startswith("| optimizer |"))
    assert row == "| optimizer | adamw_torch_fused, lr 0.001, linear |"
    config = read_json(out / "config.json")
    assert config.get("use_cache", True) is True
    assert {"translation", "text2text-generation", "translation_en_to_fr"} <= set(config["custom_pipelines"])
    model, tokenizer = load_folder(out)
    assert tokenizer("Seven HUNDRED")["input_ids"] == tokenizer("seven hundred")["input_ids"]
    assert len(set(translate_lines(model, tokenizer, ["SEVEN", "Seven", "seven"]))) == 1


def test_rerunning_the_default_command_trains_into_a_new_folder(built_in_run, tmp_path):
    """The README's command run twice: the second run says where it goes and trains there, the first model stays;
    the job ends with one line saying where the model is and how to translate with it; no warning repeats."""
    first = tmp_path / "outputs" / "number-words"
    shutil.copytree(built_in_run[0], first)
    before = (first / "model.safetensors").read_bytes()
    command = [sys.executable, str(REPO / "scripts" / "train.py"), *TINY, "--max_steps", "3",
               "--max_train_samples", "100", "--max_eval_samples", "8", "--max_predict_samples", "8"]
    done = subprocess.run(command, cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "outputs/number-words holds the model of an earlier run: this run trains into outputs/number-words-2" in log
    second = tmp_path / "outputs" / "number-words-2"
    assert (second / "config.json").is_file() and (first / "model.safetensors").read_bytes() == before
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("Model saved in outputs/number-words-2; translate with: echo ")
    assert last.endswith(" | hf-gru-seq2seq-translate --model outputs/number-words-2")
    warnings = [line for line in log.splitlines() if "Warning" in line or " WARNING " in line]
    assert len(warnings) == len(set(warnings)), warnings
    assert "pin_memory" not in log


def test_help_gives_every_model_flag_a_meaning_and_a_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping inside the help texts
    with pytest.raises(SystemExit):
        training.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split()).split(" options: ", 1)[1]
    helps = {}
    for name in (*training_args.MODEL_FIELDS, "lowercase", "max_source_length", "max_target_length", "precision",
                 "final_num_beams", "tokenizer_type"):
        dashed = name.replace("_", "-")
        found = re.search(rf"--{dashed}(?: \S+)? (.*?) \(default: ([^)]*)\)", text)  # the last of its names
        assert found and len(found.group(1).split()) > 3, name  # a sentence, then the default
        helps[name] = found.groups()
    assert helps["hidden_size"] == ("GRU state size, encoder and decoder; 128 on the built-in data", "256")
    assert helps["reverse_source"][1] == "True" and "GRUSeq2SeqConfig" in helps["reverse_source"][0]
    assert "Defaults that depend on the data" in text and "--num_train_epochs 3" in text


def cli_in_process(entry, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """Run a console entry point here (as its script would) and return its exit status and stderr."""
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    with pytest.raises(SystemExit) as exit_info:
        entry()
    return exit_info.value.code, capsys.readouterr().err


def test_training_cli_names_a_users_mistake_in_one_line(tmp_path):
    """The script itself, in its own process: one line on stderr, status 2, no traceback."""
    (tmp_path / "outputs").mkdir()
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), "--train_file", "nowhere/train.txt",
                           "--output_dir", "out"], cwd=tmp_path, env=script_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "hf-gru-seq2seq-train: error: parallel data file not found: nowhere/train.txt")


@pytest.mark.parametrize("flags, message", [
    (["--model_name_or_path", "outputs/numbr-words"], "--model_name_or_path outputs/numbr-words: no such folder"),
    (["--tokenizer_name", "./tok"], "--tokenizer_name ./tok: no such folder"),
])
def test_training_cli_names_a_mistyped_path_in_one_line(tmp_path, monkeypatch, capsys, flags, message):
    from hf_gru_seq2seq.cli import train_main

    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    code, err = cli_in_process(train_main, [*flags, "--output_dir", "out"], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"hf-gru-seq2seq-train: error: {message}"


def test_training_cli_refuses_an_output_folder_holding_a_model_in_one_line(built_in_run, monkeypatch, capsys):
    from hf_gru_seq2seq.cli import train_main

    code, err = cli_in_process(train_main, ["--output_dir", str(built_in_run[0])], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"hf-gru-seq2seq-train: error: output_dir {built_in_run[0]} already holds a trained model")


@pytest.mark.parametrize("model", ["outputs/numbr-words", "./numbr-words", "../numbr-words", "/nowhere/model",
                                   "a/b/c", "bad..name"])
def test_translate_cli_fails_at_once_on_a_missing_local_model(tmp_path, monkeypatch, capsys, model):
    """A mistyped path fails before any Hub request (the suite runs offline, so one would fail with another
    message), in one line."""
    from hf_gru_seq2seq.cli import translate_main

    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    code, err = cli_in_process(translate_main, ["--model", model], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"hf-gru-seq2seq-translate: error: --model {model}: no such folder"]


def test_hub_ids_are_not_mistaken_for_local_paths(tmp_path, monkeypatch):
    from hf_gru_seq2seq.translate import check_model_reference

    monkeypatch.chdir(tmp_path)
    for name in ("alice/gru-tiny", "gru-tiny", "Helsinki-NLP/opus-mt-en-fr"):
        check_model_reference(name)  # left to the Hub: no error here
    (tmp_path / "alice").mkdir()
    with pytest.raises(FileNotFoundError, match="--model alice/gru-tiny: no such folder"):
        check_model_reference("alice/gru-tiny")  # a folder "alice" exists here: a local path was meant


# ----------------------------------------------------------------------------------------------------------------
# 2. Files: Tatoeba text with malformed lines, JSON lines, both directions
# ----------------------------------------------------------------------------------------------------------------


def test_tatoeba_file_with_malformed_lines_trains_french_to_english(tmp_path, caplog):
    good = number_pairs(80, seed=1)
    lines = tatoeba_lines(good)
    # Line numbers after insertion: 3 (no tab), 10 and 20 (an empty side), 30 (Latin-1, not UTF-8).
    for line_no, bad in [(3, b"no tab on this line"), (10, "huit\t\tCC-BY 2.0".encode()), (20, b"\tsept"),
                         (30, b"caf\xe9\tcaf\xe9")]:
        lines.insert(line_no - 1, bad)
    train = write_tatoeba(tmp_path / "fra-messy.txt", lines)
    test_pairs = number_pairs(12, seed=2)
    test = write_tatoeba(tmp_path / "fra-test.txt", tatoeba_lines(test_pairs))
    out = tmp_path / "fr-en"

    with caplog.at_level(logging.INFO, logger="hf_gru_seq2seq.data"):
        results = training.run([
            "--train_file", str(train), "--test_file", str(test), "--source_lang", "fr", "--target_lang", "en",
            "--output_dir", str(out), *TINY_CPU, "--max_steps", "8", "--final_num_beams", "1",
        ])

    reports = [r for r in caplog.records if r.name == "hf_gru_seq2seq.data" and "fra-messy.txt" in r.getMessage()]
    assert len(reports) == 1 and reports[0].levelno == logging.WARNING
    message = reports[0].getMessage()
    assert f"{len(good)} pairs, 4 lines skipped" in message
    for part in ["no tab: 1, line 3", "empty side: 2, lines 10, 20", "not UTF-8: 1, line 30"]:
        assert part in message
    assert results["train_samples"] + results["eval_samples"] == len(good)  # every good pair, nothing else
    assert results["predict_samples"] == len(test_pairs)

    # French in, English out: the saved model translating the French test sources reproduces the run's
    # predictions, in file order, and the run's test scores are those of these outputs against the English side.
    card = ModelCard.load(out / "README.md")
    assert card.data.language == ["fr", "en"]
    assert {r.dataset_config for r in card.data.eval_results} == {"fr-en"}
    model, tokenizer = load_folder(out)
    outputs = translate_lines(model, tokenizer, [fr for _, fr in test_pairs])
    assert len(set(outputs)) > 3  # else a change of order could not be seen
    assert (out / "generated_predictions.txt").read_text(encoding="utf-8").split("\n") == [*outputs, ""]
    references = [[en for en, _ in test_pairs]]
    assert results["predict_chrf"] == pytest.approx(sacrebleu.corpus_chrf(outputs, references).score)
    assert results["predict_bleu"] == pytest.approx(sacrebleu.corpus_bleu(outputs, references).score)


def test_json_lines_file_trains(tmp_path, caplog):
    good = number_pairs(60, seed=3)
    train = write_jsonl(tmp_path / "train.jsonl", good)
    with train.open("a") as f:
        f.write('{"translation": {"en": "half a record"\n')  # not JSON: skipped and reported
    out = tmp_path / "jsonl"
    with caplog.at_level(logging.INFO, logger="hf_gru_seq2seq.data"):
        results = training.run(["--train_file", str(train), "--output_dir", str(out), *TINY_CPU, "--max_steps", "3",
                                "--do_train", "--do_eval", "--final_num_beams", "1"])
    assert any("train.jsonl" in r.getMessage() and "not JSON: 1, line 61" in r.getMessage() for r in caplog.records)
    assert results["train_samples"] + results["eval_samples"] == len(good)
    assert {"eval_bleu", "eval_chrf"} <= set(results) and "predict_bleu" not in results
    model, tokenizer = load_folder(out)
    assert len(translate_lines(model, tokenizer, ["seven", ""])) == 2


# ----------------------------------------------------------------------------------------------------------------
# 3. Clear errors
# ----------------------------------------------------------------------------------------------------------------


def test_file_without_usable_pair_is_refused(tmp_path):
    train = write_tatoeba(tmp_path / "broken.txt", ["no tab here", "\tonly French", b"caf\xe9\tcaf\xe9"])
    with pytest.raises(ValueError, match=r"broken\.txt: no usable sentence pair"):
        training.run(["--train_file", str(train), "--output_dir", str(tmp_path / "out"), *TINY_CPU])
    assert not (tmp_path / "out" / "config.json").exists()


def test_unknown_language_is_named(tmp_path):
    jsonl = write_jsonl(tmp_path / "train.jsonl", number_pairs(10, seed=4))
    with pytest.raises(ValueError, match=r"train\.jsonl: language 'de' not found; languages present: en, fr"):
        training.run(["--train_file", str(jsonl), "--target_lang", "de", "--output_dir", str(tmp_path / "a"),
                      *TINY_CPU])
    tatoeba = write_tatoeba(tmp_path / "fra.txt", tatoeba_lines(number_pairs(10, seed=4)))
    with pytest.raises(ValueError, match=r"English .* one other language.*source_lang='de', target_lang='fr'"):
        training.run(["--train_file", str(tatoeba), "--source_lang", "de", "--output_dir", str(tmp_path / "b"),
                      *TINY_CPU])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found: .*nowhere\.txt"):
        training.run(["--train_file", str(tmp_path / "nowhere.txt"), "--output_dir", str(tmp_path / "out"), *TINY_CPU])


def test_output_dir_holding_another_model(built_in_run, tmp_path):
    out = tmp_path / "taken"
    shutil.copytree(built_in_run[0], out)
    before = (out / "model.safetensors").read_bytes()
    train = write_tatoeba(tmp_path / "fra.txt", tatoeba_lines(number_pairs(40, seed=5)))
    flags = ["--train_file", str(train), "--output_dir", str(out), *TINY_CPU, "--hidden_size", "8", "--max_steps", "2",
             "--do_train"]
    with pytest.raises(FileExistsError, match=r"already holds a trained model.*--overwrite_output_dir"):
        training.run(flags)
    assert (out / "model.safetensors").read_bytes() == before  # left alone

    training.run([*flags, "--overwrite_output_dir"])
    assert read_json(out / "config.json")["hidden_size"] == 8
    assert read_json(out / "trainer_state.json")["global_step"] == 2
    model, _ = load_folder(out)
    assert model.config.hidden_size == 8


# ----------------------------------------------------------------------------------------------------------------
# 4. Resume after a kill
# ----------------------------------------------------------------------------------------------------------------

RESUME_STEPS, SAVE_STEPS = 40, 5


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """`scripts/train.py` killed (SIGKILL) once its first checkpoint is complete. Returns the training flags (all but
    output_dir), a pristine copy of its output folder, and the logged losses of an uninterrupted run with them."""
    root = tmp_path_factory.mktemp("resume")
    train = write_tatoeba(root / "fra.txt", tatoeba_lines(number_pairs(120, seed=6)))
    flags = ["--train_file", str(train), *TINY_CPU, "--max_steps", str(RESUME_STEPS), "--do_train",
             "--max_train_samples", "100"]  # 13 batches an epoch: the run crosses epochs
    out = root / "killed"
    log = root / "killed.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "train.py"), "--output_dir", str(out), *flags,
             "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS)],
            stdout=log_file, stderr=subprocess.STDOUT, env=script_env(),
        )
        deadline = time.monotonic() + 240
        try:
            # The Trainer writes trainer_state.json last: once it is there, the checkpoint is complete.
            while not (out / f"checkpoint-{SAVE_STEPS}" / "trainer_state.json").exists():
                assert process.poll() is None, f"training ended before its first checkpoint:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "no checkpoint in time"
                time.sleep(0.01)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "config.json").exists()  # killed before the end
    killed = root / "killed-pristine"
    shutil.copytree(out, killed)

    reference = root / "uninterrupted"
    training.run(["--output_dir", str(reference), *flags])
    return flags, killed, logged_losses(reference)


def complete_checkpoints(folder: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists())


def check_resumed(out: Path, killed: Path, reference_losses):
    state = read_json(out / "trainer_state.json")
    assert state["global_step"] == RESUME_STEPS
    losses = logged_losses(out)
    # Each step logged exactly once, and the same batches (same losses) as a run that was never stopped.
    assert [step for step, _ in losses] == list(range(1, RESUME_STEPS + 1))
    assert [loss for _, loss in losses] == pytest.approx([loss for _, loss in reference_losses], rel=1e-4)
    # The tokenizer of the first run, not a new one (the resumed run asks for a word-level one), saved unchanged.
    assert read_json(out / "tokenizer.json") == read_json(killed / "tokenizer.json")
    assert read_json(out / "tokenizer.json")["truncation"] is None
    assert read_json(out / "tokenizer.json")["model"]["type"] == "BPE"
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "(byte-level BPE," in card and "word-level" not in card  # the card describes the tokenizer used
    assert (out / "config.json").is_file()


def test_resume_from_checkpoint_flag(killed_run, tmp_path):
    flags, killed, reference_losses = killed_run
    out = tmp_path / "run"
    shutil.copytree(killed, out)
    last = complete_checkpoints(out)[-1]
    assert last < RESUME_STEPS
    training.run(["--output_dir", str(out), *flags, "--tokenizer_type", "word",
                  "--resume_from_checkpoint", str(out / f"checkpoint-{last}")])
    check_resumed(out, killed, reference_losses)


def test_resume_by_rerunning_in_the_same_folder(killed_run, tmp_path, caplog):
    flags, killed, reference_losses = killed_run
    out = tmp_path / "run"
    shutil.copytree(killed, out)
    last = complete_checkpoints(out)[-1]
    # A kill while the next checkpoint was being written leaves it without trainer_state.json: skip it.
    partial = out / f"checkpoint-{last + SAVE_STEPS}"
    partial.mkdir(exist_ok=True)
    shutil.copy(out / f"checkpoint-{last}" / "model.safetensors", partial)
    with caplog.at_level(logging.INFO, logger="hf_gru_seq2seq.train"):
        training.run(["--output_dir", str(out), *flags, "--tokenizer_type", "word"])
    assert any(f"resuming from {out / f'checkpoint-{last}'}" in r.getMessage() for r in caplog.records)
    check_resumed(out, killed, reference_losses)


# ----------------------------------------------------------------------------------------------------------------
# 6. Precision
# ----------------------------------------------------------------------------------------------------------------


def test_precision_auto_is_fp32_on_cpu(tmp_path, monkeypatch):
    _, _, args = training.parse_args(["--output_dir", str(tmp_path), "--use_cpu"])
    assert not args.fp16 and not args.bf16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _, _, args = training.parse_args(["--output_dir", str(tmp_path), "--precision", "auto"])
    assert not args.fp16 and not args.bf16
    _, _, args = training.parse_args(["--output_dir", str(tmp_path)])
    assert not args.fp16 and not args.bf16


def test_precision_choice_on_a_gpu(monkeypatch, tmp_path):
    """`--precision` picks the mixed precision flags, as the parser reads them; an explicit flag wins."""
    from transformers import Seq2SeqTrainingArguments

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(training_args, "_has_accelerator", lambda: True)
    # The parsed arguments are checked, not built: building fp16/bf16 ones needs the GPU this machine may lack.
    monkeypatch.setattr(Seq2SeqTrainingArguments, "__post_init__", lambda self: None)

    def precision(*flags):
        _, _, args = training.parse_args(["--output_dir", str(tmp_path), *flags])
        return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"

    assert precision() == "bf16"
    assert precision("--precision=fp32") == "fp32"
    assert precision("--use_cpu") == "fp32"
    assert precision("--fp16") == "fp16"  # an explicit flag wins
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision("--precision", "auto") == "fp16"
    assert precision("--precision", "bf16") == "bf16"
    with pytest.raises(SystemExit):  # argparse names the choices
        training.parse_args(["--output_dir", str(tmp_path), "--precision", "fp8"])


@pytest.mark.parametrize("flags", [["--bf16"], ["--precision", "bf16"]], ids=["bf16", "precision-bf16"])
def test_bf16_trains_on_cpu(flags, tmp_path, caplog):
    train = write_tatoeba(tmp_path / "fra.txt", tatoeba_lines(number_pairs(40, seed=7)))
    out = tmp_path / "bf16"
    with caplog.at_level(logging.INFO, logger="hf_gru_seq2seq.train"):
        results = training.run(["--train_file", str(train), "--output_dir", str(out), *TINY_CPU, "--max_steps", "3",
                                "--do_train", *flags])  # TINY_CPU has --use_cpu, which bf16 on a CPU needs
    assert any("fp16=False bf16=True" in r.getMessage() for r in caplog.records)
    assert "| precision | bf16 |" in (out / "README.md").read_text(encoding="utf-8")
    losses = [loss for _, loss in logged_losses(out)]
    assert len(losses) == 3 and torch.isfinite(torch.tensor([*losses, results["train_loss"]])).all()
    weights = load_file(out / "model.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())  # fp32 master weights


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_bf16_without_use_cpu_on_a_cpu_only_machine_says_so(tmp_path):
    with pytest.raises(ValueError, match="use_cpu"):
        training.parse_args(["--output_dir", str(tmp_path), "--precision", "bf16"])


def test_a_translation_never_spans_two_lines():
    """One output line per input line, even if a model emits a line break inside a translation."""
    from hf_gru_seq2seq.translate import one_line

    assert one_line(" deux\ncent\u2028trois ") == "deux cent trois"
    assert one_line("  Va !  ") == "Va !"
