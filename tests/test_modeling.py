"""Forward behaviour of the models: shapes, padding, loss, save/load, bad input, the cache argument."""

import unittest

import pytest
import torch
from model_tester import EOS, PAD, GRUSeq2SeqModelTester, to_left_padding
from transformers import AutoModel, AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

import hf_gru_seq2seq.modeling_gru_seq2seq as modeling
from hf_gru_seq2seq import GRUSeq2SeqCache, GRUSeq2SeqForConditionalGeneration, GRUSeq2SeqModel


class GRUSeq2SeqModelTest(unittest.TestCase):
    def setUp(self):
        self.tester = GRUSeq2SeqModelTester()

    def test_model_shapes(self):
        self.tester.create_and_check_model_shapes(self)

    def test_bidirectional_model_shapes(self):
        GRUSeq2SeqModelTester(bidirectional_encoder=True).create_and_check_model_shapes(self)

    def test_lm_shapes_and_loss(self):
        self.tester.create_and_check_lm_shapes_and_loss(self)

    def test_padding_never_changes_logits(self):
        self.tester.create_and_check_padding_invariance(self)

    def test_left_padding_gives_the_same_logits(self):
        self.tester.create_and_check_padding_invariance(self, left_padding=True)

    def test_bidirectional_padding_never_changes_logits(self):
        GRUSeq2SeqModelTester(bidirectional_encoder=True).create_and_check_padding_invariance(self)
        GRUSeq2SeqModelTester(bidirectional_encoder=True).create_and_check_padding_invariance(self, left_padding=True)


def test_padding_ids_are_never_read():
    """Whatever id sits under a zero of the attention mask, nothing changes (and nothing fails)."""
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    reference = model(**inputs).logits
    garbage = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, 10_000)
    torch.testing.assert_close(model(**{**inputs, "input_ids": garbage}).logits, reference, atol=0, rtol=0)


def test_bidirectional_state_is_the_bridge_of_both_directions():
    """Each decoder layer starts from tanh(W [forward final ; backward final] + b), the backward final state
    being the reverse GRU's state after reading the sentence from its last real token to its first."""
    tester = GRUSeq2SeqModelTester(bidirectional_encoder=True, num_hidden_layers=2)
    model, inputs = tester.model(), tester.prepare_inputs()
    encoder = model.get_encoder()
    out = encoder(inputs["input_ids"], inputs["attention_mask"])
    layers, hidden = 2, tester.hidden_size
    for row in range(tester.batch_size):
        tokens = inputs["input_ids"][row][inputs["attention_mask"][row].bool()]
        x = encoder.embedding(tokens)[None]  # (1, n, E)
        forward_finals, backward_finals = [], []
        for layer in range(layers):  # run each direction by hand with the GRU's own weights
            fwd = torch.nn.GRU(x.shape[-1], hidden, batch_first=True)
            bwd = torch.nn.GRU(x.shape[-1], hidden, batch_first=True)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(fwd, f"{name}_l0").data = getattr(encoder.rnn, f"{name}_l{layer}").data
                getattr(bwd, f"{name}_l0").data = getattr(encoder.rnn, f"{name}_l{layer}_reverse").data
            out_f, h_f = fwd(x)
            out_b, h_b = bwd(x.flip(1))
            forward_finals.append(h_f[0, 0])
            backward_finals.append(h_b[0, 0])
            x = torch.cat([out_f, out_b.flip(1)], -1)
        expected = torch.stack([
            torch.tanh(encoder.bridge(torch.cat([f, b]))) for f, b in zip(forward_finals, backward_finals)
        ])
        torch.testing.assert_close(out.final_state[row], expected, atol=1e-5, rtol=0)
        n = len(tokens)
        torch.testing.assert_close(out.last_hidden_state[row, :n], x[0], atol=1e-5, rtol=0)


def test_loss_ignores_minus_100_and_is_float32_token_mean():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    labels = inputs["labels"].clone()
    labels[0, 2:] = -100
    labels[3, 1] = -100
    out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels)
    keep = labels.ne(-100)
    expected = -torch.log_softmax(out.logits.double(), -1)[keep].gather(1, labels[keep][:, None]).mean()
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss.double(), expected, atol=1e-6, rtol=0)
    # the loss with num_items_in_batch divides the summed loss by that count
    total = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels,
                  num_items_in_batch=torch.tensor(100)).loss
    torch.testing.assert_close(total.double(), expected * keep.sum() / 100, atol=1e-6, rtol=0)


def test_loss_is_float32_under_bfloat16_weights():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model().to(torch.bfloat16), tester.prepare_inputs()
    out = model(**inputs)
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32


def test_decoder_inputs_are_labels_shifted_right():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    labels = inputs["labels"].clone()
    labels[1, -2:] = -100
    shifted = model.prepare_decoder_input_ids_from_labels(labels)
    assert shifted[:, 0].eq(model.config.decoder_start_token_id).all()
    assert torch.equal(shifted[0, 1:], labels[0, :-1])
    assert shifted[1, -1] == PAD  # a -100 moved into the inputs becomes padding
    explicit = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                     decoder_input_ids=shifted, labels=labels)
    implicit = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels)
    torch.testing.assert_close(explicit.logits, implicit.logits, atol=0, rtol=0)


def test_data_collator_for_seq2seq_builds_decoder_inputs():
    tester = GRUSeq2SeqModelTester()
    model = tester.model()

    class PadOnly:  # the collator only needs the tokenizer's padding
        pad_token_id, padding_side = PAD, "right"

        def pad(self, features, **kwargs):
            width = max(len(f["input_ids"]) for f in features)
            ids = [f["input_ids"] + [PAD] * (width - len(f["input_ids"])) for f in features]
            mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
            return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}

    collator = DataCollatorForSeq2Seq(PadOnly(), model=model)
    batch = collator([{"input_ids": [5, 6, 7], "labels": [8, 9, EOS]}, {"input_ids": [5], "labels": [4, EOS]}])
    assert torch.equal(batch["labels"][1], torch.tensor([4, EOS, -100]))
    assert torch.equal(batch["decoder_input_ids"], model.prepare_decoder_input_ids_from_labels(batch["labels"]))
    assert model(**batch).loss.isfinite()


def test_save_and_load_uses_safetensors_and_keeps_logits(tmp_path):
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files and not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    for loader in (GRUSeq2SeqForConditionalGeneration, AutoModelForSeq2SeqLM):
        loaded = loader.from_pretrained(tmp_path).eval()
        assert type(loaded) is GRUSeq2SeqForConditionalGeneration
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(base) is GRUSeq2SeqModel
    hidden = base(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                  decoder_input_ids=model.prepare_decoder_input_ids_from_labels(inputs["labels"])).last_hidden_state
    torch.testing.assert_close(model.lm_head(hidden), model(**inputs).logits, atol=0, rtol=0)


def test_generation_config_is_fit_for_translation(tmp_path):
    tester = GRUSeq2SeqModelTester()
    tester.model().save_pretrained(tmp_path)
    loaded = GRUSeq2SeqForConditionalGeneration.from_pretrained(tmp_path)
    gen = loaded.generation_config
    assert (tmp_path / "generation_config.json").exists()
    assert gen.max_length >= 65 and gen.max_new_tokens is None  # not the library's max_length=20
    assert (gen.decoder_start_token_id, gen.eos_token_id, gen.pad_token_id) == (1, EOS, PAD)
    assert gen.num_beams > 1


def test_tied_embeddings_share_one_tensor_and_survive_save(tmp_path):
    tester = GRUSeq2SeqModelTester(embedding_size=16, hidden_size=16)
    model = tester.model(tie_word_embeddings=True)
    assert model.lm_head.weight.data_ptr() == model.model.decoder.embedding.weight.data_ptr()
    model.save_pretrained(tmp_path)
    loaded = GRUSeq2SeqForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.decoder.embedding.weight.data_ptr()
    torch.testing.assert_close(loaded.lm_head.weight, model.lm_head.weight, atol=0, rtol=0)


def test_untied_by_default():
    model = GRUSeq2SeqModelTester(embedding_size=16, hidden_size=16).model()
    assert model.lm_head.weight.data_ptr() != model.model.decoder.embedding.weight.data_ptr()


def test_gru_weights_are_initialised():
    """The library's default initialisation skips nn.GRU; ours covers it (Xavier weights, zero biases)."""
    model = GRUSeq2SeqModelTester().model()
    rnn = model.model.decoder.rnn
    assert all(torch.count_nonzero(p) == 0 for n, p in rnn.named_parameters() if n.startswith("bias"))
    weight = rnn.weight_ih_l0
    bound = (6 / (weight.shape[0] + weight.shape[1])) ** 0.5
    assert weight.abs().max() <= bound and weight.std() > bound / 4


# -- bad input ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["input_ids", "decoder_input_ids", "labels"])
@pytest.mark.parametrize("bad", [10_000, -5])
def test_ids_outside_the_vocabulary_name_the_id(field, bad):
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(inputs["labels"])
    inputs[field] = inputs[field].clone()
    inputs[field][1, 0] = bad
    with pytest.raises(ValueError, match=rf"{field}\[1, 0\] = {bad} is outside"):
        model(**inputs)


def test_decoder_id_of_the_source_vocabulary_is_refused():
    """The target vocabulary (19) is smaller than the source one (23): 20 is a valid source id only."""
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    inputs["labels"][0, 0] = 20
    with pytest.raises(ValueError, match=r"labels\[0, 0\] = 20"):
        model(**inputs)


def test_bad_ids_in_generate_are_named():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    ids = inputs["input_ids"].clone()
    ids[2, 0] = 999
    with pytest.raises(ValueError, match=r"input_ids\[2, 0\] = 999"):
        model.generate(input_ids=ids, attention_mask=inputs["attention_mask"], max_new_tokens=3)


def test_empty_inputs_give_clear_errors():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    with pytest.raises(ValueError, match="empty"):
        model(input_ids=torch.zeros(2, 0, dtype=torch.long), labels=inputs["labels"][:2])
    mask = inputs["attention_mask"].clone()
    mask[3] = 0
    with pytest.raises(ValueError, match="row 3 has no tokens"):
        model(input_ids=inputs["input_ids"], attention_mask=mask, labels=inputs["labels"])
    with pytest.raises(ValueError, match="decoder_input_ids must be"):
        model(input_ids=inputs["input_ids"], decoder_input_ids=torch.zeros(4, 0, dtype=torch.long))


def test_attention_mask_of_the_wrong_shape_is_refused():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"][:, :-1], labels=inputs["labels"])


def test_unknown_arguments_are_refused_not_swallowed():
    model = GRUSeq2SeqModelTester().model()
    with pytest.raises(TypeError):
        model(input_ids=torch.tensor([[5]]), labels=torch.tensor([[5]]), not_an_argument=1)


# -- the cache argument, under both of its names ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_cache_is_read_under_either_name(name):
    """Feeding the target one token at a time through the cache gives the teacher-forced logits."""
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    dec = model.prepare_decoder_input_ids_from_labels(inputs["labels"])
    full = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], decoder_input_ids=dec)
    enc = model.get_encoder()(inputs["input_ids"], inputs["attention_mask"])
    state, steps = None, []
    for t in range(dec.shape[1]):
        out = model(encoder_outputs=enc, decoder_input_ids=dec[:, t:t + 1], use_cache=True, **{name: state})
        state = out[modeling.CACHE_FIELD]
        assert isinstance(state, GRUSeq2SeqCache) and state.get_seq_length() == t + 1
        steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, 1), full.logits, atol=1e-6, rtol=0)


def test_both_cache_names_at_once_is_an_error():
    model = GRUSeq2SeqModelTester().model()
    enc = model.get_encoder()(torch.tensor([[5, 6]]))
    first = model(encoder_outputs=enc, decoder_input_ids=torch.tensor([[1]]), use_cache=True)
    second = model(encoder_outputs=enc, decoder_input_ids=torch.tensor([[1]]), use_cache=True)
    with pytest.raises(ValueError, match="not both"):
        model(encoder_outputs=enc, decoder_input_ids=torch.tensor([[4]]),
              cache=first[modeling.CACHE_FIELD], past_key_values=second[modeling.CACHE_FIELD])


def test_no_cache_is_returned_without_use_cache():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    out = model(**inputs, use_cache=False)
    assert modeling.CACHE_FIELD not in out
    assert model(**inputs, use_cache=True)[modeling.CACHE_FIELD].get_seq_length() == tester.tgt_len


def test_return_dict_false_gives_a_tuple():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    loss, logits = model(**inputs, use_cache=False, return_dict=False)[:2]
    torch.testing.assert_close(loss, model(**inputs).loss)
    assert logits.shape == (tester.batch_size, tester.tgt_len, tester.decoder_vocab_size)


def test_reverse_source_reads_each_sentence_backwards():
    """With reverse_source, a padded batch encodes like each sentence flipped and read forwards."""
    tester = GRUSeq2SeqModelTester()
    reversed_model = tester.model(reverse_source=True)
    forward_model = tester.model()  # same seed: same weights
    inputs = tester.prepare_inputs()
    for ids, mask in ((inputs["input_ids"], inputs["attention_mask"]),
                      to_left_padding(inputs["input_ids"], inputs["attention_mask"])):
        out = reversed_model.get_encoder()(ids, mask)
        for row in range(tester.batch_size):
            tokens = ids[row][mask[row].bool()]
            flipped = forward_model.get_encoder()(tokens.flip(0)[None])
            torch.testing.assert_close(out.final_state[row], flipped.final_state[0], atol=1e-6, rtol=0)
            # outputs go back to the positions of the tokens they read
            torch.testing.assert_close(out.last_hidden_state[row][mask[row].bool()],
                                       flipped.last_hidden_state[0].flip(0), atol=1e-6, rtol=0)
    tester.create_and_check_padding_invariance(unittest.TestCase(), left_padding=True)


@pytest.mark.parametrize("policy, expected", [("match", torch.bfloat16), ("float32", torch.float32)])
def test_gru_precision_policy_under_autocast(policy, expected):
    """Under bf16 autocast the GRUs run in the dtype the policy names, and gradients reach the float32 weights."""
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(gru_autocast=policy).train(), tester.prepare_inputs()
    decoder_input_ids = model.prepare_decoder_input_ids_from_labels(inputs["labels"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gru_outputs = model.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  decoder_input_ids=decoder_input_ids)  # both GRUs' outputs, as they ran
        loss = model(**inputs).loss
    loss.backward()
    assert gru_outputs.encoder_last_hidden_state.dtype == gru_outputs.last_hidden_state.dtype == expected
    assert loss.dtype == torch.float32 and model.model.decoder.rnn.weight_hh_l0.grad.dtype == torch.float32
    assert model.model.encoder.rnn.weight_ih_l0.grad.abs().sum() > 0


def test_a_bad_id_fed_with_a_cache_is_still_named():
    """Only ids that generate() produced itself skip the vocabulary check; ids a caller feeds step by step do not."""
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    enc = model.get_encoder()(inputs["input_ids"], inputs["attention_mask"])
    out = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=3,
                         num_beams=1, return_dict_in_generate=True)
    cache = out[modeling.CACHE_FIELD]
    bad = torch.full((tester.batch_size, 1), 999)
    with pytest.raises(ValueError, match=r"decoder_input_ids\[0, 0\] = 999"):
        model(encoder_outputs=enc, decoder_input_ids=bad, cache=cache)


def test_embeddings_start_as_in_d2l():
    """PyTorch's (and so d2l's) N(0, 1) embeddings: the 0.02 of Transformer models starves the GRU of input and
    slows learning many times over."""
    model = GRUSeq2SeqModelTester(vocab_size=2000, embedding_size=64).model()
    std = model.model.encoder.embedding.weight.std().item()
    assert abs(std - 1.0) < 0.05
    assert abs(GRUSeq2SeqModelTester().model(init_std=0.5).model.decoder.embedding.weight.std().item() - 0.5) < 0.1


# ----------------------------------------------------------------------------------------------------------------
# Resizing the vocabulary (after adding tokens to the tokenizer)
# ----------------------------------------------------------------------------------------------------------------


def test_resizing_a_shared_vocabulary_resizes_both_sides_and_keeps_old_logits(tmp_path):
    tester = GRUSeq2SeqModelTester(vocab_size=19, decoder_vocab_size=19)
    model, inputs = tester.model(), tester.prepare_inputs()
    before = model(**inputs).logits
    model.resize_token_embeddings(25)
    sizes = (model.model.encoder.embedding.num_embeddings, model.model.decoder.embedding.num_embeddings,
             model.lm_head.out_features, model.config.vocab_size, model.config.decoder_vocab_size)
    assert sizes == (25, 25, 25, 25, 25)
    after = model(**inputs).logits
    torch.testing.assert_close(after[..., :19], before, atol=0, rtol=0)
    model.save_pretrained(tmp_path)
    loaded = GRUSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(**inputs).logits, after, atol=0, rtol=0)
    # A new token is read by the encoder, produced, and fed back to the decoder.
    with torch.no_grad():
        model.lm_head.bias[24] += 100.0
    for beams in (1, 2):
        generated = model.generate(input_ids=torch.tensor([[24, 5]]), max_new_tokens=3, num_beams=beams)
        assert generated[0, 1:].tolist() == [24, 24, 24]


def test_resizing_with_separate_vocabularies_leaves_the_target_side():
    tester = GRUSeq2SeqModelTester(vocab_size=23, decoder_vocab_size=19)
    model = tester.model()
    model.resize_token_embeddings(30)
    assert (model.config.vocab_size, model.config.decoder_vocab_size) == (30, 19)
    assert (model.model.decoder.embedding.num_embeddings, model.lm_head.out_features) == (19, 19)
    model.resize_decoder_token_embeddings(21)
    assert (model.config.vocab_size, model.config.decoder_vocab_size) == (30, 21)
    assert (model.model.decoder.embedding.num_embeddings, model.lm_head.out_features) == (21, 21)
    assert model(**tester.prepare_inputs()).logits.shape[-1] == 21


def test_resizing_keeps_tied_weights_tied_and_pads_to_a_multiple():
    tester = GRUSeq2SeqModelTester(vocab_size=19, decoder_vocab_size=19, embedding_size=16, hidden_size=16)
    model = tester.model(tie_word_embeddings=True)
    model.resize_token_embeddings(21, pad_to_multiple_of=8)
    assert model.config.decoder_vocab_size == model.config.vocab_size == 24
    assert model.lm_head.weight.data_ptr() == model.model.decoder.embedding.weight.data_ptr()


def test_resizing_the_base_model():
    model = GRUSeq2SeqModelTester(vocab_size=19, decoder_vocab_size=19).model(GRUSeq2SeqModel)
    model.resize_token_embeddings(22)
    assert (model.encoder.embedding.num_embeddings, model.decoder.embedding.num_embeddings) == (22, 22)
    assert model.config.decoder_vocab_size == 22


def test_resizing_below_a_special_token_is_refused_and_changes_nothing():
    tester = GRUSeq2SeqModelTester(vocab_size=19, decoder_vocab_size=19)
    model = tester.model(eos_token_id=10)
    weights = {name: p.clone() for name, p in model.state_dict().items()}
    with pytest.raises(ValueError, match="eos_token_id=10"):
        model.resize_token_embeddings(8)
    with pytest.raises(ValueError, match="eos_token_id=10"):
        model.resize_decoder_token_embeddings(8)
    assert (model.config.vocab_size, model.config.decoder_vocab_size) == (19, 19)
    for name, p in model.state_dict().items():
        torch.testing.assert_close(p, weights[name], atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------------------------
# Loading, hidden states and embeddings as other Transformers models give them
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", [GRUSeq2SeqForConditionalGeneration, AutoModelForSeq2SeqLM, AutoModel])
def test_output_loading_info_returns_the_model_and_what_was_loaded(tmp_path, loader):
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    model.save_pretrained(tmp_path)
    loaded, info = loader.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    head_only = {"lm_head.weight", "lm_head.bias"} if loader is AutoModel else set()  # the base model has no head
    assert set(info["unexpected_keys"]) == head_only
    if loader is not AutoModel:
        torch.testing.assert_close(loaded.eval()(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)


def _gru_by_hand(rnn, layer, x):
    """One forward-direction layer of `rnn` run by a fresh nn.GRU with copied weights: (1, n, D) -> (1, n, H)."""
    single = torch.nn.GRU(x.shape[-1], rnn.hidden_size, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(single, f"{name}_l0").data = getattr(rnn, f"{name}_l{layer}").data
    return single(x)[0]


@pytest.mark.parametrize("left_padding", [False, True])
def test_hidden_states_are_the_embedding_and_each_layer_output(left_padding):
    """`output_hidden_states=True` gives, for encoder and decoder, the embedding output and every GRU layer's
    outputs, each equal to the layer run by hand on the real tokens; zeros at padding; None when not asked."""
    tester = GRUSeq2SeqModelTester(num_hidden_layers=3)
    model, inputs = tester.model(), tester.prepare_inputs()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if left_padding:
        ids, mask = to_left_padding(ids, mask)
    out = model(input_ids=ids, attention_mask=mask, labels=inputs["labels"], output_hidden_states=True)
    encoder, decoder = model.get_encoder(), model.get_decoder()
    assert len(out.encoder_hidden_states) == len(out.decoder_hidden_states) == 4
    torch.testing.assert_close(out.encoder_hidden_states[-1], out.encoder_last_hidden_state, atol=0, rtol=0)
    for row in range(tester.batch_size):
        real = mask[row].bool()
        x = encoder.embedding(ids[row][real])[None]
        torch.testing.assert_close(out.encoder_hidden_states[0][row][real], x[0], atol=0, rtol=0)
        for layer in range(3):
            x = _gru_by_hand(encoder.rnn, layer, x)
            torch.testing.assert_close(out.encoder_hidden_states[layer + 1][row][real], x[0], atol=1e-6, rtol=0)
        for states in out.encoder_hidden_states:
            assert states[row][~real].abs().max() == 0 if (~real).any() else True
    # The decoder's per-layer run equals its fused run, and its first state is the embedding output.
    plain = model(input_ids=ids, attention_mask=mask, labels=inputs["labels"])
    assert plain.encoder_hidden_states is None and plain.decoder_hidden_states is None
    torch.testing.assert_close(out.logits, plain.logits, atol=1e-6, rtol=0)
    decoder_ids = model.prepare_decoder_input_ids_from_labels(inputs["labels"])
    torch.testing.assert_close(out.decoder_hidden_states[0], decoder.embedding(decoder_ids), atol=0, rtol=0)
    torch.testing.assert_close(model.lm_head(out.decoder_hidden_states[-1]), out.logits, atol=0, rtol=0)


def test_bidirectional_hidden_states_hold_both_directions():
    tester = GRUSeq2SeqModelTester(bidirectional_encoder=True)
    model, inputs = tester.model(reverse_source=True), tester.prepare_inputs()
    out = model.get_encoder()(inputs["input_ids"], inputs["attention_mask"], output_hidden_states=True)
    assert [tuple(h.shape[1:]) for h in out.hidden_states] == [(7, 8), (7, 32), (7, 32)]
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state, atol=0, rtol=0)


def test_hidden_states_can_be_asked_through_the_config():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(output_hidden_states=True), tester.prepare_inputs()
    out = model(**inputs)
    assert len(out.encoder_hidden_states) == len(out.decoder_hidden_states) == tester.num_hidden_layers + 1


@pytest.mark.parametrize("cls", [GRUSeq2SeqForConditionalGeneration, GRUSeq2SeqModel])
def test_inputs_embeds_give_the_same_outputs_as_ids(cls):
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(cls), tester.prepare_inputs()
    decoder_ids = modeling.shift_tokens_right(inputs["labels"], PAD, model.config.decoder_start_token_id)
    from_ids = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                     decoder_input_ids=decoder_ids)[0]
    embeds = dict(inputs_embeds=model.get_input_embeddings()(inputs["input_ids"]),
                  decoder_inputs_embeds=model.get_decoder().embedding(decoder_ids))
    from_embeds = model(attention_mask=inputs["attention_mask"], **embeds)[0]
    torch.testing.assert_close(from_embeds, from_ids, atol=0, rtol=0)


def test_inputs_embeds_reach_generate_and_the_loss():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(logit_scale=4.0), tester.prepare_inputs()
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    by_ids = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=5)
    by_embeds = model.generate(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], max_new_tokens=5)
    assert torch.equal(by_ids, by_embeds)
    loss = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], labels=inputs["labels"]).loss
    torch.testing.assert_close(loss, model(**inputs).loss, atol=0, rtol=0)


def test_ids_and_embeddings_together_are_refused():
    tester = GRUSeq2SeqModelTester()
    model, inputs = tester.model(), tester.prepare_inputs()
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(**inputs, inputs_embeds=model.get_input_embeddings()(inputs["input_ids"]))
    with pytest.raises(ValueError, match="not both"):
        model(input_ids=inputs["input_ids"], decoder_input_ids=inputs["labels"],
              decoder_inputs_embeds=model.get_decoder().embedding(inputs["labels"]))


def test_resizing_with_a_fractional_multiple_raises_transformers_own_error():
    model = GRUSeq2SeqModelTester(vocab_size=19, decoder_vocab_size=19).model()
    with pytest.raises(ValueError, match="multiple of `1.3`, which is not and integer"):
        model.resize_token_embeddings(20, pad_to_multiple_of=1.3)
    assert model.config.vocab_size == model.get_input_embeddings().num_embeddings == 19
