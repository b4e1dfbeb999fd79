"""Translation quality of ONNX Runtime decoding next to PyTorch's, on a test split: what the int8 graphs cost in
BLEU, and how often each ONNX Runtime decoder writes exactly PyTorch's sentence.

    python -m benchmarks quality --model outputs/number-words
    python -m benchmarks quality --model outputs/tatoeba-d2l --tatoeba_file ../shared/data/fra-eng.txt

Translates the test split (the built-in number-words one, or the Tatoeba protocol's with `--tatoeba_file`, scored
lowercased as the README's results are) with PyTorch `generate()` on the CPU, ONNX Runtime fp32 and ONNX Runtime int8
(the model's ONNX export, made in a temporary folder unless `--onnx` names one), each greedily and with 4 beams (the
rest of the decoding, such as the length limit, from the model's generation config). Prints JSON: BLEU, chrF and
exact match of each, the int8 - fp32 BLEU change, the share of sentences identical to PyTorch's output, and the
largest step-logit difference from PyTorch's along the references (teacher-forced).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
from hf_gru_seq2seq.metrics import load_translation_metric
from hf_gru_seq2seq.translate import translate_lines

from .model_files import export_onnx_fresh, load_onnx_models
from .report import same_lines, versions

DECODINGS = {"greedy": 1, "beam4": 4}  # name -> num_beams
SCORES = ("bleu", "chrf", "exact_match")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks quality", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a trained model folder (with its tokenizer)")
    p.add_argument("--onnx", help="an existing export of --model with its int8 graphs (default: export to a temp dir)")
    p.add_argument("--tatoeba_file", help="d2l's fra-eng.txt: score the Tatoeba protocol's test split (lowercased)")
    p.add_argument("--source_lang", default="en")
    p.add_argument("--target_lang", default="fr")
    p.add_argument("--max_sentences", type=int, default=None, help="the first N test sentences only")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: torch's)")
    p.add_argument("--out", help="also write the JSON to this file")
    return p


def load_test_split(args) -> tuple[list[str], list[str], str]:
    """Sources, references and a description of the test split the flags name."""
    from hf_gru_seq2seq.data import number_words_dataset, tatoeba_protocol_splits

    if args.tatoeba_file:
        test = tatoeba_protocol_splits(args.tatoeba_file, args.source_lang, args.target_lang)["test"]
        name = f"Tatoeba protocol test split of {args.tatoeba_file}"
    else:
        test = number_words_dataset()["test"]
        name = "number-words test split"
    pairs = test["translation"][: args.max_sentences]
    return [p[args.source_lang] for p in pairs], [p[args.target_lang] for p in pairs], name


def translations(translators: dict, tokenizer, sources: list[str], batch_size: int) -> dict:
    """translator -> decoding -> one output line per source."""
    return {name: {decoding: translate_lines(model, tokenizer, sources, batch_size, num_beams=beams, do_sample=False)
                   for decoding, beams in DECODINGS.items()}
            for name, model in translators.items()}


@torch.no_grad()
def step_logits_gap(translators: dict, tokenizer, sources: list[str], references: list[str], batch_size: int) -> dict:
    """The largest |logit| difference from PyTorch's of each ONNX Runtime decoder, every step of every reference
    decoded teacher-forced (pad positions left out)."""
    model, gaps = translators["pytorch"], {name: 0.0 for name in translators if name != "pytorch"}
    for start in range(0, len(sources), batch_size):
        inputs = tokenizer(sources[start:start + batch_size], return_tensors="pt", padding=True)
        labels = tokenizer(text_target=references[start:start + batch_size], return_tensors="pt", padding=True)
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels["input_ids"])
        real = labels["attention_mask"].bool()  # (B, T)
        expected = model(**inputs, decoder_input_ids=decoder_input_ids).logits[real]
        for name in gaps:
            got = translators[name](**inputs, decoder_input_ids=decoder_input_ids).logits[real]
            gaps[name] = max(gaps[name], float((got - expected).abs().max()))
    return gaps


def _scores(metric, lines: list[str], references: list[str], lowercase: bool) -> dict:
    result = metric.compute(predictions=lines, references=[[r] for r in references], lowercase=lowercase)
    return {k: round(result[k], 2) for k in SCORES}


def summarise(outputs: dict, references: list[str], lowercase: bool) -> dict:
    """Scores of every translator and decoding, the int8 - fp32 BLEU change and the shares identical to PyTorch."""
    metric = load_translation_metric()
    scores = {name: {d: _scores(metric, lines, references, lowercase) for d, lines in by_decoding.items()}
              for name, by_decoding in outputs.items()}
    identical = {name: {d: round(same_lines(lines, outputs["pytorch"][d]), 4) for d, lines in by_decoding.items()}
                 for name, by_decoding in outputs.items() if name != "pytorch"}
    change = {d: round(scores["ort-int8"][d]["bleu"] - scores["ort-fp32"][d]["bleu"], 2) for d in DECODINGS}
    return {"scores": scores, "int8_minus_fp32_bleu": change, "identical_to_pytorch": identical}


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    sources, references, data = load_test_split(args)
    model = GRUSeq2SeqForConditionalGeneration.from_pretrained(args.model).float().eval()  # on the CPU, as ORT
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    with tempfile.TemporaryDirectory(prefix="gru-quality-") as tmp:
        onnx_dir = Path(args.onnx) if args.onnx else Path(tmp) / "onnx"
        if not args.onnx:
            export_onnx_fresh(Path(args.model), onnx_dir)
        translators = {"pytorch": model, **load_onnx_models(onnx_dir, args.threads or torch.get_num_threads())}
        outputs = translations(translators, tokenizer, sources, args.batch_size)
        gaps = step_logits_gap(translators, tokenizer, sources, references, args.batch_size)
    lowercase = bool(args.tatoeba_file)
    result = {"model": args.model, "data": data, "sentences": len(sources), "bleu_lowercase": lowercase,
              "decodings": {d: {"num_beams": b} for d, b in DECODINGS.items()},
              **summarise(outputs, references, lowercase), "max_step_logit_difference": gaps,
              "versions": versions("onnxruntime"),
              "elapsed_s": round(time.perf_counter() - start, 1)}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return result
