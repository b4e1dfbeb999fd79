"""Translate lines of text with a saved model (a folder or a Hub id), batched, keeping the input order."""

import argparse
import sys
from pathlib import Path

import torch
import transformers
from huggingface_hub.utils import HFValidationError, validate_repo_id
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import hf_gru_seq2seq  # noqa: F401  (registers the model with the Auto classes)

from .pipeline_gru_seq2seq import list_for_a_line, unknown_words


def check_model_reference(name: str, flag: str = "--model") -> None:
    """
    Fail at once, naming `flag`, when `name` is no folder here and cannot be meant for the Hub either: it starts
    like a path (`./`, `../`, `/`, `~`), has more than one `/`, starts with a folder that exists here (a mistyped
    `outputs/numbr-words`), or is no valid repo id. Transformers would otherwise spend its retries asking the Hub.
    """
    if Path(name).expanduser().exists():
        return
    first = Path(name).parts[0] if Path(name).parts else ""
    try:
        validate_repo_id(name)
        valid_repo_id = True
    except HFValidationError:
        valid_repo_id = False
    if (name.startswith((".", "/", "~")) or name.count("/") > 1 or not valid_repo_id
            or ("/" in name and Path(first).is_dir())):
        raise FileNotFoundError(f"{flag} {name}: no such folder")


def load_onnx(model_name_or_path: str, quantized: bool = False):
    """The ONNX Runtime model of an export and its tokenizer: `model_name_or_path` is the export itself (a folder
    holding encoder_model.onnx, or a Hub repo of one) or a model folder or repo carrying it in `onnx/`."""
    from .modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration, onnx_file_names

    check_model_reference(model_name_or_path)
    encoder_file, folder = onnx_file_names(quantized)[0], Path(model_name_or_path)
    if folder.is_dir():
        subfolder = "" if (folder / encoder_file).is_file() else "onnx"
        if not (folder / subfolder / encoder_file).is_file():
            raise FileNotFoundError(f"no {encoder_file} in {folder} or {folder / 'onnx'}: export with "
                                    f"hf-gru-seq2seq-export-onnx {folder} {folder / 'onnx'}"
                                    + (" --quantize" if quantized else ""))
    else:  # a Hub repo: its own export, or one in its onnx/ folder
        from huggingface_hub import file_exists

        subfolder = "" if file_exists(model_name_or_path, encoder_file) else "onnx"
    model = GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(model_name_or_path, subfolder=subfolder,
                                                                   quantized=quantized)
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, subfolder=subfolder, trust_remote_code=True)
    return model, tokenizer


def load(model_name_or_path: str, device: str | None = None, trust_remote_code: bool = False, dtype=None):
    """Model (eval mode, on `device`: default CUDA when present) and its tokenizer."""
    check_model_reference(model_name_or_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # This package registered its classes with the Auto classes on import, so no remote code is needed.
    model = AutoModelForSeq2SeqLM.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code,
                                                  dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    return model, tokenizer


def unknown_words_warning(tokenizer, lines: list[str]) -> str | None:
    """One line naming the words of `lines` that the tokenizer reads as `<unk>` (each once, with the number of the
    first line it is on), or None when there are none. The lines are still translated."""
    first_line = {}
    for number, line in enumerate(lines, 1):
        for word in unknown_words(tokenizer, line):
            first_line.setdefault(word, number)
    if not first_line:
        return None
    named = list_for_a_line([f'"{word}" (line {number})' for word, number in first_line.items()])
    return f"warning: {len(first_line)} word(s) unknown to the tokenizer, translated as <unk>: {named}"


def one_line(text: str) -> str:
    """A translation as one line: a line break the model emitted would shift every later output line."""
    return " ".join(text.splitlines()).strip()


@torch.no_grad()
def translate_lines(model, tokenizer, lines: list[str], batch_size: int = 64, progress: bool = False,
                    **generate_kwargs) -> list[str]:
    """
    One translation per line, in order. Lines are decoded in batches of similar length (less padding), and a
    blank line gives an empty translation without reaching the model.
    """
    results = [""] * len(lines)
    todo = sorted((i for i, line in enumerate(lines) if line.strip()), key=lambda i: len(lines[i]))
    batches = [todo[start:start + batch_size] for start in range(0, len(todo), batch_size)]
    for batch in tqdm(batches, desc="Translating", unit="batch", disable=not progress):
        inputs = tokenizer([lines[i].strip() for i in batch], return_tensors="pt", padding=True).to(model.device)
        outputs = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                 **generate_kwargs)
        for i, text in zip(batch, tokenizer.batch_decode(outputs, skip_special_tokens=True)):
            results[i] = one_line(text)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a saved model folder or a Hub repo id")
    parser.add_argument("--input", help="a text file, one sentence a line (default: stdin)")
    parser.add_argument("--output", help="where to write translations (default: stdout)")
    parser.add_argument("--num_beams", type=int, default=None, help="beam size (default: the model's)")
    parser.add_argument("--max_new_tokens", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--trust_remote_code", action="store_true", help="allow a tokenizer's saved code")
    parser.add_argument("--onnx", action="store_true",
                        help="translate with ONNX Runtime on the CPU, from an export (hf-gru-seq2seq-export-onnx): "
                             "--model is the export, or a model folder or repo holding it in onnx/")
    parser.add_argument("--quantized", action="store_true", help="with --onnx: the int8 graphs")
    args = parser.parse_args(argv)
    transformers.utils.logging.disable_progress_bar()  # stderr keeps to what the user must read

    if args.onnx:
        model, tokenizer = load_onnx(args.model, args.quantized)
    elif args.quantized:
        parser.error("--quantized goes with --onnx")
    else:
        model, tokenizer = load(args.model, args.device, args.trust_remote_code)
    if args.input:
        with open(args.input, encoding="utf-8") as f:
            text = f.read()
    else:
        text = sys.stdin.read()
    # Lines end at "\n" only (text mode maps "\r\n" to it): `splitlines` would also break at form feeds, U+2028,
    # ..., and then the output would no longer have one line per input line.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no new one
    if warning := unknown_words_warning(tokenizer, lines):
        print(warning, file=sys.stderr)
    kwargs = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v}
    translations = translate_lines(model, tokenizer, lines, args.batch_size, progress=bool(args.input), **kwargs)
    text = "\n".join(translations) + ("\n" if translations else "")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
