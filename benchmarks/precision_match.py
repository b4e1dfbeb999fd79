"""How often half-precision greedy output equals float32's: `half_precision_match_rate` on given ids (the GPU
benchmark calls it on its random model), and the `match` command on a trained model and real sentences:

    python -m benchmarks match --model outputs/tatoeba --tatoeba_file ../shared/data/fra-eng.txt

which translates the Tatoeba protocol's test split greedily with the model in float32, then with copies of it cast
whole to bfloat16 and to float16 (weights and GRUs in half precision, no autocast), and prints the share of
sentences whose output is identical, as JSON. Decoding is eager (`disable_compile`): on CUDA Transformers would
otherwise compile it.
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
import torch.nn.functional as F

from .config import WEIGHT_DTYPES
from .report import same_lines, same_rows


def _pad_to(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return F.pad(t, (0, width - t.shape[1]), value=value) if t.shape[1] < width else t


def _compare(out: torch.Tensor, reference: torch.Tensor, pad: int, fp32_mean_length: float) -> dict:
    width = max(out.shape[1], reference.shape[1])
    a, b = _pad_to(out, width, pad), _pad_to(reference, width, pad)  # (B, width) each
    return {"rows": same_rows(a, b), "tokens": a.eq(b).float().mean().item(),
            "fp32_mean_length": fp32_mean_length, "error": None}


def _mean_length_before_eos(reference: torch.Tensor, eos: int | None) -> float:
    """Tokens decoded before eos (or the end), averaged over rows: near 0 means the comparison is trivial."""
    body = reference[:, 1:]
    stopped = body.eq(eos).cumsum(1).gt(0) if eos is not None else torch.zeros_like(body, dtype=torch.bool)
    return (~stopped).sum(1).float().mean().item()


@torch.no_grad()
def half_precision_match_rate(model, input_ids, attention_mask, new_tokens: int | None = None,
                              dtypes=("bf16", "fp16"), details: bool = False) -> dict:
    """
    Fraction of rows whose greedy output with the weights in each half dtype equals, token for token, the output of
    the same model in float32 on the same inputs. Decoding stops at eos as usual (`max_new_tokens=new_tokens`,
    default source length + 10); rows are compared padded.

    `model` is left as it was (copies are converted). Returns `{"bf16": 0.97, "fp16": 1.0}`; a dtype that fails on
    this device maps to None. With `details`, each value is a dict: `rows`, `tokens` (fraction of equal positions,
    over the padded width), `fp32_mean_length` (tokens before eos in the fp32 output: near 0, the comparison says
    little), `error`.
    """
    new_tokens = new_tokens or input_ids.shape[1] + 10
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    was_training = model.training
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "num_beams": 1, "do_sample": False,
              "max_new_tokens": new_tokens, "disable_compile": True}
    try:
        base = model.eval() if model.dtype == torch.float32 else copy.deepcopy(model).float().eval()
        reference = base.generate(**kwargs)
        fp32_mean_length = _mean_length_before_eos(reference, model.config.eos_token_id)
        result = {}
        for name in dtypes:
            try:
                half = copy.deepcopy(base).to(WEIGHT_DTYPES[name]).eval()
                result[name] = _compare(half.generate(**kwargs), reference, pad, fp32_mean_length)
                del half
            except Exception as error:  # noqa: BLE001 - e.g. a dtype this device cannot run
                result[name] = {"rows": None, "tokens": None, "fp32_mean_length": fp32_mean_length,
                                "error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        model.train(was_training)
    return result if details else {k: v["rows"] for k, v in result.items()}


def main(argv: list[str] | None = None) -> dict:
    """The `match` command: the share of Tatoeba test sentences whose bf16 and fp16 greedy output equals fp32's."""
    from hf_gru_seq2seq.data import tatoeba_protocol_splits
    from hf_gru_seq2seq.translate import load, translate_lines

    parser = argparse.ArgumentParser(prog="python -m benchmarks match", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model folder")
    parser.add_argument("--tatoeba_file", required=True, help="d2l's fra-eng.txt (the protocol's test split is read)")
    parser.add_argument("--source_lang", default="en")
    parser.add_argument("--max_sentences", type=int, default=2000)
    parser.add_argument("--device", default=None, help="default: cuda if available")
    args = parser.parse_args(argv)

    target_lang = "fr" if args.source_lang == "en" else "en"
    test = tatoeba_protocol_splits(args.tatoeba_file, args.source_lang, target_lang)["test"]
    lines = [pair[args.source_lang] for pair in test["translation"]][: args.max_sentences]
    model, tokenizer = load(args.model, args.device)
    model = model.float()
    outputs = {}
    for name in ("fp32", "bf16", "fp16"):
        converted = model if name == "fp32" else copy.deepcopy(model).to(WEIGHT_DTYPES[name])
        outputs[name] = translate_lines(converted, tokenizer, lines, batch_size=256, num_beams=1, disable_compile=True)
    result = {"sentences": len(lines), "device": str(model.device)}
    for name in ("bf16", "fp16"):
        result[f"{name}_matches_fp32"] = same_lines(outputs[name], outputs["fp32"])
    print(json.dumps(result))
    return result
