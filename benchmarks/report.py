"""What every benchmark report shares: a ratio against its target, the shares of equal rows and lines its checks
give, number formatting, the versions and machine a run was measured on, and writing the JSON report and its markdown
rendering."""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import re
from pathlib import Path

import torch
import transformers

import hf_gru_seq2seq


def quotient(num, den) -> float | None:
    """num / den to 3 decimals; None where either is missing (or 0)."""
    return round(num / den, 3) if num and den else None


def ratio(name: str, num, den, target: float | None = None, higher_is_better: bool = True) -> dict:
    """`{"name", "value", "target", "ok"}`: `value` = num / den (None where either is missing), `ok` whether it
    meets `target` (None where there is no value or no target)."""
    value = quotient(num, den)
    ok = None if value is None or target is None else (value >= target if higher_is_better else value <= target)
    shown = None if target is None else (">= " if higher_is_better else "<= ") + str(target)
    return {"name": name, "value": value, "target": shown, "ok": ok}


def same_rows(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of rows of two (B, n) token tensors that are equal token for token."""
    return a.eq(b).all(1).float().mean().item()


def same_lines(lines: list[str], others: list[str]) -> float:
    """Fraction of `lines` equal to the line of `others` at the same index."""
    return sum(a == b for a, b in zip(lines, others)) / len(lines)


def fmt(x, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def table_head(title: str, columns: list[str], numeric=()) -> list[str]:
    """A markdown section title and table header; the columns at the `numeric` indexes are right-aligned."""
    rule = "|".join("---:" if i in numeric else "---" for i in range(len(columns)))
    return [f"## {title}", "", "| " + " | ".join(columns) + " |", f"|{rule}|"]


def targets_table(ratios: list[dict]) -> list[str]:
    """The markdown table of a report's ratios against their targets."""
    lines = table_head("Targets", ["ratio", "value", "target", "met"], numeric=[1])
    for r in ratios:
        met = {True: "yes", False: "**no**", None: "-"}[r["ok"]]
        lines.append(f"| {r['name']} | {fmt(r['value'], 3)} | {r['target'] or '-'} | {met} |")
    return lines


def short_dtype(name: str | None) -> str:
    short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
    return "/".join(short.get(n, n) for n in name.split("/")) if name else "-"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def versions(*extra: str) -> dict:
    """Python, torch (with its CUDA and cuDNN), transformers and this package, and the `extra` modules' versions."""
    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": transformers.__version__,
        "hf_gru_seq2seq": hf_gru_seq2seq.__version__,
    }
    out.update((name, importlib.import_module(name).__version__) for name in extra)
    return out


def cpu_model_name() -> str | None:
    """The CPU's marketing name from /proc/cpuinfo (Linux), where `platform.processor()` is often empty."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name(info: dict) -> str:
    """The CPU's name from a `machine()` dict: its model name where known."""
    return info["cpu_model"] or info["processor"] or info["machine"]


def machine() -> dict:
    """The CPU side of the machine a run was measured on, and how busy it was when the run started."""
    return {
        "processor": platform.processor(),
        "machine": platform.machine(),
        "cpu_model": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
    }


def report_paths(out: str, name: str) -> tuple[Path, Path]:
    """`<out>/<YYYY-MM-DD>-<name>.json` and `.md`, the folder made where missing."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-{name}"
    return folder / f"{stem}.json", folder / f"{stem}.md"


def write_report(report: dict, json_path: Path, md_path: Path, markdown) -> None:
    """The report as JSON (replaced atomically, so a run killed mid-write keeps its last file) and `markdown(report)`
    beside it."""
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(json_path)
    md_path.write_text(markdown(report))
