"""The CPU decoding benchmark (`python -m benchmarks cpu`) and the quality command (`python -m benchmarks quality`)
on a tiny saved model and its ONNX export: the report has every row, ratio and check it promises, the compiled and
ONNX Runtime decoders decode what eager `generate()` decodes, and PyTorch and ONNX Runtime fp32 translate the test
split identically."""

import functools
import json
import sys
from pathlib import Path

import pytest
import torch
from model_tester import counting_compiled_calls
from transformers import AutoTokenizer, GenerationConfig

import hf_gru_seq2seq.data
from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration
from hf_gru_seq2seq.vocabulary import train_tokenizer

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import config, cpu_run, model_files, quality  # noqa: E402 (after the sys.path line above)

# The built-in data, smaller (the test split is drawn the same way): the full one takes seconds to spell out.
SMALL_NUMBER_WORDS = functools.partial(hf_gru_seq2seq.data.number_words_dataset, num_examples=3000,
                                       validation_size=20, test_size=40)
TRAIN_TINY = config.Size("tiny", vocab=60, emb=8, hid=12, layers=2, batch=8, length=6, min_length=4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A randomly initialised tiny model with a word vocabulary of the number words, a short length limit, and its
    ONNX export (fp32 and int8) made as the commands make it."""
    folder = tmp_path_factory.mktemp("bench-onnx") / "model"
    tokenizer = train_tokenizer(SMALL_NUMBER_WORDS()["test"], "en", "fr", model_type="word", min_frequency=1,
                                lowercase=True)
    torch.manual_seed(0)
    model = GRUSeq2SeqForConditionalGeneration(GRUSeq2SeqConfig(vocab_size=len(tokenizer), embedding_size=8,
                                                                hidden_size=16, num_hidden_layers=2))
    model.generation_config = GenerationConfig(**{**model.generation_config.to_diff_dict(), "max_length": 8})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    export_s = model_files.export_onnx_fresh(folder, folder / "onnx")
    assert export_s > 0 and {p.name for p in (folder / "onnx").glob("*.onnx")} == {
        "encoder_model.onnx", "decoder_model.onnx", "encoder_model_quantized.onnx", "decoder_model_quantized.onnx"}
    return folder


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the commands set it


def test_cpu_benchmark_writes_every_row_ratio_and_check(exported, tmp_path, monkeypatch, one_thread):
    monkeypatch.setitem(config.SIZES, "tiny", TRAIN_TINY)
    compiled_calls = counting_compiled_calls(monkeypatch)
    report = cpu_run.main(["--model", str(exported), "--onnx", str(exported / "onnx"), "--out", str(tmp_path),
                           "--new-tokens", "3", "--row-seconds", "0", "--segments", "2", "--min-steps", "2",
                           "--warmup", "0", "--train-size", "tiny", "--compile-backend", "aot_eager"])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{files[0][:10]}-cpu-decoding-model.json", f"{files[0][:10]}-cpu-decoding-model.md"]
    data = json.loads((tmp_path / files[0]).read_text())
    assert data == json.loads(json.dumps(report)) and data["complete"]
    assert {"cpu_model", "processor", "cpu_count", "load_average_1_5_15_min"} <= set(data["machine"])
    assert {"torch", "transformers", "onnxruntime"} <= set(data["versions"])
    assert data["threads"]["torch_intra_op"] == data["threads"]["onnxruntime_intra_op"] == 1
    impls = ("eager", "compiled", "ort-fp32", "ort-int8", "hand")
    assert [(r["workload"], r["impl"], r["batch"]) for r in data["generate"]] == [
        (w, i, b) for w, b in (("latency", 1), ("throughput", 64)) for i in impls]
    for row in data["generate"]:
        assert "error" not in row and row["tokens_per_s"] > 0 and row["new_tokens"] == 3
        assert row["ms_per_call"] > 0 and row["first_call_s"] > 0
    assert compiled_calls  # the compiled row really decoded through the compiled forward
    checks = data["checks"]
    for workload in ("latency", "throughput"):
        for impl in ("compiled", "ort-fp32", "hand"):
            assert checks[f"{impl} = eager generate, {workload} (fraction of rows)"] == 1.0
        assert 0 <= checks[f"ort-int8 = eager generate, {workload} (fraction of rows)"] <= 1
    ratios = {r["name"]: r for r in data["ratios"]}
    assert ratios["ORT fp32 / eager generate, batch 1"]["target"] == ">= 3.0"
    assert ratios["ORT fp32 / eager generate, batch 64"]["target"] == ">= 1.5"
    assert ratios["ORT int8 / ORT fp32, batch 64"]["target"] == ">= 1.5"
    assert ratios["compiled / eager generate, batch 1"]["target"] is None
    assert ratios["ort-int8 / hand cached loop, batch 64"]["value"] > 0
    assert [(r["size"], r["impl"]) for r in data["train"]] == [("tiny", "hand"), ("tiny", "model")]
    assert ratios["model / hand training step (same loop), tiny fp32"]["value"] > 0
    assert "| throughput | 64 |" in (tmp_path / files[1]).read_text()


def test_random_model_of_a_size_is_saved_with_a_tokenizer_of_its_vocabulary(tmp_path):
    folder = model_files.save_random_model(TRAIN_TINY, tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer) == TRAIN_TINY.vocab
    assert tokenizer("w5 w59 nope").input_ids == [5, 59, tokenizer.unk_token_id, tokenizer.eos_token_id]
    assert GRUSeq2SeqForConditionalGeneration.from_pretrained(folder).config.hidden_size == TRAIN_TINY.hid


def test_quality_scores_pytorch_and_onnx_runtime_alike(exported, tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr(hf_gru_seq2seq.data, "number_words_dataset", SMALL_NUMBER_WORDS)
    result = quality.main(["--model", str(exported), "--onnx", str(exported / "onnx"), "--threads", "1",
                           "--out", str(tmp_path / "quality.json")])
    assert json.loads((tmp_path / "quality.json").read_text()) == json.loads(json.dumps(result))
    assert result["sentences"] == 40 and not result["bleu_lowercase"]
    for translator in ("pytorch", "ort-fp32", "ort-int8"):
        for decoding in ("greedy", "beam4"):
            assert set(result["scores"][translator][decoding]) == {"bleu", "chrf", "exact_match"}
    assert result["identical_to_pytorch"]["ort-fp32"] == {"greedy": 1.0, "beam4": 1.0}
    assert result["scores"]["ort-fp32"] == result["scores"]["pytorch"]
    assert result["max_step_logit_difference"]["ort-fp32"] < 1e-4 < result["max_step_logit_difference"]["ort-int8"]
    for decoding, change in result["int8_minus_fp32_bleu"].items():
        scores = result["scores"]
        assert change == pytest.approx(scores["ort-int8"][decoding]["bleu"] - scores["ort-fp32"][decoding]["bleu"],
                                       abs=0.011)
