import json

import pytest

from hf_gru_seq2seq import GRUSeq2SeqConfig


def test_defaults_follow_the_vocabulary_and_bos():
    config = GRUSeq2SeqConfig(vocab_size=50, bos_token_id=4)
    assert config.decoder_vocab_size == 50
    assert config.decoder_start_token_id == 4
    assert config.is_encoder_decoder and config.use_cache
    assert config.model_type == "gru_seq2seq"


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("vocab_size", {"vocab_size": 0}),
        ("decoder_vocab_size", {"decoder_vocab_size": -3}),
        ("embedding_size", {"embedding_size": 0}),
        ("hidden_size", {"hidden_size": 0}),
        ("num_hidden_layers", {"num_hidden_layers": 0}),
        ("dropout", {"dropout": 1.0}),
        ("dropout", {"dropout": -0.1}),
        ("pad_token_id", {"vocab_size": 10, "pad_token_id": 10}),
        ("eos_token_id", {"vocab_size": 10, "eos_token_id": -1}),
        ("bos_token_id", {"vocab_size": 10, "bos_token_id": 12}),
        ("decoder_start_token_id", {"vocab_size": 10, "decoder_vocab_size": 5, "decoder_start_token_id": 7}),
        ("eos_token_id", {"vocab_size": 10, "decoder_vocab_size": 2}),  # eos 2 is outside a target vocabulary of 2
        ("tie_word_embeddings", {"tie_word_embeddings": True, "embedding_size": 8, "hidden_size": 16}),
    ],
)
def test_invalid_values_raise_value_error_naming_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        GRUSeq2SeqConfig(**kwargs)


def test_round_trip_through_json(tmp_path):
    config = GRUSeq2SeqConfig(vocab_size=30, decoder_vocab_size=40, hidden_size=12, bidirectional_encoder=True)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "gru_seq2seq" and saved["decoder_vocab_size"] == 40
    loaded = GRUSeq2SeqConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


def test_invalid_saved_config_is_refused_on_load(tmp_path):
    GRUSeq2SeqConfig(vocab_size=30).save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(path.read_text().replace('"hidden_size": 256', '"hidden_size": 0'))
    with pytest.raises(ValueError, match="hidden_size"):
        GRUSeq2SeqConfig.from_pretrained(tmp_path)
