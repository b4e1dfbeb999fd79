"""`python -m benchmarks <command> [flags]`: runs one benchmark command; `<command> --help` lists its flags."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {  # command -> (module with a `main(argv)`, what it does)
    "gpu": ("gpu_run", "training and generation throughput against the hand reference (CUDA; --cpu to check)"),
    "cpu": ("cpu_run", "CPU decoding: eager, compiled, ONNX Runtime fp32/int8 and the hand loop; a training step"),
    "quality": ("quality", "BLEU / chrF / exact match of PyTorch and ONNX Runtime decoding of a test split"),
    "match": ("precision_match", "how often bf16/fp16 greedy output equals fp32's, on a trained model"),
    "web": ("web", "the exported page in headless Chromium against Python ORT and PyTorch: load, 1 and 100 lines"),
    "data": ("data_run", "corpus scale: read, tokenizer and tokenize time, peak memory, cache, first step; 1M-40M"),
}


def usage() -> str:
    lines = ["usage: python -m benchmarks {" + ",".join(COMMANDS) + "} [flags]", "", "commands:"]
    lines += [f"  {name:8} {what}" for name, (_, what) in COMMANDS.items()]
    return "\n".join(lines + ["", "`python -m benchmarks <command> --help` lists a command's flags."])


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    module = importlib.import_module(f"{__package__}.{COMMANDS[argv[0]][0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    main()
