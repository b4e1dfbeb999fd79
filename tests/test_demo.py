"""The README's main job as a new user runs it, with no flag at all: the demo gets what people type first right.

This trains the real default recipe (about a minute on a 2-core CPU), once for the module."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_gru_seq2seq.data import number_to_words
from hf_gru_seq2seq.number_words_accuracy import accuracy_report
from hf_gru_seq2seq.translate import load, translate_lines

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return cwd / "outputs" / "number-words"


def test_the_first_numbers_people_type(default_model):
    model, tokenizer = load(str(default_model), "cpu")
    typed = {"one": 1, "zero": 0, "one hundred": 100, "five hundred": 500, "ONE": 1, "Seven": 7, "TWENTY-ONE": 21,
             "one thousand": 1000, "ninety-nine": 99, "Three Hundred Forty-Two": 342}
    expected = {text: number_to_words(n, "fr") for text, n in typed.items()}
    assert expected["five hundred"] == "cinq cents" and expected["one"] == "un"
    assert dict(zip(typed, translate_lines(model, tokenizer, list(typed)))) == expected


def test_every_number_up_to_a_thousand(default_model):
    """The built-in data holds them all; the trained model translates (at least) 99% of them exactly."""
    report = accuracy_report(str(default_model), device="cpu")
    assert report["0-1000"]["exact_match"] >= 99.0, report["0-1000"]["wrong"]
    assert report["test"]["exact_match"] >= 90.0, report["test"]["wrong"]
    upper = accuracy_report(str(default_model), uppercase=True, device="cpu")
    assert upper["0-1000"]["exact_match"] == report["0-1000"]["exact_match"]
