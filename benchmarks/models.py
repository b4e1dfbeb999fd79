"""The package model as the benchmarks build and call it: a config of a benchmark size, its training loss, a
`generate()` that decodes a fixed number of tokens (eager or with Transformers' compiled decoding), and a watch on
the dtype its GRUs really run in."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from transformers.generation.configuration_utils import CompileConfig

from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration

from .config import BOS, EOS, PAD, Size


def package_config(size: Size, gru_autocast: str | None = None) -> GRUSeq2SeqConfig:
    extra = {} if gru_autocast is None else {"gru_autocast": gru_autocast}
    return GRUSeq2SeqConfig(
        vocab_size=size.vocab, embedding_size=size.emb, hidden_size=size.hid, num_hidden_layers=size.layers,
        dropout=size.dropout, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
        **extra,
    )


def build_model(size: Size, device: torch.device, seed: int = 0,
                gru_autocast: str | None = None) -> GRUSeq2SeqForConditionalGeneration:
    """The package model, initialised in place on `device` (GRU weights cuDNN-flat there); `gru_autocast` None
    keeps the package's default policy."""
    torch.manual_seed(seed)
    with torch.device(device):
        return GRUSeq2SeqForConditionalGeneration(package_config(size, gru_autocast))


def package_loss(model, batch: dict) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


def compile_config(device: torch.device, backend: str = "inductor") -> CompileConfig:
    """`generate(compile_config=...)` for Transformers' compiled decoding: `fullgraph=True` with Transformers'
    defaults (inductor, "reduce-overhead"); another `backend` runs without a mode. On a CPU, Transformers compiles
    only when told to (`_compile_all_devices`)."""
    config = CompileConfig(fullgraph=True) if backend == "inductor" else \
        CompileConfig(fullgraph=True, backend=backend, mode=None)
    if device.type == "cpu":
        config._compile_all_devices = True
    return config


def generate_fixed(model, input_ids, attention_mask, new_tokens: int, num_beams: int = 1, compile=None):
    """`generate()` that decodes exactly `new_tokens` tokens (eos suppressed by `min_new_tokens`): eager, or with
    Transformers' compiled decoding when `compile` is a `CompileConfig`. (On CUDA Transformers would compile even
    without one, since the model's cache is compileable: eager calls say `disable_compile`.) Returns (B, 1 + n)."""
    return model.generate(
        input_ids=input_ids, attention_mask=attention_mask, num_beams=num_beams, do_sample=False,
        max_new_tokens=new_tokens, min_new_tokens=new_tokens, compile_config=compile, disable_compile=compile is None,
    )


def watch_gru_dtypes(module: nn.Module) -> set:
    """The dtypes the module's GRUs (every `nn.RNNBase`, the package's `GRUStack` included) output on their next call,
    collected into the returned set; the hooks then remove themselves."""
    seen, handles = set(), {}

    def hook(mod, _inputs, output):
        out = output[0].data if isinstance(output[0], PackedSequence) else output[0]
        seen.add(str(out.dtype).removeprefix("torch."))
        handles.pop(id(mod)).remove()

    for m in module.modules():
        if isinstance(m, nn.RNNBase):
            handles[id(m)] = m.register_forward_hook(hook)
    return seen
