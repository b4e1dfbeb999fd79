"""The GPU benchmark's targets (`ratios`) and its markdown rendering (`markdown`), from the rows of a report."""

from __future__ import annotations

import json

from .generate_rows import GEN_IMPLS
from .report import fmt, quotient, ratio, short_dtype, table_head, targets_table
from .train_rows import TRAIN_IMPLS


def _train_tps(train: list[dict], size: str, precision: str, impl: str):
    return next((r["tokens_per_s"] for r in train if (r["size"], r["precision"], r["impl"]) == (size, precision, impl)),
                None)


def _gen_tps(gen: list[dict], impl: str, precision: str, new_tokens: int):
    return next((r["tokens_per_s"] for r in gen if (r["impl"], r["precision"], r["new_tokens"]) == (impl, precision,
                                                                                                  new_tokens)), None)


def _train_ratios(train: list[dict]) -> list[dict]:
    out = []
    sizes = list(dict.fromkeys(r["size"] for r in train))
    precisions = list(dict.fromkeys(r["precision"] for r in train))
    for size in ("base", "large"):
        for p in ("bf16", "fp16"):
            if size in sizes:
                out.append(ratio(f"trainer / hand, {size} {p}", _train_tps(train, size, p, "trainer"),
                                 _train_tps(train, size, p, "hand"), 0.9))
    for size in sizes:
        for p in precisions:
            out.append(ratio(f"model / hand (same loop), {size} {p}", _train_tps(train, size, p, "model"),
                             _train_tps(train, size, p, "hand"), 0.97))
    if "large" in sizes:
        for impl in TRAIN_IMPLS:
            mixed = [m for m in (_train_tps(train, "large", p, impl) for p in ("bf16", "fp16")) if m]
            out.append(ratio(f"best mixed precision / fp32, large {impl}", max(mixed) if mixed else None,
                             _train_tps(train, "large", "fp32", impl), 2.5))
    if "base" in sizes:
        for impl in TRAIN_IMPLS:
            for p in ("bf16", "fp16"):
                out.append(ratio(f"{p} / fp32, base {impl}", _train_tps(train, "base", p, impl),
                                 _train_tps(train, "base", "fp32", impl), 1.0))
    return out


def _generate_ratios(gen: list[dict]) -> list[dict]:
    out = []
    precisions = list(dict.fromkeys(r["precision"] for r in gen))
    new_tokens = sorted({r["new_tokens"] for r in gen})
    for p in precisions:
        for n in new_tokens:
            hand = _gen_tps(gen, "hand", p, n)
            out.append(ratio(f"generate greedy / hand cached loop, {p} {n} tokens", _gen_tps(gen, "greedy", p, n),
                             hand, 0.5))
            out.append(ratio(f"compiled greedy / hand cached loop, {p} {n} tokens", _gen_tps(gen, "compiled", p, n),
                             hand, 0.9))
    if len(new_tokens) >= 2:
        short, long = new_tokens[0], new_tokens[-1]
        for p in precisions:
            a, b = _gen_tps(gen, "greedy", p, short), _gen_tps(gen, "greedy", p, long)
            # time(long) / time(short) = (long / tps_long) / (short / tps_short)
            t_long, t_short = (long / b if b else None), (short / a if a else None)
            # The target is 2.2 for 96 vs 48 tokens: 1.1 x the token ratio (10% fixed cost allowed).
            out.append(ratio(f"greedy time({long}) / time({short}), {p}", t_long, t_short,
                             round(1.1 * long / short, 3), higher_is_better=False))
    return out


def ratios(train: list[dict], gen: list[dict]) -> list[dict]:
    """The ratios the project targets, computed from whatever rows were measured (missing rows give None)."""
    return _train_ratios(train) + _generate_ratios(gen)


def _max_spread(rows) -> float | None:
    spreads = [r["spread"] for r in rows if r.get("spread") is not None]
    return max(spreads) if spreads else None


def _grouped(rows: list[dict], keys: tuple[str, ...], impls: tuple[str, ...]):
    """(key values, rows by impl, tokens/s by impl) for each group of rows sharing `keys`, in first-seen order."""
    for key in dict.fromkeys(tuple(r[k] for k in keys) for r in rows):
        group = {r["impl"]: r for r in rows if tuple(r[k] for k in keys) == key}
        yield key, group, {i: group[i]["tokens_per_s"] if i in group else None for i in impls}


def _train_table(train: list[dict]) -> list[str]:
    lines = table_head("Training (non-pad target tokens / s; peak memory GB)",
                       ["size", "precision", "hand", "model", "trainer", "model/hand", "trainer/hand",
                        "GRU dtype h/m/t", "peak GB h/m/t", "max spread"], numeric=[*range(2, 7), 9])
    for (size, p), rows, tps in _grouped(train, ("size", "precision"), TRAIN_IMPLS):
        mem = "/".join(fmt(rows[i]["peak_mem_gb"], 2) if i in rows else "-" for i in TRAIN_IMPLS)
        gru = "/".join(short_dtype(rows[i].get("gru_dtype")) if i in rows else "-" for i in TRAIN_IMPLS)
        cells = [size, p, *(fmt(tps[i]) for i in TRAIN_IMPLS), fmt(quotient(tps["model"], tps["hand"]), 3),
                 fmt(quotient(tps["trainer"], tps["hand"]), 3), gru, mem, fmt(_max_spread(rows.values()), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _generate_table(gen: list[dict]) -> list[str]:
    lines = table_head("Generation (output tokens / s; compile s = the compiled impl's first call)",
                       ["precision", "new tokens", "batch", *GEN_IMPLS, "greedy/hand", "compiled/hand", "compile s",
                        "max spread"], numeric=range(1, 11))
    for (p, n), rows, tps in _grouped(gen, ("precision", "new_tokens"), GEN_IMPLS):
        batch = next(iter(rows.values()))["batch"]
        cells = [p, str(n), str(batch), *(fmt(tps[i]) for i in GEN_IMPLS), fmt(quotient(tps["greedy"], tps["hand"]), 3),
                 fmt(quotient(tps["compiled"], tps["hand"]), 3), fmt(rows.get("compiled", {}).get("first_call_s"), 1),
                 fmt(_max_spread(rows.values()), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _match_table(match: dict | None) -> list[str]:
    if not match:
        return []
    lines = ["## Half-precision greedy output = fp32 output (fraction of rows; tokens)", "",
             "| model | inputs | fp32 mean length | bf16 rows | bf16 tokens | fp16 rows | fp16 tokens |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for m in match.get("runs", []):
        r = m["rates"]
        cells = [fmt(next((x.get("fp32_mean_length") for x in r.values() if x), None), 1)]
        for d in ("bf16", "fp16"):
            x = r.get(d) or {}
            cells += [fmt(x.get("rows"), 3), fmt(x.get("tokens"), 3)]
        lines.append(f"| {m['model']} | {m['inputs']} | " + " | ".join(cells) + " |")
    return lines + (["", f"_{match['note']}._"] if match.get("note") else [])


def _tail(report: dict) -> list[str]:
    lines = []
    if report.get("checks"):
        lines += ["", "## Checks", ""] + [f"- {k}: {v}" for k, v in report["checks"].items()]
    errors = [r for r in report["train"] + report["generate"] if r.get("error")]
    if errors:
        lines += ["", "## Errors", ""]
        for r in errors:
            what = " ".join(str(r[k]) for k in ("size", "impl", "precision", "new_tokens") if k in r)
            lines.append(f"- {what}: `{r['error']}`")
    if report.get("skipped"):
        lines += ["", "## Skipped (over --max-seconds)", ""] + [f"- {s}" for s in report["skipped"]]
    return lines + [f"\n_{note}_" for note in report.get("notes", [])]


def markdown(report: dict) -> str:
    v = report["versions"]
    lines = [f"# GRU seq2seq benchmark: {report['device']}", "",
             "Versions: " + ", ".join(f"{k} {v[k]}" for k in v) + ".", "",
             f"Settings: {json.dumps(report.get('settings', {}))}", ""]
    lines += _train_table(report["train"]) + [""] + _generate_table(report["generate"]) + [""]
    lines += targets_table(report.get("ratios", []))
    match = _match_table(report.get("match"))
    lines += ([""] + match if match else []) + _tail(report) + [""]
    return "\n".join(lines)
