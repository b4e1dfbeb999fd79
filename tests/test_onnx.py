"""ONNX export and ONNX Runtime translation: checked graphs with dynamic sizes, the same step logits and the same
`generate()` output as PyTorch (greedy, beam, sampling, logits processors), int8 graphs, the translate CLI, and a
folder that translates on a machine without this package."""

import json
import subprocess
import sys

import onnx
import pytest
import torch
from model_tester import TINY_SENTENCES, GRUSeq2SeqModelTester, tiny_tokenizer, to_left_padding
from script_runs import REPO, script_env
from transformers import AutoTokenizer
from without_package import run_without_package

from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
from hf_gru_seq2seq.data import number_words_dataset
from hf_gru_seq2seq.modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration
from hf_gru_seq2seq.onnx_export import OPSET, export_onnx
from hf_gru_seq2seq.translate import translate_lines

SENTENCES = [*TINY_SENTENCES, "wait wait go help hi run stop ."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A saved model with what is hardest to export (a bidirectional encoder reading sources backwards, separate
    vocabularies), its tokenizer, and its export (with int8 graphs) in its onnx/ subfolder, as a Hub repo holds it."""
    folder = tmp_path_factory.mktemp("onnx") / "gru-tiny"
    model = GRUSeq2SeqModelTester(bidirectional_encoder=True).model(reverse_source=True, logit_scale=4.0,
                                                                     eos_bias=2.0)
    model.add_translation_task("en", "fr")
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    export_onnx(str(folder), folder / "onnx", quantize=True)
    torch_model = GRUSeq2SeqForConditionalGeneration.from_pretrained(folder).eval()
    return folder, torch_model, GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(folder / "onnx")


def test_export_writes_checked_graphs_with_dynamic_sizes(tiny):
    folder, _, _ = tiny
    onnx_dir = folder / "onnx"
    expected = {"encoder_model.onnx": {"input_ids": ["batch", "source_length"],
                                       "attention_mask": ["batch", "source_length"]},
                "decoder_model.onnx": {"input_ids": ["batch", 1], "state": [2, "batch", 16], "context": ["batch", 16]}}
    for name, inputs in expected.items():
        for graph_file in (name, name.replace(".onnx", "_quantized.onnx")):
            graph = onnx.load(onnx_dir / graph_file)
            onnx.checker.check_model(graph, full_check=True)
            shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
                      for i in graph.graph.input}
            assert shapes == inputs, graph_file
            assert {o.domain: o.version for o in graph.opset_import}[""] == OPSET
    config = json.loads((onnx_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSeq2SeqLM"] == \
        "modeling_gru_seq2seq_onnx.GRUSeq2SeqOnnxForConditionalGeneration"
    assert {"translation", "text2text-generation", "translation_en_to_fr"} <= set(config["custom_pipelines"])
    for name in ("modeling_gru_seq2seq_onnx.py", "modeling_gru_seq2seq.py", "configuration_gru_seq2seq.py",
                 "pipeline_gru_seq2seq.py", "tokenizer.json", "generation_config.json"):
        assert (onnx_dir / name).is_file(), name


def test_int8_graphs_run_their_matrix_products_in_int8(tiny):
    folder, _, _ = tiny
    for name in ("encoder_model_quantized.onnx", "decoder_model_quantized.onnx"):
        graph = onnx.load(folder / "onnx" / name)
        ops = {node.op_type for node in graph.graph.node}
        for node in graph.graph.node:  # the encoder's recurrence lives in its Scan bodies
            for attribute in node.attribute:
                if attribute.g is not None:
                    ops |= {inner.op_type for inner in attribute.g.node}
        assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops, (name, sorted(ops))


def batch(tokenizer, sentences=SENTENCES, left=False):
    inputs = tokenizer(sentences, return_tensors="pt", padding=True)
    if left:
        inputs["input_ids"], inputs["attention_mask"] = to_left_padding(inputs["input_ids"], inputs["attention_mask"])
    return inputs


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
def test_step_logits_and_encoder_state_match_pytorch(tiny, left):
    _, model, onnx_model = tiny
    inputs = batch(tiny_tokenizer(), left=left)
    decoder_input_ids = torch.tensor([[1, 5, 9, 7, 2, 4]] * len(SENTENCES))
    with torch.no_grad():
        expected = model(**inputs, decoder_input_ids=decoder_input_ids)
        state = model.get_encoder()(**inputs).final_state
    torch.testing.assert_close(onnx_model.get_encoder()(**inputs).final_state, state, atol=1e-5, rtol=0)
    got = onnx_model(**inputs, decoder_input_ids=decoder_input_ids)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("options", [
    {"num_beams": 1}, {"num_beams": 4}, {"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.5},
    {"num_beams": 1, "repetition_penalty": 1.5, "no_repeat_ngram_size": 2, "min_new_tokens": 3},
    {"do_sample": True, "top_k": 5, "temperature": 0.8}, {"num_beams": 1, "max_length": 4},
], ids=str)
def test_generate_gives_pytorch_tokens(tiny, options):
    _, model, onnx_model = tiny
    inputs = batch(tiny_tokenizer(), left=True)
    outputs = []
    for m in (model, onnx_model):
        torch.manual_seed(0)
        outputs.append(m.generate(**inputs, max_new_tokens=8, **options) if "max_length" not in options
                       else m.generate(**inputs, **options))
    assert torch.equal(*outputs)


def test_bad_ids_are_named_before_onnx_runtime_sees_them(tiny):
    """ONNX's Gather fails on ids past the vocabulary and wraps negative ones: the ONNX Runtime class checks first."""
    _, _, onnx_model = tiny
    for bad in (99, -1):
        with pytest.raises(ValueError, match=rf"input_ids\[0, 1\] = {bad} is outside the vocabulary"):
            onnx_model.generate(input_ids=torch.tensor([[5, bad, 2]]), max_new_tokens=2)


def test_export_folder_translates_without_the_package(tiny):
    """Transformers' Auto class and pipeline load the ONNX Runtime class from the export's own code."""
    folder, model, _ = tiny
    with torch.no_grad():
        expected = model.generate(**batch(tiny_tokenizer()), max_new_tokens=6, num_beams=2)
    texts = [t.strip() for t in tiny_tokenizer().batch_decode(expected, skip_special_tokens=True)]
    code = f"""
import json, sys, torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline
folder = {str(folder / "onnx")!r}
model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
generated = model.generate(**tokenizer({SENTENCES!r}, return_tensors="pt", padding=True), max_new_tokens=6,
                           num_beams=2)
translator = pipeline("translation_en_to_fr", model=folder, trust_remote_code=True)
texts = [r["translation_text"] for r in translator({SENTENCES!r}, max_new_tokens=6, num_beams=2)]
assert not [name for name in sys.modules if name.startswith("hf_gru_seq2seq")]
print(json.dumps({{"class": type(model).__name__, "ids": generated.tolist(), "texts": texts}}))
"""
    report = json.loads(run_without_package(code).stdout.strip().splitlines()[-1])
    assert report["class"] == "GRUSeq2SeqOnnxForConditionalGeneration"
    assert report["ids"] == expected.tolist() and report["texts"] == texts


# -- the trained number-words model -------------------------------------------------------------------------------


def test_trained_model_parity_on_the_test_numbers(number_words_model, number_words_export):
    """Greedy and beam-4 tokens identical to PyTorch's for at least 99.5% of the 1,000 test numbers; step logits
    within 1e-4 along every reference."""
    model = GRUSeq2SeqForConditionalGeneration.from_pretrained(number_words_model).eval()
    onnx_model = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(number_words_export)
    tokenizer = AutoTokenizer.from_pretrained(number_words_export)
    pairs = number_words_dataset()["test"]["translation"]
    for start in range(0, len(pairs), 250):
        part = pairs[start:start + 250]
        inputs = tokenizer([p["en"] for p in part], return_tensors="pt", padding=True)
        labels = tokenizer(text_target=[p["fr"] for p in part], return_tensors="pt", padding=True)
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels["input_ids"])
        with torch.no_grad():
            expected = model(**inputs, decoder_input_ids=decoder_input_ids).logits
        torch.testing.assert_close(onnx_model(**inputs, decoder_input_ids=decoder_input_ids).logits, expected,
                                   atol=1e-4, rtol=0)
    sources = [p["en"] for p in pairs]
    for beams in (1, 4):
        same = [a == b for a, b in zip(translate_lines(model, tokenizer, sources, num_beams=beams),
                                       translate_lines(onnx_model, tokenizer, sources, num_beams=beams))]
        assert sum(same) >= 0.995 * len(sources), (beams, sum(same))


def test_translate_cli_with_onnx_and_int8(number_words_model, number_words_export):
    lines = ["seven", "", "three hundred forty-two thousand one", "Ninety-Nine"]
    model = GRUSeq2SeqForConditionalGeneration.from_pretrained(number_words_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(number_words_model)
    expected = translate_lines(model, tokenizer, lines)
    for flags in (["--onnx"], ["--onnx", "--quantized"]):
        done = subprocess.run([sys.executable, str(REPO / "scripts" / "translate.py"), "--model",
                               str(number_words_export), *flags], input="\n".join(lines) + "\n", capture_output=True,
                              text=True, timeout=300, env=script_env())
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split("\n") == [*expected, ""], flags
