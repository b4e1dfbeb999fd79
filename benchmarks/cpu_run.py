"""CPU decoding speed of hf-gru-seq2seq: eager and compiled PyTorch `generate()`, ONNX Runtime fp32 and int8 behind
the same `generate()`, and the hand reference's cached greedy loop, timed interleaved in one run; and the package
model's training step against the hand reference's.

    python -m benchmarks cpu                            # a randomly initialised model of the number-words size
    python -m benchmarks cpu --size tatoeba-d2l         # ... of d2l's Tatoeba size
    python -m benchmarks cpu --model outputs/number-words   # a trained model (exported to ONNX in a temp folder)

Workloads: latency (batch 1, one 10-word sentence and its </s>) and throughput (batch 64, sources of 8-16 tokens),
random source ids; every decoder decodes exactly `--new-tokens` tokens per sentence (end of sentence suppressed).
Torch and ONNX Runtime run on the same number of threads (`--threads`). Writes
`<out>/<date>-cpu-decoding-<model folder, or size-random-init>.json` and `.md`, with the machine, versions and thread
settings.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import transformers

from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration

from .config import SIZES
from .cpu_report import markdown, ratios
from .cpu_rows import CPU_IMPLS, WORKLOADS, training_pair, workload_rows
from .gpu_args import CPU_OUT, split_names
from .model_files import export_onnx_fresh, load_onnx_models, save_random_model
from .models import compile_config
from .reference import ReferenceSeq2Seq, copy_package_weights
from .report import cpu_name, machine, report_paths, slug, versions, write_report
from .timing import Timing

MODEL_SIZES = ("number-words", "tatoeba-d2l")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a trained model folder (default: a randomly initialised model of --size)")
    p.add_argument("--onnx", help="an existing export of --model with its int8 graphs (default: export to a temp dir)")
    p.add_argument("--size", default="number-words", choices=MODEL_SIZES, help="the random model's size")
    p.add_argument("--out", default=CPU_OUT, help="output folder")
    p.add_argument("--threads", type=int, default=1, help="threads of torch and of ONNX Runtime alike")
    p.add_argument("--new-tokens", type=int, default=16, help="tokens every decoder decodes per sentence")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="latency, throughput")
    p.add_argument("--impls", default=",".join(CPU_IMPLS), help="decoders")
    p.add_argument("--row-seconds", type=float, default=2.0, help="timed wall time per row")
    p.add_argument("--segments", type=int, default=4, help="timed segments per row; a row's rate is their median")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per row after its first call")
    p.add_argument("--min-steps", type=int, default=3, help="at least this many timed calls (steps) per row")
    p.add_argument("--train-size", default="number-words", choices=list(SIZES),
                   help="the training pair's size (model, batch and lengths)")
    p.add_argument("--skip-train", action="store_true", help="no training rows")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend of the compiled decoder")
    p.add_argument("--seed", type=int, default=0)
    return p


def new_report(args) -> dict:
    info = machine()
    return {
        "device": f"cpu ({cpu_name(info)})", "machine": info,
        "versions": versions("onnxruntime", "onnx"),
        "threads": {"torch_intra_op": torch.get_num_threads(), "torch_inter_op": torch.get_num_interop_threads(),
                    "onnxruntime_intra_op": args.threads, "onnxruntime_inter_op": 1,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "model": {}, "generate": [], "train": [], "ratios": [], "checks": {},
        "settings": {k: v for k, v in vars(args).items() if k not in ("model", "onnx", "out")},
        "notes": [("Every decoder decodes exactly new_tokens tokens per sentence (end of sentence suppressed: "
                   "min_new_tokens = max_new_tokens; the hand loop masks it), from random source ids."),
                  ("first_call_s is each decoder's first call, timed alone and left out of its rate: for `compiled`, "
                   "the compilation for that batch shape.")],
        "complete": False, "elapsed_s": 0.0,
    }


def prepare_models(args, tmp: Path, report: dict) -> dict:
    """The PyTorch model (saved at random init when no --model), its hand reference and its ONNX Runtime models."""
    folder = Path(args.model) if args.model else save_random_model(SIZES[args.size], tmp / "model", args.seed)
    onnx_dir = Path(args.onnx) if args.onnx else tmp / "onnx"
    export_s = None if args.onnx else export_onnx_fresh(folder, onnx_dir)
    model = GRUSeq2SeqForConditionalGeneration.from_pretrained(folder).float().eval()
    try:
        ref = copy_package_weights(ReferenceSeq2Seq.for_config(model.config), model).eval()
    except ValueError as error:
        raise SystemExit(f"--model {args.model}: {error}") from error
    c = model.config
    report["model"] = {"name": args.model or f"{args.size}, random init", "vocab": c.vocab_size,
                       "decoder_vocab": c.decoder_vocab_size, "embedding": c.embedding_size, "hidden": c.hidden_size,
                       "layers": c.num_hidden_layers, "reverse_source": c.reverse_source,
                       "onnx": args.onnx or "exported to a temporary folder (int8: dynamic quantization)",
                       "export_s": export_s}
    return {"eager": model, "hand": ref, **load_onnx_models(onnx_dir, args.threads)}


def measure(args, workloads: list[str], impls: list[str], models: dict, report: dict, save) -> None:
    """The decoding rows of each workload, then the training pair; the report is saved after each."""
    timing = Timing(args.warmup, args.min_steps, 100_000, args.row_seconds, args.segments)
    compile = compile_config(torch.device("cpu"), args.compile_backend)
    for workload in workloads:
        rows, checks = workload_rows(workload, models, args.new_tokens, timing, compile, impls, args.seed)
        report["generate"] += rows
        report["checks"].update(checks)
        save()
    if not args.skip_train:
        report["train"] = training_pair(SIZES[args.train_size], timing, args.seed)
        save()


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    workloads = split_names(parser, args.workloads, WORKLOADS, "workload")
    impls = split_names(parser, args.impls, CPU_IMPLS, "decoder")
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    start, report = time.perf_counter(), new_report(args)
    name = Path(args.model).name if args.model else f"{args.size}-random-init"
    json_path, md_path = report_paths(args.out, f"cpu-decoding-{slug(name)}")

    def save():
        report["ratios"] = ratios(report["generate"], report["train"])
        report["elapsed_s"] = round(time.perf_counter() - start, 1)
        report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        write_report(report, json_path, md_path, markdown)

    with tempfile.TemporaryDirectory(prefix="gru-cpu-bench-") as tmp:
        models = prepare_models(args, Path(tmp), report)
        measure(args, workloads, impls, models, report, save)
    report["complete"] = not any(r.get("error") for r in report["generate"] + report["train"])
    save()
    print(md_path.read_text(), flush=True)
    print(f"wrote {json_path} and {md_path}", flush=True)
    return report
