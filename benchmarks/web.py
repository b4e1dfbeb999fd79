"""`python -m benchmarks web --model MODEL`: the exported page (`hf-gru-seq2seq-export-web`, int8) in headless system
Chromium against Python on the same machine, in one run: the time to load the model, and the time to translate one
sentence and 100 sentences, greedy and beam, by the page (onnxruntime-web, WASM, one thread), by Python ONNX Runtime
(the same int8 graphs behind `generate()`, one thread) and by eager PyTorch (one thread). The rows are timed
interleaved, round by round, so a machine busy with other work slows them alike; each figure is the median of the
rounds. The page's times are its own (`#timing`: tokenizing, encoder and decoding), Python's `translate_lines`."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from transformers import AutoTokenizer

from hf_gru_seq2seq.data import number_words_dataset
from hf_gru_seq2seq.translate import translate_lines

from . import browser
from .model_files import session_options
from .report import cpu_name, fmt, machine, ratio, report_paths, same_lines, targets_table, versions, write_report

WORKLOADS = {"1 sentence": 1, "100 sentences": 100}
DECODINGS = {"greedy": 1, "beam": None}  # None: the generation config's beams


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained number-words model folder (the main job's)")
    parser.add_argument("--page", help="MODEL's page, already exported with its int8 graphs (default: export it here)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--loads", type=int, default=3, help="page loads timed (each in a fresh browser context)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the JSON and markdown reports")
    parser.add_argument("--name", default="cpu-web-number-words", help="report file name after the date")
    parser.add_argument("--screenshot", help="also write a phone-sized screenshot of the page here (a PNG)")
    return parser


SCREENSHOT_LINES = ["three hundred forty-two", "Twenty-One", "", "seven thousand",
                    "nine hundred ninety-nine thousand one"]


def screenshot(chromium, url: str, path: str) -> None:
    """The page on a phone-sized screen after translating a few lines typed into it (beam search)."""
    page = browser.open_page(chromium, url, viewport={"width": 390, "height": 760})
    browser.type_text(page, "\n".join(SCREENSHOT_LINES))
    browser.translate(page, beam=True)
    page.screenshot(path=path)
    page.close()


def page_load_seconds(chromium, url: str) -> dict:
    """A fresh context (empty cache) opening the page: seconds to `ready` from the Python side and from the page's
    navigation start."""
    context = chromium.new_context()
    start = time.perf_counter()
    page = context.new_page()
    page.goto(url)
    state = browser.wait_for_state(page, browser.STATES)
    wall = time.perf_counter() - start
    in_page = page.evaluate("performance.now()") / 1000
    context.close()
    if state != "ready":
        raise RuntimeError(f"the page did not load its model (state {state})")
    return {"wall_s": wall, "since_navigation_s": in_page}


def python_load_seconds(model_dir: Path, page_dir: Path) -> dict:
    from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
    from hf_gru_seq2seq.modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration

    start = time.perf_counter()
    GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(page_dir, quantized=True, session_options=session_options(1))
    AutoTokenizer.from_pretrained(page_dir)
    ort = time.perf_counter() - start
    start = time.perf_counter()
    GRUSeq2SeqForConditionalGeneration.from_pretrained(model_dir).eval()
    AutoTokenizer.from_pretrained(model_dir)
    return {"ort-int8": ort, "pytorch": time.perf_counter() - start}


def timed_python(model, tokenizer, lines, num_beams) -> tuple[float, list[str]]:
    start = time.perf_counter()
    out = translate_lines(model, tokenizer, lines, num_beams=num_beams)
    return time.perf_counter() - start, out


def timed_page(page, lines, beam: bool) -> tuple[float, list[str]]:
    page.locator("#source").fill("\n".join(lines))
    got = browser.translate(page, beam)
    return got["seconds"], got["lines"]


def measure(args, model_dir: Path, page_dir: Path, url: str, chromium) -> dict:
    from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
    from hf_gru_seq2seq.modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration

    torch.set_num_threads(1)
    sources = [p["en"] for p in number_words_dataset()["test"]["translation"]][:100]
    ort = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(page_dir, quantized=True,
                                                                session_options=session_options(1))
    pytorch = GRUSeq2SeqForConditionalGeneration.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(page_dir)
    beams = ort.generation_config.num_beams
    page = browser.open_page(chromium, url)
    times, outputs = {}, {}
    for round_index in range(args.rounds + 1):  # round 0 warms up every row
        for workload, count in WORKLOADS.items():
            lines = sources[:count]
            for decoding, num_beams in DECODINGS.items():
                num_beams = num_beams or beams
                rows = {"page": lambda: timed_page(page, lines, num_beams > 1),
                        "ort-int8": lambda: timed_python(ort, tokenizer, lines, num_beams),
                        "pytorch": lambda: timed_python(pytorch, tokenizer, lines, num_beams)}
                for impl, run in rows.items():
                    seconds, out = run()
                    key = (workload, decoding, impl)
                    outputs[key] = out
                    if round_index:
                        times.setdefault(key, []).append(seconds)
    page.close()
    loads = [page_load_seconds(chromium, url) for _ in range(args.loads)]
    return {"times": times, "outputs": outputs, "loads": loads, "beams": beams,
            "python_loads": python_load_seconds(model_dir, page_dir)}


def summarise(measured: dict) -> dict:
    rows = []
    for (workload, decoding, impl), seconds in measured["times"].items():
        rows.append({"workload": workload, "decoding": decoding, "impl": impl,
                     "median_s": round(statistics.median(seconds), 4), "all_s": [round(s, 4) for s in seconds],
                     "same_lines_as_ort": same_lines(measured["outputs"][(workload, decoding, impl)],
                                                     measured["outputs"][(workload, decoding, "ort-int8")])})
    median = {(r["workload"], r["decoding"], r["impl"]): r["median_s"] for r in rows}
    # Throughput at batch 1 is 1 / seconds for the one sentence, so page / ORT throughput = ORT s / page s.
    ratios = [ratio("page ÷ Python ORT int8, greedy throughput at batch 1",
                    median[("1 sentence", "greedy", "ort-int8")], median[("1 sentence", "greedy", "page")], 0.5)]
    for workload in WORKLOADS:
        for decoding in DECODINGS:
            ratios.append(ratio(f"page ÷ Python ORT int8, {decoding} throughput, {workload}",
                                median[(workload, decoding, "ort-int8")], median[(workload, decoding, "page")]))
    loads = measured["loads"]
    return {"rows": rows, "ratios": ratios, "beams": measured["beams"],
            "page_load_s": {"median_wall_s": round(statistics.median(x["wall_s"] for x in loads), 3),
                            "median_since_navigation_s": round(statistics.median(x["since_navigation_s"]
                                                                                 for x in loads), 3),
                            "all": loads},
            "python_load_s": {k: round(v, 3) for k, v in measured["python_loads"].items()}}


def busy_note(info: dict) -> str:
    """A warning where the load average at the start exceeded the usable CPUs: other work shared the machine."""
    load, cpus = (info.get("load_average_1_5_15_min") or [0])[0], info.get("usable_cpus") or 1
    return (f" **The machine was busy with other work** (1-minute load {load} on {cpus} CPUs): the rows shared it "
            "alike, round by round, but absolute times are slower than on an idle machine." if load > cpus else "")


def markdown(report: dict) -> str:
    info = report["machine"]
    lines = [f"# The page in headless Chromium against Python: {report['model']}", "",
             f"`{report['command']}`, {report['date']}, on {cpu_name(info)} ({info['usable_cpus']} usable CPUs, load "
             f"average {info['load_average_1_5_15_min']} at the start), Chromium {report['chromium']}, "
             f"onnxruntime-web {report['onnxruntime_web']}, onnxruntime {report['versions']['onnxruntime']}, torch "
             f"{report['versions']['torch']}, transformers {report['versions']['transformers']}. One thread for each. "
             f"Medians of {report['rounds']} interleaved rounds after a warm-up; beam = {report['beams']} beams."
             + busy_note(info), "",
             f"Model load: page {report['page_load_s']['median_wall_s']} s (fresh browser context, from navigation "
             f"to `ready`: fetching the libraries and the graphs, compiling the WASM, creating both sessions); "
             f"Python ONNX Runtime {report['python_load_s']['ort-int8']} s, PyTorch "
             f"{report['python_load_s']['pytorch']} s (in a process that has imported its libraries).", ""]
    lines += ["| workload | decoding | impl | median s | same lines as Python ORT |", "|---|---|---|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['workload']} | {r['decoding']} | {r['impl']} | {fmt(r['median_s'], 4)} | "
                     f"{r['same_lines_as_ort']:.0%} |")
    return "\n".join(lines + [""] + targets_table(report["ratios"]) + [""])


def main(argv: list[str] | None = None, chromium=None) -> dict:
    """Run the benchmark; `chromium`: a Playwright browser to use (default: start the system Chromium)."""
    args = build_parser().parse_args(argv)
    from hf_gru_seq2seq.web_export import WEB_DIR, export_web

    start = time.perf_counter()
    model_dir = Path(args.model)
    with tempfile.TemporaryDirectory(prefix="gru-web-bench-") as tmp:
        page_dir = Path(args.page) if args.page else export_web(str(model_dir), Path(tmp) / model_dir.name)
        with browser.serve(page_dir) as url, nullcontext(chromium) if chromium else browser.chromium() as chromium:
            measured = measure(args, model_dir, page_dir, url, chromium)
            if args.screenshot:
                screenshot(chromium, url, args.screenshot)
            chromium_version = chromium.version
    import json

    report = {"model": str(model_dir), "command": "python -m benchmarks web " + " ".join(argv or []),
              "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), "rounds": args.rounds,
              "chromium": chromium_version,
              "onnxruntime_web": json.loads((WEB_DIR / "node_modules/onnxruntime-web/package.json").read_text())[
                  "version"],
              "versions": versions("onnxruntime"), **summarise(measured),
              "elapsed_s": round(time.perf_counter() - start, 1)}
    json_path, md_path = report_paths(args.out, args.name)
    write_report(report, json_path, md_path, markdown)
    print(markdown(report))
    return report
