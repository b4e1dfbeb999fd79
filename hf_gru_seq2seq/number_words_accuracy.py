"""Exact-match accuracy of a number-words model on 0-1,000 and on the built-in test split (see scripts/)."""

import argparse
import json

from .data import number_to_words, number_words_dataset
from .translate import load, translate_lines


def exact_match(model, tokenizer, sources: list[str], references: list[str], **generate_kwargs) -> dict:
    """`{"exact_match": percent, "count": n, "wrong": [(source, output, reference), ...first 10]}`."""
    outputs = translate_lines(model, tokenizer, sources, **generate_kwargs)
    wrong = [(s, o, r) for s, o, r in zip(sources, outputs, references) if o != r]
    return {"exact_match": round(100 * (1 - len(wrong) / len(sources)), 2), "count": len(sources),
            "wrong": wrong[:10]}


def accuracy_report(model_dir: str, uppercase: bool = False, device: str | None = None) -> dict:
    """Both accuracies of the model in `model_dir`; `uppercase` types the sources in capitals."""
    model, tokenizer = load(model_dir, device)
    case = str.upper if uppercase else str
    numbers = list(range(1001))
    test = number_words_dataset()["test"]["translation"]
    return {
        "0-1000": exact_match(model, tokenizer, [case(number_to_words(n, "en")) for n in numbers],
                              [number_to_words(n, "fr") for n in numbers]),
        "test": exact_match(model, tokenizer, [case(p["en"]) for p in test], [p["fr"] for p in test]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="a folder written by the training job on the built-in data")
    parser.add_argument("--uppercase", action="store_true", help="type the English numbers in capitals")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    report = accuracy_report(args.model, args.uppercase, args.device)
    for name, result in report.items():
        print(f"{name}: {result['exact_match']:.2f}% exact ({result['count']:,} numbers)")
        for source, output, reference in result["wrong"][:3]:
            print(f"  {source!r} -> {output!r}, expected {reference!r}")
    print(json.dumps({name: result["exact_match"] for name, result in report.items()}))
