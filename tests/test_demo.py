"""The README's main job as a new user runs it, with no flag at all: the demo gets what people type first right.

The model is the `number_words_model` of conftest.py: the real default recipe, trained once per session."""

from hf_gru_seq2seq.data import number_to_words
from hf_gru_seq2seq.number_words_accuracy import accuracy_report
from hf_gru_seq2seq.translate import load, translate_lines


def test_the_first_numbers_people_type(number_words_model):
    model, tokenizer = load(str(number_words_model), "cpu")
    typed = {"one": 1, "zero": 0, "one hundred": 100, "five hundred": 500, "ONE": 1, "Seven": 7, "TWENTY-ONE": 21,
             "one thousand": 1000, "ninety-nine": 99, "Three Hundred Forty-Two": 342}
    expected = {text: number_to_words(n, "fr") for text, n in typed.items()}
    assert expected["five hundred"] == "cinq cents" and expected["one"] == "un"
    assert dict(zip(typed, translate_lines(model, tokenizer, list(typed)))) == expected


def test_every_number_up_to_a_thousand(number_words_model):
    """The built-in data holds them all; the trained model translates (at least) 99% of them exactly."""
    report = accuracy_report(str(number_words_model), device="cpu")
    assert report["0-1000"]["exact_match"] >= 99.0, report["0-1000"]["wrong"]
    assert report["test"]["exact_match"] >= 90.0, report["test"]["wrong"]
    upper = accuracy_report(str(number_words_model), uppercase=True, device="cpu")
    assert upper["0-1000"]["exact_match"] == report["0-1000"]["exact_match"]
