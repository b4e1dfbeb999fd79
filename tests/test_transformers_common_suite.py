"""Transformers' own common model tests, run on this model as on any model of the library: a `ModelTester` in
Transformers' style and test classes mixing `ModelTesterMixin` and `ConfigTester`, taken from the installed
transformers version's source distribution (see `transformers_common.py`).

Two variants: one vocabulary shared by both sides, and separate vocabularies (a larger target one) with a
bidirectional encoder reading the source backwards.

A model of the library is listed by class name in Transformers' auto mappings, and the common tests read those
lists to know what a class is (a base model, a sequence-to-sequence LM head). The test classes list this model's two
classes there while they run, as the library would.
"""

import unittest

import pytest
import torch
import transformers_common
from transformers.models.auto import modeling_auto

from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration, GRUSeq2SeqModel

try:
    test_modeling_common, test_configuration_common = transformers_common.load()
except transformers_common.Unavailable as err:
    pytest.skip(f"Transformers' common tests are unavailable: {err}", allow_module_level=True)

ModelTesterMixin = test_modeling_common.ModelTesterMixin
ConfigTester = test_configuration_common.ConfigTester
GenerationTesterMixin = test_modeling_common.GenerationTesterMixin
ids_tensor = test_modeling_common.ids_tensor


class GRUSeq2SeqModelTester:
    """Tiny configs and inputs for the common tests, which read the settings below as attributes."""

    DEFAULTS = dict(batch_size=13, seq_length=7, decoder_seq_length=7, is_training=True, vocab_size=99,
                    decoder_vocab_size=None, hidden_size=32, num_hidden_layers=2, dropout=0.1,
                    bidirectional_encoder=False, reverse_source=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    CONFIG_FIELDS = ("vocab_size", "decoder_vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
                     "dropout", "bidirectional_encoder", "reverse_source", "pad_token_id", "bos_token_id",
                     "eos_token_id")

    def __init__(self, parent, **settings):
        self.parent = parent
        for name, value in {**self.DEFAULTS, **settings}.items():
            setattr(self, name, value)
        self.decoder_vocab_size = self.decoder_vocab_size or self.vocab_size
        self.encoder_seq_length = self.seq_length
        self.embedding_size = self.hidden_size  # the common tests read the embedding output's width as hidden_size

    def get_config(self):
        return GRUSeq2SeqConfig(**{name: getattr(self, name) for name in self.CONFIG_FIELDS})

    def prepare_config_and_inputs(self):
        # Real tokens avoid the special ids; every row ends in </s>, then right padding of 0 to 3 tokens.
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 3) + 3
        lengths = torch.arange(self.batch_size) % 4
        attention_mask = (torch.arange(self.seq_length)[None] < self.seq_length - lengths[:, None]).long()
        input_ids = input_ids.masked_fill(attention_mask == 0, self.pad_token_id)
        input_ids[torch.arange(self.batch_size), attention_mask.sum(1) - 1] = self.eos_token_id
        # Decoder ids valid in both vocabularies: the common tests embed them with the source embedding too.
        shared_ids = min(self.vocab_size, self.decoder_vocab_size)
        decoder_input_ids = ids_tensor([self.batch_size, self.decoder_seq_length], shared_ids - 3) + 3
        decoder_input_ids[:, 0] = self.bos_token_id
        return self.get_config(), input_ids.to(test_modeling_common.torch_device), attention_mask.to(
            test_modeling_common.torch_device), decoder_input_ids.to(test_modeling_common.torch_device)

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, decoder_input_ids = self.prepare_config_and_inputs()
        inputs_dict = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "decoder_input_ids": decoder_input_ids,
        }
        return config, inputs_dict


class GRUSeq2SeqCommonTests(ModelTesterMixin, GenerationTesterMixin):
    all_model_classes = (GRUSeq2SeqModel, GRUSeq2SeqForConditionalGeneration)
    is_encoder_decoder = True
    has_attentions = False  # a GRU encoder-decoder has no attention
    tester_kwargs = {}

    AUTO_NAMES = {
        "MODEL_MAPPING_NAMES": "GRUSeq2SeqModel",
        "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES": "GRUSeq2SeqForConditionalGeneration",
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for mapping, name in cls.AUTO_NAMES.items():
            getattr(modeling_auto, mapping)[GRUSeq2SeqConfig.model_type] = name

    @classmethod
    def tearDownClass(cls):
        for mapping in cls.AUTO_NAMES:
            getattr(modeling_auto, mapping).pop(GRUSeq2SeqConfig.model_type, None)
        super().tearDownClass()

    def setUp(self):
        self.model_tester = GRUSeq2SeqModelTester(self, **self.tester_kwargs)
        self.config_tester = ConfigTester(self, config_class=GRUSeq2SeqConfig, hidden_size=32, vocab_size=99,
                                          common_properties=["hidden_size", "num_hidden_layers", "vocab_size"])

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_inputs_embeds_matches_input_ids(self):
        """The common test embeds the decoder ids with the encoder's table; here the decoder has its own (as in
        d2l), so each side is embedded with its own table. Otherwise the same check."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config).to(test_modeling_common.torch_device).eval()
            embeds = {
                "inputs_embeds": model.get_input_embeddings()(inputs["input_ids"]),
                "decoder_inputs_embeds": model.get_decoder().embedding(inputs["decoder_input_ids"]),
            }
            with torch.no_grad():
                from_ids = model(**inputs)[0]
                from_embeds = model(attention_mask=inputs["attention_mask"], **embeds)[0]
            torch.testing.assert_close(from_embeds, from_ids)


class GRUSeq2SeqSharedVocabularyTest(GRUSeq2SeqCommonTests, unittest.TestCase):
    """One vocabulary for source and target: the tester's defaults."""


class GRUSeq2SeqSeparateVocabulariesTest(GRUSeq2SeqCommonTests, unittest.TestCase):
    tester_kwargs = {"decoder_vocab_size": 107, "bidirectional_encoder": True, "reverse_source": True}

    @unittest.skip("assumes one vocabulary: here resize_token_embeddings resizes the source side only, by design")
    def test_resize_embeddings_untied(self):
        pass


def test_a_missing_source_distribution_says_why(tmp_path, monkeypatch):
    """Without the archive the suite skips with a reason naming the version (the check above turns this into a
    module-level skip)."""
    monkeypatch.setenv("HF_GRU_SEQ2SEQ_TEST_CACHE", str(tmp_path))
    with pytest.raises(transformers_common.Unavailable, match="transformers 0.0.0"):
        transformers_common.fetch("0.0.0")
    assert not any(tmp_path.rglob("*.py"))  # nothing half-extracted is left to be trusted later
