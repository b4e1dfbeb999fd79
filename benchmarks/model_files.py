"""Saved models and their ONNX exports, for the commands that run ONNX Runtime (`cpu`, `quality`): a randomly
initialised model of a benchmark size saved with a tokenizer (an export needs one), the export itself in a fresh
process, and the ONNX Runtime models with a given thread count."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch
from tokenizers import models as token_models

from hf_gru_seq2seq.vocabulary import SPACE, SPECIAL_TOKENS, UNK, build_untrained, wrap_tokenizer

from .config import Size
from .models import build_model

EXPORT_CODE = "from hf_gru_seq2seq.cli import export_onnx_main; export_onnx_main()"


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer of `vocab_size` ids: the package's special tokens, then made-up words `w4`, `w5`, ....
    What an export needs beside a randomly initialised model; the benchmarks feed that model ids, never text."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update((f"{SPACE}w{i}", i) for i in range(len(SPECIAL_TOKENS), vocab_size))  # as the word splitter marks them
    tokenizer = build_untrained("word")
    tokenizer.model = token_models.WordLevel(vocab, unk_token=UNK)
    return wrap_tokenizer(tokenizer)


def save_random_model(size: Size, folder: Path, seed: int = 0) -> Path:
    """A randomly initialised package model of `size` and its `word_tokenizer`, saved in `folder`."""
    model = build_model(size, torch.device("cpu"), seed).eval()
    model.save_pretrained(folder)
    word_tokenizer(size.vocab).save_pretrained(folder)
    return Path(folder)


def export_onnx_fresh(model_dir: Path, out_dir: Path) -> float:
    """`hf-gru-seq2seq-export-onnx MODEL OUT --quantize` in a fresh Python process (the exporter can fix a dynamic
    size after an earlier torch.export in the same process); returns its wall seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", EXPORT_CODE, str(model_dir), str(out_dir), "--quantize"],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ONNX export of {model_dir} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return round(time.perf_counter() - start, 1)


def session_options(threads: int):
    """onnxruntime session options running one graph at a time on `threads` threads (torch's own setting)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options


def load_onnx_models(onnx_dir: Path, threads: int) -> dict:
    """{"ort-fp32": ..., "ort-int8": ...}: the export's fp32 and int8 graphs behind `generate()`."""
    from hf_gru_seq2seq.modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration

    return {name: GRUSeq2SeqOnnxForConditionalGeneration.from_pretrained(onnx_dir, quantized=quantized,
                                                                         session_options=session_options(threads))
            for name, quantized in (("ort-fp32", False), ("ort-int8", True))}
