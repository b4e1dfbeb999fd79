"""The `gpu` command's flags and their defaults (a full GPU run, or a quick `--cpu` check of the script); the `cpu`
command shares `CPU_OUT` and `split_names`."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from .config import AMP_DTYPES, DEFAULT_GRU_AUTOCAST, SIZES, WEIGHT_DTYPES
from .generate_rows import GEN_IMPLS
from .train_rows import TRAIN_IMPLS

RESULTS = Path(__file__).resolve().parent / "results"
CPU_OUT = os.path.join(tempfile.gettempdir(), "hf-gru-seq2seq-bench")


def build_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks gpu", description=description,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="quick CPU run: sizes d2l,small, fp32, short rows, out /tmp")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results; --cpu: /tmp/...)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="skip remaining rows once this much time has passed (default 270; --cpu 50)")
    p.add_argument("--row-seconds", type=float, default=None, help="timed wall time per row (default 2; --cpu 0.3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per training row (default 3; --cpu 1)")
    p.add_argument("--min-steps", type=int, default=3, help="at least this many timed steps/calls per row")
    p.add_argument("--max-steps", type=int, default=1000, help="at most this many timed steps per training row")
    p.add_argument("--sizes", default=None,
                   help="training sizes in run order (default base,large,d2l; --cpu d2l,small)")
    p.add_argument("--precisions", default=None, help="training precisions (default fp32,bf16,fp16; --cpu fp32)")
    p.add_argument("--impls", default=",".join(TRAIN_IMPLS), help="training impls")
    p.add_argument("--gen-size", default=None, help="generation model size (default base; --cpu small)")
    p.add_argument("--gen-batch", type=int, default=None, help="generation batch (default 128; --cpu 16)")
    p.add_argument("--gen-new-tokens", default=None, help="new tokens per row (default 48,96; --cpu 8,16)")
    p.add_argument("--gen-precisions", default=None,
                   help="generation precisions: fp32, bf16, fp16 (weights converted) and bf16-autocast (float32 "
                        "weights under autocast) (default fp32,bf16,bf16-autocast; --cpu fp32)")
    p.add_argument("--gen-impls", default=",".join(GEN_IMPLS), help="generation impls")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend of the `compiled` generation impl (inductor: Transformers' default "
                        "CompileConfig; another, e.g. aot_eager for a quick check, runs without a mode)")
    p.add_argument("--segments", type=int, default=4, help="timed segments per row; a row's rate is their median")
    p.add_argument("--gru-autocast", default=None, choices=("torch", "match", "float32"),
                   help="GRU precision under autocast, for the package model and the hand reference alike "
                        f"(default: the package's, now {DEFAULT_GRU_AUTOCAST!r})")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-generate", action="store_true")
    p.add_argument("--skip-match", action="store_true")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's own; --cpu 1, as the sizes are tiny)")
    p.add_argument("--seed", type=int, default=0)
    return p


def split_names(parser: argparse.ArgumentParser, text: str, known, what: str) -> list[str]:
    """The names of the comma list `text`; a parser error (exit 2) names the first one not in `known`."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    for name in names:
        if name not in known:
            parser.error(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return names


def resolve_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Fill the defaults that depend on `--cpu`, split the comma lists and refuse unknown names."""
    cpu = args.cpu
    defaults = {
        "max_seconds": 50.0 if cpu else 270.0,
        "row_seconds": 0.3 if cpu else 2.0,
        "warmup": 1 if cpu else 3,
        "sizes": "d2l,small" if cpu else "base,large,d2l",
        "precisions": "fp32" if cpu else "fp32,bf16,fp16",
        "gen_size": "small" if cpu else "base",
        "gen_batch": 16 if cpu else 128,
        "gen_new_tokens": "8,16" if cpu else "48,96",
        "gen_precisions": "fp32" if cpu else "fp32,bf16,bf16-autocast",
        "threads": 1 if cpu else 0,
        "out": CPU_OUT if cpu else str(RESULTS),
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.sizes = split_names(parser, args.sizes, SIZES, "size")
    if args.gen_size not in SIZES:
        parser.error(f"unknown size {args.gen_size!r}; known: {', '.join(SIZES)}")
    args.precisions = split_names(parser, args.precisions, AMP_DTYPES, "precision")
    args.impls = split_names(parser, args.impls, TRAIN_IMPLS, "training impl")
    args.gen_new_tokens = [int(x) for x in args.gen_new_tokens.split(",") if x.strip()]
    args.gen_precisions = split_names(parser, args.gen_precisions, (*WEIGHT_DTYPES, "bf16-autocast"),
                                      "generation precision")
    args.gen_impls = split_names(parser, args.gen_impls, GEN_IMPLS, "generation impl")
    return args
