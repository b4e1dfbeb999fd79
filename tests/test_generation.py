"""generate(): every decoding mode gives the same output with and without the recurrent cache, beam search matches
a plain beam search written here, padding never changes a sentence's output, and each step feeds one token."""

import math

import pytest
import torch
from model_tester import BOS, EOS, PAD, GRUSeq2SeqModelTester, tiny_tokenizer, to_left_padding

import hf_gru_seq2seq.modeling_gru_seq2seq as modeling


@pytest.fixture(scope="module")
def setup():
    tester = GRUSeq2SeqModelTester(batch_size=5, src_len=6)
    model = tester.model(logit_scale=4.0)  # peaked distributions; sentences end at varied lengths
    inputs = tester.prepare_inputs()
    return model, inputs["input_ids"], inputs["attention_mask"]


def generate(model, ids, mask, **kwargs):
    kwargs.setdefault("max_new_tokens", 8)
    kwargs.setdefault("num_beams", 1)
    return model.generate(input_ids=ids, attention_mask=mask, **kwargs)


GREEDY_AND_BEAM_OPTIONS = [
    {},
    {"num_beams": 3},
    {"num_beams": 3, "length_penalty": 0.5, "early_stopping": True},
    {"num_beams": 4, "num_return_sequences": 2, "early_stopping": False, "length_penalty": 2.0},
    {"num_beams": 3, "early_stopping": "never"},
    {"min_new_tokens": 5},
    {"bad_words_ids": [[5], [7, 8]]},
    {"repetition_penalty": 1.7},
    {"no_repeat_ngram_size": 2},
    {"num_beams": 2, "no_repeat_ngram_size": 2, "repetition_penalty": 1.3, "min_new_tokens": 3},
]


@pytest.mark.parametrize("options", GREEDY_AND_BEAM_OPTIONS, ids=str)
def test_same_output_with_and_without_cache(setup, options):
    model, ids, mask = setup
    cached = generate(model, ids, mask, use_cache=True, **options)
    uncached = generate(model, ids, mask, use_cache=False, **options)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("options", [{"top_k": 5}, {"top_p": 0.8}, {"temperature": 0.7},
                                     {"temperature": 1.3, "top_k": 8,
                                     "top_p": 0.9}, {"num_beams": 2, "top_k": 6}], ids=str)
def test_sampling_is_the_same_with_and_without_cache_under_one_seed(setup, options):
    model, ids, mask = setup
    outputs = []
    for use_cache in (True, False):
        torch.manual_seed(123)
        outputs.append(generate(model, ids, mask, do_sample=True, use_cache=use_cache, **options))
    assert torch.equal(*outputs)


def test_scores_are_the_same_with_and_without_cache(setup):
    model, ids, mask = setup
    runs = [generate(model, ids, mask, use_cache=c, output_scores=True, output_logits=True,
                     return_dict_in_generate=True) for c in (True, False)]
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    for a, b in zip(runs[0].scores, runs[1].scores):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert isinstance(runs[0][modeling.CACHE_FIELD], modeling.GRUSeq2SeqCache)


def test_generation_options_take_effect(setup):
    model, ids, mask = setup
    free = generate(model, ids, mask)
    assert (free[:, 1:] == EOS).any(), "the eos bias should end some sentences early"
    longer = generate(model, ids, mask, min_new_tokens=6)
    for row in longer:
        eos_at = (row == EOS).nonzero()
        assert len(eos_at) == 0 or eos_at[0, 0] >= 7  # start token + at least 6 new tokens before eos
    banned = generate(model, ids, mask, bad_words_ids=[[int(free[0, 1])]])
    assert not (banned[:, 1:] == free[0, 1]).any()
    no_repeat = generate(model, ids, mask, no_repeat_ngram_size=2, max_new_tokens=12)
    for row in no_repeat.tolist():
        pairs = [tuple(row[i:i + 2]) for i in range(len(row) - 1) if PAD not in row[i:i + 2]]
        assert len(pairs) == len(set(pairs))
    assert generate(model, ids, mask, max_new_tokens=3).shape[1] <= 4
    scored = generate(model, ids, mask, num_beams=3, num_return_sequences=3, return_dict_in_generate=True,
                      output_scores=True)
    assert scored.sequences.shape[0] == 3 * ids.shape[0] and scored.sequences_scores.shape == (3 * ids.shape[0],)


@pytest.mark.parametrize("options", [{}, {"num_beams": 3}, {"num_beams": 3, "length_penalty": 0.0,
                                     "early_stopping": True}, {"repetition_penalty": 1.5}], ids=str)
def test_padding_never_changes_generate_output(setup, options):
    model, ids, mask = setup
    for batch_ids, batch_mask in ((ids, mask), to_left_padding(ids, mask)):
        batched = generate(model, batch_ids, batch_mask, **options)
        for row in range(ids.shape[0]):
            alone = generate(model, ids[row][mask[row].bool()][None], None, **options)
            width = alone.shape[1]
            assert torch.equal(batched[row, :width], alone[0])
            assert ((batched[row, width:] == PAD) | (batched[row, width:] == EOS)).all()  # filler after the end


def test_each_cached_step_feeds_one_token(setup, monkeypatch):
    """The cost of a token does not grow with what was decoded: with the cache the decoder reads exactly one
    token per step; without it, the whole prefix again (what a non-recurrent fallback would cost)."""
    model, ids, mask = setup
    fed = []
    original = modeling.GRUSeq2SeqDecoder.forward

    def counting(self, input_ids, *args, **kwargs):
        fed.append(input_ids.shape[1])
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(modeling.GRUSeq2SeqDecoder, "forward", counting)
    generate(model, ids, mask, max_new_tokens=10, min_new_tokens=10, use_cache=True)
    assert fed == [1] * 10
    fed.clear()
    generate(model, ids, mask, max_new_tokens=10, min_new_tokens=10, use_cache=False)
    assert fed == list(range(1, 11))


# -- beam search against a plain one written here -----------------------------------------------------------------

@torch.no_grad()
def plain_beam_search(model, src, num_beams, max_new_tokens, length_penalty):
    """Textbook beam search with early stopping for one sentence: keep the `num_beams` best running prefixes;
    a prefix ending in EOS is finished with score logp / new_tokens ** length_penalty; stop once `num_beams`
    are finished; at the length limit, running prefixes finish too. Runs the model on whole prefixes (no cache)."""
    enc = model.get_encoder()(src)
    running = [([BOS], 0.0)]
    finished = []
    for step in range(max_new_tokens):
        prefixes = torch.tensor([p for p, _ in running])
        logits = model(encoder_outputs=modeling.GRUSeq2SeqEncoderOutput(
            final_state=enc.final_state.expand(len(running), -1, -1)), decoder_input_ids=prefixes,
            use_cache=False).logits[:, -1]
        logp = torch.log_softmax(logits.double(), -1)
        candidates = sorted(((score + float(logp[i, tok]), prefix + [tok])
                             for i, (prefix, score) in enumerate(running) for tok in range(logp.shape[1])),
                            key=lambda c: -c[0])[:2 * num_beams]
        running = []
        for rank, (score, prefix) in enumerate(candidates):
            if prefix[-1] == EOS:
                if rank < num_beams:
                    finished.append((score / (len(prefix) - 1) ** length_penalty, prefix))
            elif len(running) < num_beams:
                running.append((prefix, score))
        if len(finished) >= num_beams:
            break
    else:
        finished += [(score / max_new_tokens ** length_penalty, prefix) for prefix, score in running]
    return max(finished, key=lambda f: f[0])


@pytest.mark.parametrize("num_beams, length_penalty", [(2, 1.0), (3, 0.6), (4, 2.0)])
def test_beam_search_matches_a_plain_beam_search(setup, num_beams, length_penalty):
    model, ids, mask = setup
    out = generate(model, ids, mask, num_beams=num_beams, length_penalty=length_penalty, early_stopping=True,
                   max_new_tokens=7, return_dict_in_generate=True, output_scores=True)
    for row in range(ids.shape[0]):
        score, tokens = plain_beam_search(model, ids[row][mask[row].bool()][None], num_beams, 7, length_penalty)
        got = [t for t in out.sequences[row].tolist()]
        got = got[:len(tokens)] if len(got) >= len(tokens) else got
        assert got == tokens, f"row {row}: {got} != {tokens}"
        assert math.isclose(float(out.sequences_scores[row]), score, abs_tol=1e-4)


def test_beam_search_reorders_the_state():
    """With beams that swap places, a cache that was not reordered would decode from another beam's state: the
    cached result would then differ from the uncached one. Many random models make a swap certain to happen."""
    tester = GRUSeq2SeqModelTester(batch_size=3, src_len=5)
    inputs = tester.prepare_inputs()
    for seed in range(5):
        tester.seed = seed
        model = tester.model(logit_scale=4.0)
        a = generate(model, inputs["input_ids"], inputs["attention_mask"], num_beams=4, max_new_tokens=10)
        b = generate(model, inputs["input_ids"], inputs["attention_mask"], num_beams=4, max_new_tokens=10,
                     use_cache=False)
        assert torch.equal(a, b)


def test_a_cache_without_reordering_would_be_caught(setup, monkeypatch):
    """Guard for the test above: break reordering and the cached output must change."""
    model, ids, mask = setup
    reference = generate(model, ids, mask, num_beams=4, max_new_tokens=10, use_cache=False)
    monkeypatch.setattr(modeling.GRUSeq2SeqCache, "reorder_cache", lambda self, beam_idx: None)
    broken = generate(model, ids, mask, num_beams=4, max_new_tokens=10, use_cache=True)
    assert not torch.equal(broken, reference)


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("asked", [
    {"assistant_model": "self"},
    {"prompt_lookup_num_tokens": 2},
    {"assistant_early_exit": 1},
    {"assistant_model": "self", "num_beams": 3},  # Transformers alone would ignore the draft under beam search
])
def test_assisted_decoding_is_refused_by_the_model_with_its_reason(setup, rows, asked):
    """Every supported Transformers version, any batch size: the model's own refusal, naming what asked for it (5.25
    alone would answer "only supported for batch_size = 1", or fail on the cache for one row)."""
    model, ids, mask = setup
    kwargs = {k: model if v == "self" else v for k, v in asked.items()}
    flag = next(k for k in asked if k != "num_beams")
    with pytest.raises(ValueError, match=rf"does not support assisted decoding \(asked for by {flag}\).*recurrent"):
        generate(model, ids[:rows], mask[:rows], **kwargs)


# -- length limits, as for any Transformers model ------------------------------------------------------------------

@pytest.fixture(scope="module")
def endless():
    """A model that never chooses </s>, so only the length limit stops it."""
    tester = GRUSeq2SeqModelTester(batch_size=3, src_len=5)
    model = tester.model(eos_bias=-1e4)
    inputs = tester.prepare_inputs()
    return model, inputs["input_ids"], inputs["attention_mask"]


@pytest.mark.parametrize("num_beams", [1, 3])
def test_max_length_and_max_new_tokens_are_honoured_without_warnings(endless, num_beams, caplog):
    model, ids, mask = endless
    with caplog.at_level("WARNING"):
        assert model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams).shape[1] == 129
        assert model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, max_length=8).shape[1] == 8
        assert model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams,
                              max_new_tokens=10).shape[1] == 11
        short = model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, max_new_tokens=4,
                               return_dict_in_generate=True)
        assert short.sequences.shape[1] == 5
    assert not [r for r in caplog.records if "seem to have been set" in r.getMessage()]


def test_seq2seq_trainer_generation_max_length_is_honoured(endless, tmp_path):
    """`Seq2SeqTrainer(generation_max_length=...)`, which run_translation.py sets from --val_max_target_length /
    --generation_max_length, limits the generated length."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    model, ids, mask = endless
    rows = [{"input_ids": ids[i][mask[i].bool()].tolist(), "labels": [5, 6, EOS]} for i in range(ids.shape[0])]
    args = Seq2SeqTrainingArguments(tmp_path, predict_with_generate=True, generation_max_length=6,
                                    generation_num_beams=2, report_to="none", use_cpu=True,
                                    per_device_eval_batch_size=2)
    collator = DataCollatorForSeq2Seq(tiny_tokenizer(), model=model)  # pads with <pad> = PAD, on the right
    trainer = Seq2SeqTrainer(model=model, args=args, data_collator=collator)
    predictions = torch.as_tensor(trainer.predict(Dataset.from_list(rows)).predictions)
    # The trainer pads its predictions to the model's own max_length; the generated part is what the limit cut.
    assert (predictions != PAD).sum(1).tolist() == [6] * ids.shape[0]
    assert (predictions[:, 1:6] != PAD).all()


# -- sources with nothing to translate -----------------------------------------------------------------------------

def test_generate_refuses_a_source_holding_no_real_token(setup):
    """A tokenizer turns "" into a lone </s>: generate() says there is nothing to translate, naming the row."""
    model, ids, mask = setup
    blank = ids.clone()
    blank[2] = PAD
    blank[2, 0] = EOS
    blank_mask = mask.clone()
    blank_mask[2] = 0
    blank_mask[2, 0] = 1
    with pytest.raises(ValueError, match="row 2 holds no real token"):
        generate(model, blank, blank_mask)
    with pytest.raises(ValueError, match="row 0 holds no real token"):
        generate(model, torch.tensor([[BOS, EOS]]), None)


def test_beam_search_leaves_the_config_alone(setup):
    """Beam search over a target vocabulary smaller than the source one never changes what other calls (other
    threads) read from the model's config, on any supported Transformers version."""
    model, ids, mask = setup
    seen = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(model.config.vocab_size))
    try:
        generate(model, ids, mask, num_beams=3)
    finally:
        handle.remove()
    assert model.config.vocab_size != model.config.decoder_vocab_size
    assert seen and set(seen) == {model.config.vocab_size}
