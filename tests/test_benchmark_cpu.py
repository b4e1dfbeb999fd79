"""The throughput benchmark (benchmarks/gpu.py) on CPU: its reference is the package's architecture, and a tiny run
writes the promised JSON shape."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gru_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a busy machine
    yield module
    torch.set_num_threads(threads)
    sys.modules.pop(spec.name, None)


TINY = dict(name="tiny", vocab=50, emb=8, hid=12, layers=2, batch=6, length=7, dropout=0.0)


def test_reference_is_the_package_architecture(bench):
    """With the package model's weights copied in, the hand reference gives the same loss, gradients and greedy
    output as the package model on padded batches."""
    size = bench.Size(**TINY)
    device = torch.device("cpu")
    model = bench.build_model(size, device, seed=0).train()
    ref = bench.copy_package_weights(bench.build_reference(size, device, seed=1), model).train()
    batch = bench.make_batches(size, 1, seed=3)[0]
    assert batch["attention_mask"].sum(1).min() < size.length  # there is padding to get right
    on_device = bench.hand_batch(batch, device)
    ours = bench.package_loss(model, on_device)
    theirs = bench.reference_loss(ref, on_device)
    torch.testing.assert_close(theirs, ours, atol=1e-6, rtol=1e-6)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ref.head.weight.grad, model.lm_head.weight.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ref.enc_rnn.weight_hh_l0.grad, model.model.encoder.rnn.weight_hh_l0.grad,
                               atol=1e-6, rtol=1e-5)

    model.eval(), ref.eval()
    hand = bench.hand_greedy(ref, on_device["input_ids"], on_device["lengths"], 5)
    generated = bench.generate_fixed(model, on_device["input_ids"], on_device["attention_mask"], 5)
    assert torch.equal(generated[:, 1:], hand)


@pytest.mark.parametrize("policy", ["match", "torch", "float32"])
def test_reference_follows_the_package_gru_precision_under_autocast(bench, policy):
    """Under (CPU) bf16 autocast, the reference runs its GRUs in the same dtype as the package model with the same
    `gru_autocast` policy, and gives the same loss."""
    if bench.PACKAGE_GRU_AUTOCAST is None:
        pytest.skip("this version of the package has no gru_autocast policy")
    size = bench.Size(**TINY)
    device = torch.device("cpu")
    model = bench.build_model(size, device, gru_autocast=policy).eval()
    ref = bench.copy_package_weights(bench.build_reference(size, device, gru_autocast=policy), model).eval()
    batch = bench.hand_batch(bench.make_batches(size, 1, seed=3)[0], device)
    seen_model, seen_ref = bench.watch_gru_dtypes(model), bench.watch_gru_dtypes(ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = bench.package_loss(model, batch), bench.reference_loss(ref, batch)
    assert seen_model == seen_ref
    if policy == "match":
        assert seen_ref == {"bfloat16"}
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_batches_share_their_token_count(bench):
    size = bench.Size(**TINY)
    batches = bench.make_batches(size, 4, seed=0)
    assert len({bench.tokens_per_batch(b) for b in batches}) == 1
    for b in batches:  # right-padded, pads outside the mask, no special ids inside it
        mask = b["attention_mask"].bool()
        assert (mask[:, :-1] >= mask[:, 1:]).all()
        assert (b["input_ids"][~mask] == bench.PAD).all() and (b["input_ids"][mask] >= bench.FIRST_TOKEN).all()


def test_half_precision_match_rate_leaves_the_model_alone(bench):
    size = bench.Size(**TINY)
    model = bench.build_model(size, torch.device("cpu")).train()
    batch = bench.make_batches(size, 1)[0]
    rates = bench.half_precision_match_rate(model, batch["input_ids"], batch["attention_mask"], new_tokens=4,
                                            dtypes=("bf16",))
    assert set(rates) == {"bf16"} and 0.0 <= rates["bf16"] <= 1.0
    assert model.training and model.dtype == torch.float32


def test_tiny_cpu_run_writes_the_report(bench, tmp_path, monkeypatch):
    monkeypatch.setitem(bench.SIZES, "tiny", bench.Size(**TINY))
    report = bench.main([
        "--cpu", "--out", str(tmp_path), "--sizes", "tiny", "--gen-size", "tiny", "--gen-batch", "4",
        "--gen-new-tokens", "3,6", "--row-seconds", "0", "--warmup", "1", "--min-steps", "2", "--max-steps", "2",
        "--segments", "2",
    ])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith("-cpu.json") and files[1].endswith("-cpu.md")
    data = json.loads((tmp_path / files[0]).read_text())
    assert data == json.loads(json.dumps(report))
    assert {"device", "versions", "train", "generate"} <= set(data)
    assert [(r["size"], r["precision"], r["impl"]) for r in data["train"]] == [
        ("tiny", "fp32", impl) for impl in ("hand", "model", "trainer")
    ]
    for row in data["train"]:
        assert {"size", "precision", "impl", "tokens_per_s", "peak_mem_gb"} <= set(row)
        assert "error" not in row and row["tokens_per_s"] > 0 and row["peak_mem_gb"] == 0.0 and row["steps"] == 2
        assert row["gru_dtype"] == "float32"
    assert {(r["impl"], r["new_tokens"]) for r in data["generate"]} == {
        (impl, n) for impl in ("hand", "greedy", "beam4") for n in (3, 6)
    }
    for row in data["generate"]:
        assert {"impl", "precision", "new_tokens", "batch", "tokens_per_s"} <= set(row)
        assert "error" not in row and row["tokens_per_s"] > 0 and row["batch"] == 4 and row["precision"] == "fp32"
    assert all(value == 1.0 for key, value in data["checks"].items() if key.startswith("hand loop = generate"))
    names = [r["name"] for r in data["ratios"]]
    assert "model / hand (same loop), tiny fp32" in names and "greedy time(6) / time(3), fp32" in names
    assert data["complete"] and not data["skipped"]
    assert len(data["match"]["runs"]) == 1 and 0 <= data["match"]["runs"][0]["rates"]["bf16"]["rows"] <= 1
    assert "| tiny | fp32 |" in (tmp_path / files[1]).read_text()
