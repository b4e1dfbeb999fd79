#!/usr/bin/env python
"""How often half-precision greedy output equals float32's, for a trained model on real sentences.

    python benchmarks/half_precision_match.py --model outputs/tatoeba --tatoeba_file ../shared/data/fra-eng.txt

Translates the protocol's test split greedily with the model in float32, then cast whole to bfloat16 and to float16
(`model.to(dtype)`: weights and GRUs in half precision, no autocast), and prints the share of sentences whose output
is identical, as JSON.
"""

import argparse
import json

import torch

from hf_gru_seq2seq.data import tatoeba_protocol_splits
from hf_gru_seq2seq.translate import load, translate_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tatoeba_file", required=True)
    parser.add_argument("--source_lang", default="en")
    parser.add_argument("--max_sentences", type=int, default=2000)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    test = tatoeba_protocol_splits(args.tatoeba_file, args.source_lang, "fr" if args.source_lang == "en" else "en")
    lines = [pair[args.source_lang] for pair in test["test"]["translation"]][: args.max_sentences]
    model, tokenizer = load(args.model, args.device)
    outputs = {}
    for name, dtype in [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)]:
        outputs[name] = translate_lines(model.to(dtype), tokenizer, lines, batch_size=256, num_beams=1)
    result = {"sentences": len(lines), "device": str(model.device)}
    for name in ("bf16", "fp16"):
        result[f"{name}_matches_fp32"] = sum(a == b for a, b in zip(outputs[name], outputs["fp32"])) / len(lines)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
