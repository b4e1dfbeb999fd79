"""The translation pipeline as `pipeline()` users meet it: blank sentences, the task names of Transformers 4, length
limits, and the remote-code copy saved beside a model."""

import json

import pytest
from model_tester import TINY_SENTENCES, GRUSeq2SeqModelTester, tiny_tokenizer
from transformers import pipeline

from hf_gru_seq2seq import GRUSeq2SeqTranslationPipeline

SENTENCES = TINY_SENTENCES


@pytest.fixture(scope="module")
def translator():
    model = GRUSeq2SeqModelTester().model(logit_scale=4.0)
    return GRUSeq2SeqTranslationPipeline(model=model, tokenizer=tiny_tokenizer(), device="cpu")


def texts(results):
    return [r["translation_text"] for r in results]


def test_blank_sentences_give_empty_translations_without_the_model(translator, monkeypatch):
    alone = {s: translator(s, num_beams=2, max_new_tokens=6)[0]["translation_text"] for s in SENTENCES}
    calls = []
    generate = translator.model.generate
    monkeypatch.setattr(translator.model, "generate", lambda **kw: calls.append(kw["input_ids"]) or generate(**kw))
    assert translator("", num_beams=2) == [{"translation_text": ""}]
    assert translator("   \t ", num_beams=2) == [{"translation_text": ""}]
    assert texts(translator(["", " "], batch_size=2)) == ["", ""]
    assert calls == []  # nothing reached the model
    mixed = ["go .", "", "hi !", "   ", "help wait stop .", "run"]
    for batch_size in (1, 3, 6):
        got = texts(translator(mixed, batch_size=batch_size, num_beams=2, max_new_tokens=6))
        assert got == [alone[s] if s.strip() else "" for s in mixed]
    assert sum(ids.shape[0] for ids in calls) == 4 * 3  # only the non-blank sentences reached the model
    assert all(len(per_sentence) == 2 and per_sentence[0] == {"translation_text": ""} for per_sentence in
               translator(["", "go ."], num_beams=2, num_return_sequences=2, max_new_tokens=4)[:1])


def test_blank_sentences_in_a_stream(translator):
    """A generator is translated lazily, as Transformers' pipelines do; blank items still give ""."""
    stream = translator((s for s in ["go .", "", "run"]), batch_size=2, num_beams=1, max_new_tokens=4)
    assert [r[0]["translation_text"] == "" for r in stream] == [False, True, False]


def test_max_length_limits_the_translation(translator):
    endless = GRUSeq2SeqTranslationPipeline(model=GRUSeq2SeqModelTester().model(eos_bias=-1e4),
                                            tokenizer=translator.tokenizer, device="cpu")
    ids = endless(SENTENCES, max_length=5, num_beams=1, return_tensors=True)
    assert [len(r["translation_token_ids"]) for r in ids] == [5] * len(SENTENCES)
    ids = endless(SENTENCES[0], max_new_tokens=3, return_tensors=True)
    assert len(ids[0]["translation_token_ids"]) == 4


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    model = GRUSeq2SeqModelTester().model(logit_scale=4.0)
    model.add_translation_task("en", "fr")
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def test_transformers_4_task_names_are_declared(saved):
    pipelines = json.loads((saved / "config.json").read_text())["custom_pipelines"]
    assert set(pipelines) == {"translation", "text2text-generation", "translation_en_to_fr"}
    assert len({json.dumps(entry, sort_keys=True) for entry in pipelines.values()}) == 1


@pytest.mark.parametrize("task, key", [("translation", "translation_text"),
                                       ("translation_en_to_fr", "translation_text"),
                                       ("text2text-generation", "generated_text")])
def test_pipeline_tasks_of_transformers_4_work(saved, translator, task, key):
    """Each name loads the saved remote-code pipeline, which translates as the package's own does (same weights)."""
    named = pipeline(task, model=str(saved), trust_remote_code=True, device="cpu")
    expected = texts(translator(SENTENCES, num_beams=2, max_new_tokens=6))
    assert [r[key] for r in named(SENTENCES, num_beams=2, max_new_tokens=6)] == expected
    assert named(["", SENTENCES[0]], max_new_tokens=6, num_beams=2)[0] == {key: ""}


def test_words_outside_the_vocabulary_are_named_in_a_warning(translator, caplog):
    """The tiny tokenizer's vocabulary is closed: words it reads as <unk> are named once each, in order, by their
    text in the input (case and accents as typed), and the sentence is still translated."""
    from hf_gru_seq2seq.pipeline_gru_seq2seq import unknown_words

    assert unknown_words(translator.tokenizer, "go Zürich . run 42 Zürich ?") == ["Zürich", "42"]
    assert unknown_words(translator.tokenizer, "go . run") == []
    with caplog.at_level("WARNING"):
        known = translator("go .", num_beams=1, max_new_tokens=4)
        assert caplog.records == []
        unknown = translator("go Zürich 42 .", num_beams=1, max_new_tokens=4)
    assert [r.getMessage() for r in caplog.records] == [
        "unknown to the tokenizer, translated as <unk>: \"Zürich\", \"42\" (in 'go Zürich 42 .')"]
    assert known[0]["translation_text"] and unknown[0]["translation_text"]


def test_byte_level_bpe_has_no_unknown_words():
    from datasets import Dataset

    from hf_gru_seq2seq.pipeline_gru_seq2seq import unknown_words
    from hf_gru_seq2seq.vocabulary import train_tokenizer

    pairs = Dataset.from_dict({"translation": [{"en": "go .", "fr": "va !"}] * 4})
    tokenizer = train_tokenizer(pairs, "en", "fr", vocab_size=300)
    assert tokenizer.unk_token_id is not None and unknown_words(tokenizer, "Zürich 42 ☃") == []

