"""A traceable core: torch.export and torch.compile(fullgraph=True) take the training forward and a one-token decoding
step without a graph break, the recorded programs do not depend on the data they were traced with, and generate()
runs Transformers' compiled decoding. Small models on the CPU; `aot_eager` proves the graphs whole without paying
for code generation (the inductor test compiles once)."""

import pytest
import torch
from model_tester import GRUSeq2SeqModelTester, counting_compiled_calls, to_left_padding
from transformers.generation.configuration_utils import CompileConfig

import hf_gru_seq2seq.modeling_gru_seq2seq as modeling
from hf_gru_seq2seq.onnx_export import EncoderGraph


@pytest.fixture
def bidirectional():
    tester = GRUSeq2SeqModelTester(bidirectional_encoder=True)
    return tester.model(reverse_source=True).eval(), tester.prepare_inputs()


def other_padding(inputs):
    """The same shapes, padded otherwise: a program that baked the first padding in would now be wrong."""
    ids, mask = to_left_padding(inputs["input_ids"], inputs["attention_mask"])
    return {**inputs, "input_ids": ids.flip(0), "attention_mask": mask.flip(0)}


def test_torch_export_of_the_training_forward_does_not_depend_on_the_data(bidirectional):
    model, inputs = bidirectional
    program = torch.export.export(model, (), kwargs={**inputs, "use_cache": False})
    for batch in (inputs, other_padding(inputs)):
        got = program.module()(**batch, use_cache=False)
        expected = model(**batch, use_cache=False)
        torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(got.loss, expected.loss, atol=1e-5, rtol=0)


@pytest.mark.parametrize("use_cache", [None, False])  # None: the config's default, which returns the cache
def test_exported_model_takes_any_batch_source_and_target_length(bidirectional, use_cache):
    """The whole teacher-forced forward with dynamic batch, source and target lengths: the program equals eager on
    batches of other shapes, left- and right-padded, one with its source as long as its target (an exporter that
    related the two lengths would refuse it), and returns the cache (registered with torch's pytree) when asked."""
    model, inputs = bidirectional
    tester = GRUSeq2SeqModelTester()
    batch, source, target = (torch.export.Dim(name) for name in ("batch", "source_length", "target_length"))
    example = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
               "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(inputs["labels"])}
    program = torch.export.export(model, (), kwargs={**example, "use_cache": use_cache}, dynamic_shapes={
        "input_ids": {0: batch, 1: source}, "attention_mask": {0: batch, 1: source},
        "decoder_input_ids": {0: batch, 1: target}, "use_cache": None})
    for rows, source_length, target_length, left in ((2, 4, 4, False), (5, 9, 3, True), (1, 6, 6, True),
                                                     (3, 3, 8, False)):
        ids = tester.ids(rows, source_length, tester.vocab_size)
        mask = torch.ones_like(ids)
        mask[0, source_length // 2:] = 0  # the first row is padded, the others are not
        if left:
            ids, mask = to_left_padding(ids, mask)
        other = {"input_ids": ids, "attention_mask": mask, "use_cache": use_cache,
                 "decoder_input_ids": tester.ids(rows, target_length, tester.decoder_vocab_size)}
        got, expected = program.module()(**other), model(**other)
        torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=0)
        got_cache, expected_cache = getattr(got, modeling.CACHE_FIELD), getattr(expected, modeling.CACHE_FIELD)
        if use_cache is False:
            assert got_cache is None and expected_cache is None
        else:
            assert isinstance(got_cache, modeling.GRUSeq2SeqCache) and got_cache.seen_tokens == target_length
            torch.testing.assert_close(got_cache.state, expected_cache.state, atol=1e-5, rtol=0)


def test_exported_encoder_takes_any_batch_and_source_length(bidirectional):
    model, inputs = bidirectional
    batch, length = torch.export.Dim("batch"), torch.export.Dim("source_length")
    program = torch.export.export(EncoderGraph(model), (inputs["input_ids"], inputs["attention_mask"]),
                                  dynamic_shapes={"input_ids": {0: batch, 1: length},
                                                  "attention_mask": {0: batch, 1: length}})
    shorter = other_padding(inputs)
    for ids, mask in ((inputs["input_ids"][:2, :3], inputs["attention_mask"][:2, :3]),
                      (shorter["input_ids"], shorter["attention_mask"]), (torch.tensor([[5, 6, 2]] * 9), None)):
        mask = torch.ones_like(ids) if mask is None else mask
        expected = model.get_encoder()(ids, mask).final_state
        torch.testing.assert_close(program.module()(ids, mask), expected, atol=1e-5, rtol=0)


def test_compiled_training_forward_is_one_graph(bidirectional):
    """fullgraph=True fails on any graph break: the checks, the padding and the GRUs all trace."""
    model, inputs = bidirectional
    model.train()  # dropout 0 in the tester: the same numbers as eager
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    loss = compiled(**inputs).loss
    loss.backward()
    compiled_grad = model.lm_head.weight.grad.clone()
    model.zero_grad()
    expected = model(**inputs).loss
    expected.backward()
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(compiled_grad, model.lm_head.weight.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(compiled(**other_padding(inputs)).loss, model(**other_padding(inputs)).loss,
                               atol=1e-6, rtol=0)


def test_compiled_decoding_step_with_the_cache_is_one_graph(bidirectional):
    model, inputs = bidirectional
    encoder_outputs = model.get_encoder()(inputs["input_ids"], inputs["attention_mask"])
    start = torch.full((4, 1), model.config.decoder_start_token_id)
    step = torch.compile(model, fullgraph=True)  # inductor: the code a compiled generate() runs
    with torch.no_grad():
        eager_cache, compiled_cache = modeling.GRUSeq2SeqCache(), modeling.GRUSeq2SeqCache()
        tokens = start
        for _ in range(3):
            expected = model(encoder_outputs=encoder_outputs, decoder_input_ids=tokens, cache=eager_cache,
                             use_cache=True)
            got = step(encoder_outputs=encoder_outputs, decoder_input_ids=tokens, cache=compiled_cache,
                       use_cache=True, validate_ids=False)
            torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=0)
            tokens = expected.logits[:, -1:].argmax(-1)
    torch.testing.assert_close(compiled_cache.state, eager_cache.state, atol=1e-5, rtol=0)
    assert compiled_cache.get_seq_length() == 3


def test_generate_runs_transformers_compiled_decoding(bidirectional, monkeypatch):
    """With a compile config (and, on a CPU, its opt-in for all devices), generate() decodes every step after the
    first with the compiled forward, and gives the eager tokens."""
    model, inputs = bidirectional
    calls = counting_compiled_calls(monkeypatch)
    config = CompileConfig(fullgraph=True, backend="aot_eager", mode=None)
    config._compile_all_devices = True  # Transformers compiles only on accelerators unless told so
    kwargs = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], num_beams=1,
                  max_new_tokens=6, min_new_tokens=6)
    compiled = model.generate(**kwargs, compile_config=config)
    assert len(calls) == 5  # the first step (the prompt) runs eagerly
    assert torch.equal(compiled, model.generate(**kwargs))
