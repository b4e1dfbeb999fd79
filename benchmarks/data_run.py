"""Corpus scale: what the training command costs before it trains, on synthetic corpora of millions of pairs.

    nice -n 10 python -m benchmarks data --sizes 1M,4M --workdir /work/scratch/data-bench
    nice -n 10 python -m benchmarks data --batching      # token against sentence batches (benchmarks/token_batching.py)

For each size, a Tatoeba-format file of that many pairs (d2l's fra-eng.txt lines repeated, else number words) is
written to `--workdir`, and the training command is run three times on it with a fresh datasets cache: a first run,
a second reusing the first's cache, and a third, cached too, without `--max_tokens_per_batch` (the default sentence
batches, `group_by_length`):

    scripts/train.py --train_file big.txt --source_lang en --target_lang fr --do_train --max_steps 1
        --eval_strategy no --save_strategy no --max_tokens_per_batch 4096 --output_dir ... --overwrite_output_dir

Measured per run: each stage's time as the job logs it (`stage read`, `stage tokenizer`, `stage tokenize`), the
time from the start of the process to the log line of the first training step, the wall time, the peak anonymous
memory of the whole process tree (the job and its tokenizing workers), the carved validation split, and the size of
the cache on disk. Memory is sampled every `--sample-seconds` by summing `Pss_Anon` of `/proc/<pid>/smaps_rollup`
over the process and all its descendants (proportional anonymous memory: the heap, not the page cache of the
memory-mapped Arrow files, and shared pages split between the processes sharing them). Writes
`<out>/<date>-data-<sizes>.json` and `.md`, with the machine and the commands.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from .report import fmt, machine, report_paths, versions, write_report

REPO = Path(__file__).resolve().parents[1]
FRA_ENG = REPO.parent / "shared" / "data" / "fra-eng.txt"
OUT = str(REPO / "benchmarks" / "results")
STAGE = re.compile(r"stage (\w+): ([\d.]+) s")
SPLITS = re.compile(r"splits: (.*)")
FIRST_STEP = "training: the first step begins"
TARGETS = {"peak_gb_at_largest": 3.0, "peak_growth": 1.25, "prepare_minutes_at_largest": 30.0,
           "cached_first_step_s": 60.0, "max_decoded": 5000}


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def make_corpus(path: Path, pairs: int) -> str:
    """A Tatoeba-format file of `pairs` lines: d2l's fra-eng.txt repeated (cut at `pairs`), or number words."""
    if path.is_file() and sum(1 for _ in open(path, "rb")) == pairs:
        return "existing"
    if FRA_ENG.is_file():
        lines, source = FRA_ENG.read_bytes().rstrip(b"\n").split(b"\n"), "fra-eng.txt repeated"
    else:
        from hf_gru_seq2seq.data import number_to_words
        lines = [f"{number_to_words(n, 'en')}\t{number_to_words(n, 'fr')}".encode() for n in range(100_000)]
        source = "number words 0-99,999 repeated"
    with open(path, "wb") as f:
        block = b"\n".join(lines) + b"\n"
        for _ in range(pairs // len(lines)):
            f.write(block)
        f.write(b"".join(line + b"\n" for line in lines[: pairs % len(lines)]))
    return source


def pss_anon_kb(pid: int) -> int:
    """`Pss_Anon` of one process in kB (0 if it is gone)."""
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss_Anon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Samples the summed `Pss_Anon` of a process and its descendants; keeps the peak."""

    def __init__(self, pid: int, every: float):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak_kb, self.samples, self.running = pid, every, 0, 0, True

    def run(self):
        while self.running:
            try:
                root = psutil.Process(self.pid)
                pids = [self.pid] + [p.pid for p in root.children(recursive=True)]
            except psutil.Error:
                pids = [self.pid]
            self.peak_kb = max(self.peak_kb, sum(pss_anon_kb(p) for p in pids))
            self.samples += 1
            time.sleep(self.every)


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run_job(command: list[str], env: dict, log_path: Path, every: float) -> dict:
    """Run the training command; time its stages from its log, its first step from when that line arrives."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        meter = TreeMemory(proc.pid, every)
        meter.start()
        row = {"stages_s": {}}
        for line in proc.stdout:
            log.write(line)
            if (m := STAGE.search(line)) is not None:
                row["stages_s"][m.group(1)] = float(m.group(2))
            elif (m := SPLITS.search(line)) is not None:
                row["splits"] = {split: int(n) for split, n in re.findall(r"(\w+) (\d+) pairs", m.group(1))}
            elif FIRST_STEP in line and "first_step_s" not in row:
                row["first_step_s"] = round(time.perf_counter() - start, 1)
                row["peak_before_step_mb"] = round(meter.peak_kb / 1024, 1)  # the data path's, not the step's
            row["reused_cache"] = row.get("reused_cache", False) or "reused the Arrow cache" in line
        proc.wait()
        meter.running = False
        meter.join()
    row.update(returncode=proc.returncode, wall_s=round(time.perf_counter() - start, 1),
               peak_pss_anon_mb=round(meter.peak_kb / 1024, 1), memory_samples=meter.samples)
    if proc.returncode:
        row["log_tail"] = log_path.read_text()[-2000:]
    return row


def measure(pairs: int, args) -> dict:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"corpus-{pairs}.txt"
    made = make_corpus(corpus, pairs)
    cache = work / f"cache-{pairs}"
    shutil.rmtree(cache, ignore_errors=True)
    command = [sys.executable, str(REPO / "scripts" / "train.py"), "--train_file", str(corpus), "--source_lang", "en",
               "--target_lang", "fr", "--do_train", "--max_steps", "1", "--eval_strategy", "no", "--save_strategy",
               "no", "--max_tokens_per_batch", str(args.max_tokens), "--output_dir", str(work / f"out-{pairs}"),
               "--overwrite_output_dir", *args.extra]
    env = dict(os.environ, HF_DATASETS_CACHE=str(cache), HF_HUB_OFFLINE="1")
    row = {"pairs": pairs, "corpus": made, "corpus_mb": round(corpus.stat().st_size / 2**20, 1),
           "command": " ".join(command[1:]), "runs": {}}
    sentences = [flag for i, flag in enumerate(command) if "--max_tokens_per_batch" not in command[i - 1:i + 1]]
    for name, job in (("first", command), ("cached", command), ("cached, sentence batches", sentences)):
        print(f"[data] {pairs:,} pairs, {name} run", flush=True)
        log = work / f"log-{pairs}-{name.replace(', ', '-').replace(' ', '-')}.txt"
        row["runs"][name] = run_job(job, env, log, args.sample_seconds)
        row["runs"][name]["cache_mb"] = round(dir_mb(cache), 1)
        print(f"[data] {row['runs'][name]}", flush=True)
    shutil.rmtree(cache, ignore_errors=True)  # tens of GB at 40M
    if not args.keep_corpus:
        corpus.unlink()
    return row


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, each met or missed, from the largest and smallest sizes measured."""
    small, large = rows[0], rows[-1]
    first, cached = large["runs"]["first"], large["runs"]["cached"]
    peak = {row["pairs"]: max(row["runs"][run]["peak_pss_anon_mb"] for run in ("first", "cached"))
            for row in (small, large)}
    prepare = sum(first["stages_s"].get(s, 0) for s in ("read", "tokenizer", "tokenize")) / 60
    decoded = max(min(r["runs"]["first"].get("splits", {}).get("validation", 0), TARGETS["max_decoded"])
                  for r in rows)
    checks = [
        (f"peak anonymous memory at {large['pairs']:,} pairs, first and cached runs (GiB)",
         peak[large["pairs"]] / 1024, "<=",
         TARGETS["peak_gb_at_largest"]),
        (f"peak at {large['pairs']:,} / peak at {small['pairs']:,}, first and cached runs",
         peak[large["pairs"]] / peak[small["pairs"]], "<=", TARGETS["peak_growth"]),
        (f"read + tokenizer + tokenize at {large['pairs']:,} pairs (min)", prepare, "<=",
         TARGETS["prepare_minutes_at_largest"]),
        (f"cached re-run to the first step at {large['pairs']:,} pairs (s)", cached.get("first_step_s"), "<=",
         TARGETS["cached_first_step_s"]),
        ("most validation pairs decoded by an evaluation pass (default flags)", decoded, "<=",
         TARGETS["max_decoded"]),
    ]
    return [{"name": name, "value": None if v is None else round(v, 3), "target": f"{op} {t}",
             "ok": None if v is None else v <= t} for name, v, op, t in checks]


def markdown(report: dict) -> str:
    sizes = ", ".join(f"{r['pairs']:,}" for r in report["rows"])
    lines = [f"# Corpus scale: {sizes} pairs", "",
             f"Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} CPUs, load average at the "
             f"start {report['machine']['load_average_1_5_15_min']}. Command: `{report['command']}`.",
             f"Each run: `{report['rows'][0]['command']}` (corpus path per size).", "",
             "| pairs | run | read s | tokenizer s | tokenize s | first step s | wall s | peak anon MB "
             "| of it before the first step | cache MB | validation |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in report["rows"]:
        for name, run in row["runs"].items():
            st = run["stages_s"]
            lines.append(f"| {row['pairs']:,} | {name} | {fmt(st.get('read'), 1)} | {fmt(st.get('tokenizer'), 1)} | "
                         f"{fmt(st.get('tokenize'), 1)} | {fmt(run.get('first_step_s'), 1)} | {fmt(run['wall_s'], 1)} "
                         f"| {fmt(run['peak_pss_anon_mb'])} | {fmt(run.get('peak_before_step_mb'))} "
                         f"| {fmt(run['cache_mb'])} | "
                         f"{fmt(run.get('splits', {}).get('validation'))} |")
    lines += ["", "| target | value | wanted | met |", "|---|---:|---|---|"]
    for t in report["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[t["ok"]]
        lines.append(f"| {t['name']} | {fmt(t['value'], 3)} | {t['target']} | {met} |")
    return "\n".join(lines + ["", report["memory_note"], *(["", report["note"]] if report.get("note") else []), ""])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1M,4M,16M,40M", help="corpus sizes in pairs (K and M suffixes)")
    p.add_argument("--workdir", default="/tmp/hf-gru-seq2seq-data-bench", help="corpora, caches and logs")
    p.add_argument("--out", default=OUT, help="output folder of the report")
    p.add_argument("--max-tokens", type=int, default=4096, help="--max_tokens_per_batch of the runs")
    p.add_argument("--sample-seconds", type=float, default=0.1, help="memory sampling period")
    p.add_argument("--keep-corpus", action="store_true", help="keep the generated corpora")
    p.add_argument("--batching", action="store_true",
                   help="instead: token against sentence batches on Tatoeba (padding share, training tokens/s)")
    p.add_argument("--steps", type=int, default=20, help="--batching: training steps per batching and round (0: none)")
    p.add_argument("--rounds", type=int, default=3, help="--batching: interleaved rounds")
    p.add_argument("extra", nargs="*", help="more flags for the training command (after --)")
    return p


def batching_markdown(report: dict) -> str:
    r = report["result"]
    lines = ["# Token batches against sentence batches, Tatoeba", "",
             f"Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} CPUs, load average at the "
             f"start {report['machine']['load_average_1_5_15_min']}, {r['torch_threads']} torch threads. Command: "
             f"`{report['command']}`. {r['pairs']:,} training pairs; {r['steps_per_round']} steps per batching in "
             f"each of {r['rounds']} interleaved rounds.", "",
             "| batching | batches an epoch | pairs a batch | padding share | target tokens/s |",
             "|---|---:|---:|---:|---:|"]
    for name, row in r["rows"].items():
        lines.append(f"| {name} | {row['batches']:,} | {row['mean_pairs']} | {row['padding_share']:.1%} | "
                     f"{fmt(row.get('target_tokens_per_s'))} |")
    return "\n".join(lines + [""])


def run_batching(args, argv) -> dict:
    from .token_batching import measure

    if not FRA_ENG.is_file():
        raise SystemExit(f"--batching needs {FRA_ENG}")
    report = {"command": "python -m benchmarks data " + " ".join(argv or []), "machine": machine(),
              "versions": versions("datasets", "tokenizers"),
              "result": measure(FRA_ENG, steps=args.steps, rounds=args.rounds)}
    json_path, md_path = report_paths(args.out, "data-batching-tatoeba")
    write_report(report, json_path, md_path, batching_markdown)
    print(md_path.read_text())
    return report


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.batching:
        return run_batching(args, argv)
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    report = {"command": "python -m benchmarks data " + " ".join(argv or []), "machine": machine(),
              "versions": versions("datasets", "tokenizers"), "rows": [],
              "memory_note": f"Peak memory: the sum of Pss_Anon (/proc/<pid>/smaps_rollup) over the job and all its "
                             f"descendants, sampled every {args.sample_seconds} s; memory-mapped Arrow files are "
                             "page cache, not counted. 'Before the first step': the peak up to the log line of "
                             "the first training step (reading, tokenizing, samplers), without that step's "
                             "activations, which depend on the batch's shape, not on the corpus: bounded by "
                             "--max_tokens_per_batch in the first two runs, by the batch size times the longest "
                             "pair of the first batch in the third. The memory targets read the first two runs."}
    label = "-".join(f"{n // 1_000_000}M" if n % 1_000_000 == 0 else str(n) for n in sizes)
    json_path, md_path = report_paths(args.out, f"data-{label}")
    for pairs in sizes:
        report["rows"].append(measure(pairs, args))
        report["targets"] = targets(report["rows"])
        write_report(report, json_path, md_path, markdown)  # after every size: a long run keeps what it measured
    print(md_path.read_text())
    return report
