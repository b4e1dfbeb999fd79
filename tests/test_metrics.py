"""BLEU/chrF: the packaged evaluate metric loads offline and agrees with sacrebleu; compute_metrics decodes right."""

import socket

import numpy as np
import pytest
import sacrebleu
from datasets import Dataset
from transformers import EvalPrediction

from hf_gru_seq2seq.metrics import build_compute_metrics, load_translation_metric
from hf_gru_seq2seq.vocabulary import train_tokenizer

PREDICTIONS = ["The cat sat on the mat.", "il fait froid", "Where is the station?", "I am very happy today."]
REFERENCES = ["The cat is sitting on the mat.", "Il fait froid.", "where is the station?", "Today I am very happy."]


@pytest.fixture(scope="module")
def metric():
    # Any attempt to open a network connection while loading fails the test.
    real_connect = socket.socket.connect

    def no_network(*args, **kwargs):
        raise AssertionError("the metric tried to reach the network")

    socket.socket.connect = no_network
    try:
        return load_translation_metric()
    finally:
        socket.socket.connect = real_connect


@pytest.mark.parametrize("lowercase", [False, True])
def test_scores_equal_sacrebleu(metric, lowercase):
    scores = metric.compute(predictions=PREDICTIONS, references=[[r] for r in REFERENCES], lowercase=lowercase)
    assert scores["bleu"] == sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES], lowercase=lowercase).score
    case = str.lower if lowercase else str
    chrf = sacrebleu.corpus_chrf([case(p) for p in PREDICTIONS], [[case(r) for r in REFERENCES]])
    assert scores["chrf"] == pytest.approx(chrf.score, abs=1e-9)
    assert 0 < scores["bleu"] < 100


def test_multiple_references_and_plain_reference_strings(metric):
    second = ["A cat sat on the mat.", "Il fait froid !", "Where's the station?", "I'm very happy today."]
    scores = metric.compute(predictions=PREDICTIONS, references=[list(r) for r in zip(REFERENCES, second)])
    assert scores["bleu"] == sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES, second]).score
    assert scores["chrf"] == sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES, second]).score
    plain = metric.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert plain["bleu"] == sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score


def test_perfect_predictions_score_100(metric):
    scores = metric.compute(predictions=REFERENCES, references=REFERENCES)
    assert scores["bleu"] == pytest.approx(100) and scores["chrf"] == pytest.approx(100)


def test_uneven_reference_counts_are_refused(metric):
    with pytest.raises(ValueError, match="same number of references"):
        metric.compute(predictions=PREDICTIONS[:2], references=[[REFERENCES[0]], REFERENCES[:2]])


@pytest.fixture(scope="module")
def tokenizer():
    pairs = [{"en": p, "fr": r} for p, r in zip(PREDICTIONS, REFERENCES)] * 3
    return train_tokenizer(Dataset.from_dict({"translation": pairs}), "en", "fr", vocab_size=300)


def pad(rows, value):
    width = max(map(len, rows))
    return np.array([row + [value] * (width - len(row)) for row in rows])


def test_compute_metrics_decodes_and_matches_sacrebleu(tokenizer, metric):
    start = [tokenizer.bos_token_id]  # generate() output starts with the decoder start token
    generated = [start + tokenizer(p)["input_ids"] for p in PREDICTIONS]
    preds = pad(generated, tokenizer.pad_token_id)
    preds[0, -1:] = -100  # the trainer pads across batches with -100
    labels = pad([tokenizer(text_target=r)["input_ids"] for r in REFERENCES], -100)
    compute = build_compute_metrics(tokenizer, metric)
    result = compute(EvalPrediction(predictions=(preds,), label_ids=labels))
    assert set(result) == {"bleu", "chrf", "gen_len"}
    assert result["bleu"] == sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score
    assert result["chrf"] == sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score
    lengths = [len(g) for g in generated]
    lengths[0] = min(lengths[0], preds.shape[1] - 1)  # its last token was overwritten by -100 above
    assert result["gen_len"] == pytest.approx(np.mean(lengths))
    assert compute((preds, labels)) == result  # a plain pair works too


def test_gen_len_ignores_the_eos_padding_of_beam_search(tokenizer, metric):
    start = [tokenizer.bos_token_id]
    generated = [start + tokenizer(p)["input_ids"] for p in PREDICTIONS]
    labels = pad([tokenizer(text_target=r)["input_ids"] for r in REFERENCES], -100)
    compute = build_compute_metrics(tokenizer, metric)
    by_pad = compute((pad(generated, tokenizer.pad_token_id), labels))
    by_eos = compute((pad(generated, tokenizer.eos_token_id), labels))  # what beam search returns with pad id 0
    assert by_eos == by_pad
    assert by_eos["gen_len"] == pytest.approx(np.mean([len(g) for g in generated]))


def test_compute_metrics_lowercase(tokenizer, metric):
    preds = pad([tokenizer(p)["input_ids"] for p in PREDICTIONS], tokenizer.pad_token_id)
    labels = pad([tokenizer(r)["input_ids"] for r in REFERENCES], -100)
    result = build_compute_metrics(tokenizer, metric, lowercase=True)((preds, labels))
    assert result["bleu"] == sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES], lowercase=True).score
    assert result["bleu"] > build_compute_metrics(tokenizer, metric)((preds, labels))["bleu"]


def test_exact_match_counts_predictions_equal_to_a_reference(metric):
    references = [["deux cent", "deux-cents"], ["Dix", "dix."], ["sept", "7"], ["zéro", "0"]]
    predictions = [" deux-cents ", "dix", "sept mille", "zéro"]
    assert metric.compute(predictions=predictions, references=references)["exact_match"] == 50.0
    assert metric.compute(predictions=predictions, references=references, lowercase=True)["exact_match"] == 75.0
