"""The CPU command's ratios against their targets and its markdown rendering, from the rows of a report."""

from __future__ import annotations

import json

from .cpu_rows import CPU_IMPLS, WORKLOADS
from .report import cpu_name, fmt, ratio, table_head, targets_table

# workload -> the target of ONNX Runtime fp32 over eager generate(): a single sentence pays generate()'s per-step
# Python the most.
ORT_TARGETS = {"latency": 3.0, "throughput": 1.5}
INT8_TARGET = 1.5  # ONNX Runtime int8 over fp32, every workload


def _tps(rows: list[dict], workload: str, impl: str):
    return next((r["tokens_per_s"] for r in rows if (r["workload"], r["impl"]) == (workload, impl)), None)


def ratios(generate: list[dict], train: list[dict]) -> list[dict]:
    """ONNX Runtime over eager (targets), int8 over fp32 (target), compiled over eager and every decoder over the
    hand loop (no target), per workload; the package's training step over the hand reference's (no target)."""
    out = []
    for workload in dict.fromkeys(r["workload"] for r in generate):
        batch = WORKLOADS[workload][0]
        tps = {impl: _tps(generate, workload, impl) for impl in CPU_IMPLS}
        out.append(ratio(f"ORT fp32 / eager generate, batch {batch}", tps["ort-fp32"], tps["eager"],
                         ORT_TARGETS[workload]))
        out.append(ratio(f"ORT int8 / ORT fp32, batch {batch}", tps["ort-int8"], tps["ort-fp32"], INT8_TARGET))
        out.append(ratio(f"compiled / eager generate, batch {batch}", tps["compiled"], tps["eager"]))
        for impl in ("eager", "compiled", "ort-fp32", "ort-int8"):
            out.append(ratio(f"{impl} / hand cached loop, batch {batch}", tps[impl], tps["hand"]))
    for size in dict.fromkeys(r["size"] for r in train):
        rows = {r["impl"]: r["tokens_per_s"] for r in train if r["size"] == size}
        out.append(ratio(f"model / hand training step (same loop), {size} fp32", rows.get("model"), rows.get("hand")))
    return out


def _generate_table(rows: list[dict]) -> list[str]:
    lines = table_head("Decoding (greedy; output tokens / s)",
                       ["workload", "batch", "source len (padded)", "new tokens", "impl", "tokens / s", "ms / call",
                        "first call s", "spread"], numeric=[1, 2, 3, 5, 6, 7, 8])
    for r in rows:
        lines.append(f"| {r['workload']} | {r['batch']} | {r['source_length']} | {r['new_tokens']} | {r['impl']} | "
                     f"{fmt(r['tokens_per_s'])} | {fmt(r.get('ms_per_call'), 2)} | {fmt(r.get('first_call_s'), 2)} | "
                     f"{fmt(r.get('spread'), 2)} |")
    return lines


def _train_table(rows: list[dict]) -> list[str]:
    lines = table_head("Training step (fp32; non-pad target tokens / s)", ["size", "impl", "tokens / s", "steps",
                                                                           "spread"], numeric=[2, 3, 4])
    lines += [f"| {r['size']} | {r['impl']} | {fmt(r['tokens_per_s'])} | {r.get('steps', '-')} | "
              f"{fmt(r.get('spread'), 2)} |" for r in rows]
    return lines


def markdown(report: dict) -> str:
    v, m = report["versions"], report["machine"]
    lines = [f"# GRU seq2seq CPU benchmark: {report['model']['name']}", "",
             (f"Machine: {cpu_name(m)}, {m['cpu_count']} cores "
              f"({m['usable_cpus']} usable), load average at start {m['load_average_1_5_15_min']}."),
             "Versions: " + ", ".join(f"{k} {v[k]}" for k in v) + ".",
             f"Threads: {json.dumps(report['threads'])}.", f"Model: {json.dumps(report['model'])}.", ""]
    lines += _generate_table(report["generate"]) + [""] + _train_table(report["train"]) + [""]
    lines += targets_table(report["ratios"])
    if report.get("checks"):
        lines += ["", "## Checks", ""] + [f"- {k}: {val}" for k, val in report["checks"].items()]
    errors = [r for r in report["generate"] + report["train"] if r.get("error")]
    lines += ["", "## Errors", ""] + [f"- {r.get('workload', r.get('size'))} {r['impl']}: `{r['error']}`"
                                      for r in errors] if errors else []
    return "\n".join(lines + [f"\n_{note}_" for note in report.get("notes", [])] + [""])
