"""The GPU throughput benchmark (`python -m benchmarks gpu`) on CPU: its hand reference is the package's
architecture and follows the package's GRU precision policy, its batches are fair, the match rate leaves the model
alone, and a tiny run (the compiled generation impl included) writes the promised JSON shape."""

import json
import sys
from pathlib import Path

import pytest
import torch
from model_tester import counting_compiled_calls

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import batches, config, gpu_run, models, reference  # noqa: E402 (after the sys.path line above)
from benchmarks.precision_match import half_precision_match_rate  # noqa: E402

TINY = {"name": "tiny", "vocab": 50, "emb": 8, "hid": 12, "layers": 2, "batch": 6, "length": 7, "dropout": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a busy machine
    yield
    torch.set_num_threads(threads)


def test_reference_is_the_package_architecture():
    """With the package model's weights copied in, the hand reference gives the same loss, gradients and greedy
    output as the package model on padded batches."""
    size = config.Size(**TINY)
    device = torch.device("cpu")
    model = models.build_model(size, device, seed=0).train()
    ref = reference.copy_package_weights(reference.build_reference(size, device, seed=1), model).train()
    batch = batches.make_batches(size, 1, seed=3)[0]
    assert batch["attention_mask"].sum(1).min() < size.length  # there is padding to get right
    on_device = batches.hand_batch(batch, device)
    ours = models.package_loss(model, on_device)
    theirs = reference.reference_loss(ref, on_device)
    torch.testing.assert_close(theirs, ours, atol=1e-6, rtol=1e-6)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ref.head.weight.grad, model.lm_head.weight.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ref.enc_rnn.weight_hh_l0.grad, model.model.encoder.rnn.weight_hh_l0.grad,
                               atol=1e-6, rtol=1e-5)

    model.eval(), ref.eval()
    hand = reference.hand_greedy(ref, on_device["input_ids"], on_device["lengths"], 5)
    generated = models.generate_fixed(model, on_device["input_ids"], on_device["attention_mask"], 5)
    assert torch.equal(generated[:, 1:], hand)


def test_reference_reads_sources_backwards_as_the_package_model():
    """A model trained with `reverse_source` (the training script's recipe) has a reference (`for_config`) that
    decodes the same tokens from a padded batch."""
    size = config.Size(**TINY)
    model = models.build_model(size, torch.device("cpu"), seed=0)
    model.config.reverse_source = True
    model.eval()
    ref = reference.copy_package_weights(reference.ReferenceSeq2Seq.for_config(model.config), model).eval()
    inputs = batches.hand_batch(batches.make_batches(size, 1, seed=3)[0], torch.device("cpu"))
    hand = reference.hand_greedy(ref, inputs["input_ids"], inputs["lengths"], 5)
    generated = models.generate_fixed(model, inputs["input_ids"], inputs["attention_mask"], 5)
    assert torch.equal(generated[:, 1:], hand)
    ref.reverse_source = False  # the check can fail: reading forwards gives other tokens
    assert not torch.equal(reference.hand_greedy(ref, inputs["input_ids"], inputs["lengths"], 5), hand)


@pytest.mark.parametrize("policy", ["match", "torch", "float32"])
def test_reference_follows_the_package_gru_precision_under_autocast(policy):
    """Under (CPU) bf16 autocast, the reference runs its GRUs in the same dtype as the package model with the same
    `gru_autocast` policy, and gives the same loss."""
    size = config.Size(**TINY)
    device = torch.device("cpu")
    model = models.build_model(size, device, gru_autocast=policy).eval()
    ref = reference.copy_package_weights(reference.build_reference(size, device, gru_autocast=policy), model).eval()
    batch = batches.hand_batch(batches.make_batches(size, 1, seed=3)[0], device)
    seen_model, seen_ref = models.watch_gru_dtypes(model), models.watch_gru_dtypes(ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = models.package_loss(model, batch), reference.reference_loss(ref, batch)
    assert seen_model == seen_ref
    if policy == "match":
        assert seen_ref == {"bfloat16"}
    if policy == "float32":
        assert seen_ref == {"float32"}
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_batches_share_their_token_count():
    size = config.Size(**TINY)
    made = batches.make_batches(size, 4, seed=0)
    assert len({batches.tokens_per_batch(b) for b in made}) == 1
    for b in made:  # right-padded, pads outside the mask, no special ids inside it
        mask = b["attention_mask"].bool()
        assert (mask[:, :-1] >= mask[:, 1:]).all()
        assert (b["input_ids"][~mask] == config.PAD).all() and (b["input_ids"][mask] >= config.FIRST_TOKEN).all()


def test_batches_keep_lengths_within_the_size_range():
    size = config.Size(**{**TINY, "length": 12, "batch": 64}, min_length=10)
    lengths = batches.make_batches(size, 1, seed=0)[0]["attention_mask"].sum(1)
    assert lengths.min() >= 10 and lengths.max() <= 12 and lengths.min() < lengths.max()


def test_half_precision_match_rate_leaves_the_model_alone():
    size = config.Size(**TINY)
    model = models.build_model(size, torch.device("cpu")).train()
    batch = batches.make_batches(size, 1)[0]
    rates = half_precision_match_rate(model, batch["input_ids"], batch["attention_mask"], new_tokens=4,
                                      dtypes=("bf16",))
    assert set(rates) == {"bf16"} and 0.0 <= rates["bf16"] <= 1.0
    assert model.training and model.dtype == torch.float32


def test_tiny_cpu_run_writes_the_report(tmp_path, monkeypatch):
    monkeypatch.setitem(config.SIZES, "tiny", config.Size(**TINY))
    compiled_steps = counting_compiled_calls(monkeypatch)
    report = gpu_run.main([
        "--cpu", "--out", str(tmp_path), "--sizes", "tiny", "--gen-size", "tiny", "--gen-batch", "4",
        "--gen-new-tokens", "3,6", "--row-seconds", "0", "--warmup", "1", "--min-steps", "2", "--max-steps", "2",
        "--segments", "2", "--compile-backend", "aot_eager",
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
        (impl, n) for impl in ("hand", "greedy", "compiled", "beam4") for n in (3, 6)
    }
    for row in data["generate"]:
        assert {"impl", "precision", "new_tokens", "batch", "tokens_per_s", "first_call_s"} <= set(row)
        assert "error" not in row and row["tokens_per_s"] > 0 and row["batch"] == 4 and row["precision"] == "fp32"
    assert compiled_steps  # the compiled rows decoded through Transformers' compiled forward
    checks = {key: value for key, value in data["checks"].items() if key.startswith("hand loop = generate")}
    assert len(checks) == 4 and all(value == 1.0 for value in checks.values())
    names = [r["name"] for r in data["ratios"]]
    assert "model / hand (same loop), tiny fp32" in names and "greedy time(6) / time(3), fp32" in names
    compiled = {r["name"]: r for r in data["ratios"]}["compiled greedy / hand cached loop, fp32 6 tokens"]
    assert compiled["target"] == ">= 0.9" and compiled["value"] > 0
    assert data["complete"] and not data["skipped"]
    assert len(data["match"]["runs"]) == 1 and 0 <= data["match"]["runs"][0]["rates"]["bf16"]["rows"] <= 1
    text = (tmp_path / files[1]).read_text()
    assert "| tiny | fp32 |" in text and "compiled greedy / hand cached loop, fp32 3 tokens" in text


def test_command_line_runs_each_command_by_name(capsys):
    """`python -m benchmarks` names its commands, and refuses an unknown one."""
    from benchmarks.__main__ import COMMANDS, main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    shown = capsys.readouterr().out
    assert done.value.code == 0 and all(name in shown for name in COMMANDS)
    with pytest.raises(SystemExit) as done:
        main(["nope"])
    assert done.value.code == 2
    assert set(COMMANDS) == {"gpu", "cpu", "quality", "match", "web", "data"}
