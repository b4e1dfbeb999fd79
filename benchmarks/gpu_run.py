"""Throughput of hf-gru-seq2seq against a hand-written reference of the same architecture, on a CUDA device.

One run measures, and writes as it goes to `<out>/<YYYY-MM-DD>-<device-slug>.json` (and `.md`):

* training throughput (non-pad target tokens per second, peak GPU memory) of `hand` (a plain PyTorch loop over the
  reference), `model` (the package model in the same loop) and `trainer` (the package model through
  `Seq2SeqTrainer`), for each precision (fp32, fp16, bf16) and size (d2l, base, large): `train_rows`;
* generation throughput (output tokens per second) of the reference's cached greedy loop (`hand`) and of the
  package's `generate()`: eager greedy, greedy with Transformers' compiled decoding, beam 4 (`greedy`, `compiled`,
  `beam4`), with fp32 weights, bf16 weights, and fp32 weights under bf16 autocast: `generate_rows`;
* how often half-precision greedy output equals fp32's (`precision_match`);
* the ratios the project targets (`gpu_report.ratios`).

Implementations compared in a ratio are timed interleaved (`timing.Interleaved`).

Run on a GPU:   python -m benchmarks gpu --out DIR
Quick CPU run:  python -m benchmarks gpu --cpu          (writes under /tmp; never commit CPU numbers)
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict

import torch
import transformers

from .batches import hand_batch, make_batches
from .config import DEFAULT_GRU_AUTOCAST, LEARNING_RATE, SIZES, WEIGHT_DTYPES
from .generate_rows import generate_rows
from .gpu_args import build_parser, resolve_args
from .gpu_report import markdown, ratios
from .models import build_model
from .precision_match import half_precision_match_rate
from .reference import build_reference, copy_package_weights
from .report import cpu_name, fmt, machine, report_paths, same_rows, slug, versions, write_report
from .timing import Timing, error_text, prime, reset_memory
from .train_rows import train_rows
from .trainer_rows import trainer_optim_name

COMPILE_ESTIMATE_S = 30.0  # budget for the `compiled` impl's first call per precision on CUDA (compile + graphs)


class Run:
    """Holds the report, writes it after every group of rows, and keeps the time budget."""

    def __init__(self, args, device: torch.device):
        self.args, self.device = args, device
        self.t0 = time.perf_counter()
        cuda = device.type == "cuda"
        name = torch.cuda.get_device_name(device) if cuda else f"cpu ({cpu_name(machine())})"
        self.json_path, self.md_path = report_paths(args.out, slug(name) if cuda else "cpu")
        self.report = {"device": name, "versions": versions("accelerate"), "train": [], "generate": [], "ratios": [],
                       "match": None, "checks": {}, "skipped": [], "settings": self.settings(), "notes": [],
                       "complete": False, "elapsed_s": 0.0}

    def settings(self) -> dict:
        args = self.args
        return {
            "row_seconds": args.row_seconds, "warmup": args.warmup, "min_steps": args.min_steps,
            "max_steps": args.max_steps, "max_seconds": args.max_seconds, "seed": args.seed,
            "segments": args.segments, "cpu_threads": torch.get_num_threads(),
            "gru_autocast": args.gru_autocast or DEFAULT_GRU_AUTOCAST,
            "optimizer": f"Adam lr {LEARNING_RATE} (fused on CUDA); Trainer: {trainer_optim_name(self.device)}, "
                         "constant lr, weight decay 0",
            "compile_backend": args.compile_backend,
            "dropout": SIZES[args.sizes[0]].dropout if args.sizes else None,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "sizes": {s: asdict(SIZES[s]) for s in dict.fromkeys(args.sizes + [args.gen_size])},
        }

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {msg}", flush=True)

    def over_budget(self, what: str, cost: float) -> bool:
        if self.elapsed() + cost > self.args.max_seconds:
            self.report["skipped"].append(f"{what} (at {self.elapsed():.0f}s of {self.args.max_seconds:.0f}s)")
            self.log(f"skip {what}: over --max-seconds")
            return True
        return False

    def save(self) -> None:
        r = self.report
        r["ratios"] = ratios(r["train"], r["generate"])
        r["elapsed_s"] = round(self.elapsed(), 1)
        write_report(r, self.json_path, self.md_path, markdown)


def run_training(run: Run, sizes: list[str]) -> None:
    args, device = run.args, run.device
    timing = Timing(args.warmup, args.min_steps, args.max_steps, args.row_seconds, args.segments)
    for size_name in sizes:
        for precision in args.precisions:
            what = f"train {size_name} {precision} {'/'.join(args.impls)}"
            if run.over_budget(what, len(args.impls) * (args.row_seconds + 0.5) + 1.5):
                continue
            for row in train_rows(SIZES[size_name], precision, args.impls, device, timing, seed=args.seed,
                                  gru_autocast=args.gru_autocast):
                run.report["train"].append(row)
                extra = row.get("error") or (f"{row['steps']} steps in {row['seconds']} s, spread {row['spread']}, "
                                             f"peak {row['peak_mem_gb']} GB, GRU {row['gru_dtype']}")
                run.log(f"train {size_name} {precision} {row['impl']}: {fmt(row['tokens_per_s'])} tok/s ({extra})")
            run.save()


def _generation_pair(precision: str, fp32_model, fp32_ref):
    """The model and reference a generation precision decodes with: the fp32 ones, or copies in its weight dtype."""
    if precision in ("fp32", "bf16-autocast"):
        return fp32_model, fp32_ref
    dtype = WEIGHT_DTYPES[precision]
    return copy.deepcopy(fp32_model).to(dtype).eval(), copy.deepcopy(fp32_ref).to(dtype).eval()


def _generation_lengths(run: Run, precision: str, model, ref, inputs: dict, timing: Timing) -> None:
    """The rows of one precision, every length, and the check that the hand loop decodes generate()'s tokens."""
    args, outputs = run.args, {}
    for n in args.gen_new_tokens:
        what = f"generate {'/'.join(args.gen_impls)} {precision} {n} tokens"
        if run.over_budget(what, len(args.gen_impls) * (args.row_seconds + 0.3) + 0.5):
            continue
        for row in generate_rows(args.gen_impls, precision, n, model, ref, inputs, run.device, timing, outputs,
                                 args.compile_backend):
            run.report["generate"].append(row)
            extra = row.get("error") or f"{row['calls']} calls in {row['seconds']} s, spread {row['spread']}"
            run.log(f"generate {row['impl']} {precision} {n} tokens: {fmt(row['tokens_per_s'])} tok/s ({extra})")
        hand = outputs.get(("hand", precision, n))
        for impl in ("greedy", "compiled"):
            if hand is not None and outputs.get((impl, precision, n)) is not None:
                key = f"hand loop = generate {impl}, {precision} {n} tokens (fraction of rows)"
                run.report["checks"][key] = same_rows(hand, outputs[(impl, precision, n)])
        run.save()


def run_generation(run: Run) -> None:
    args, device = run.args, run.device
    size = SIZES[args.gen_size]
    timing = Timing(1, args.min_steps, 300, args.row_seconds, args.segments)
    inputs = hand_batch(make_batches(size, 1, args.seed + 7, batch=args.gen_batch)[0], device)
    fp32_model = build_model(size, device, args.seed, gru_autocast=args.gru_autocast).eval()
    fp32_ref = build_reference(size, device, args.seed, gru_autocast=args.gru_autocast)
    fp32_ref = copy_package_weights(fp32_ref, fp32_model).eval()
    compile_cost = COMPILE_ESTIMATE_S if "compiled" in args.gen_impls and device.type == "cuda" else 0.0
    for precision in args.gen_precisions:
        cost = len(args.gen_impls) * (args.row_seconds + 0.3) + 0.5 + compile_cost
        if run.over_budget(f"generate {precision} (all rows)", cost):
            continue
        try:
            model, ref = _generation_pair(precision, fp32_model, fp32_ref)
        except Exception as error:  # noqa: BLE001
            text = error_text(error)
            run.report["generate"] += [{"impl": impl, "precision": precision, "new_tokens": n, "batch": args.gen_batch,
                                        "tokens_per_s": None, "error": text}
                                       for n in args.gen_new_tokens for impl in args.gen_impls]
            continue
        _generation_lengths(run, precision, model, ref, inputs, timing)
        del model, ref
        reset_memory(device)
    del fp32_model, fp32_ref
    reset_memory(device)


def run_match(run: Run) -> None:
    args, device = run.args, run.device
    if run.over_budget("half-precision match rate", 3.0):
        return
    size = SIZES[args.gen_size]
    try:
        model = build_model(size, device, args.seed, gru_autocast=args.gru_autocast).eval()
        inputs = hand_batch(make_batches(size, 1, args.seed + 7, batch=args.gen_batch)[0], device)
        rates = half_precision_match_rate(model, inputs["input_ids"], inputs["attention_mask"], details=True)
        runs = [{"model": f"{size.name}, random init", "inputs": "benchmark batch", "rates": rates}]
        run.log(f"match rate, random init: {rates}")
        del model
    except Exception as error:  # noqa: BLE001
        runs = [{"model": size.name, "inputs": "-", "rates": {}, "error": error_text(error)}]
    run.report["match"] = {"batch": args.gen_batch, "runs": runs,
                           "note": "random weights give near-uniform logits whose argmax flips easily, so this "
                                   "says little about a trained model: run `python -m benchmarks match` on one"}
    reset_memory(device)
    run.save()


def _run_all(run: Run) -> None:
    """The phases, the rows most ratios need first, so that a budget cut loses the least: the first training size,
    generation, the match rate, then the other training sizes."""
    args = run.args
    if not args.skip_train:
        run_training(run, args.sizes[:1])
    if not args.skip_generate:
        run_generation(run)
    if not args.skip_match:
        run_match(run)
    if not args.skip_train:
        run_training(run, args.sizes[1:])


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser(__doc__.split("\n\n")[0])
    args = resolve_args(parser, parser.parse_args(argv))
    if args.cpu:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        raise SystemExit("no CUDA device: use --cpu for a quick CPU run")
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run(args, device)
    run.log(f"device {run.report['device']}; versions {run.report['versions']}; writing {run.json_path}")
    if device.type == "cpu":
        run.report["notes"].append("CPU run: for checking the script only; do not commit or quote these numbers.")
    run.save()
    try:
        prime(device)
    except Exception as error:  # noqa: BLE001 - only a warm-up
        run.report["notes"].append(f"priming failed: {error_text(error)}")
    _run_all(run)
    run.report["complete"] = not run.report["skipped"]
    run.save()
    print(markdown(run.report), flush=True)
    run.log(f"wrote {run.json_path} and {run.md_path}")
    return run.report
