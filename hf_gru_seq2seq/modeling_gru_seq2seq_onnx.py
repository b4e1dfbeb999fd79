"""The GRU encoder-decoder run by ONNX Runtime, decoded by Transformers' own `generate()`.

`hf-gru-seq2seq-export-onnx` writes two graphs: `encoder_model.onnx` (`input_ids`, `attention_mask` -> `final_state`,
the decoder's initial state, batch-first) and `decoder_model.onnx` (one step: `input_ids` (B, 1), `state` (L, B, H),
`context` (B, H) -> `logits` (B, V), `new_state`). `GRUSeq2SeqOnnxForConditionalGeneration` runs them in
onnxruntime behind the interface `generate()` expects, with the PyTorch model's generation hooks and recurrent
cache, so greedy, beam search, sampling and every logits processor work as they do in PyTorch.

This file travels with the export as remote code: it imports torch, transformers, onnxruntime and, relatively, the
configuration and modeling files beside it, never the rest of this package.
"""

import numpy as np
import onnxruntime
import torch
from torch import nn
from transformers import GenerationConfig, PreTrainedModel
from transformers.modeling_outputs import Seq2SeqLMOutput
from transformers.utils import cached_file

from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import (
    CACHE_FIELD,
    GRUSeq2SeqEncoderOutput,
    GRUSeq2SeqGenerationMixin,
    _advanced_cache,
    _as_encoder_output,
    _merge_cache_arguments,
    check_ids,
    decoder_start_state,
    source_mask,
)

ENCODER_FILE, DECODER_FILE = "encoder_model.onnx", "decoder_model.onnx"
QUANTIZED_SUFFIX = "_quantized"  # encoder_model_quantized.onnx: the dynamic int8 graphs


def onnx_file_names(quantized: bool = False) -> tuple[str, str]:
    """The encoder and decoder graph files of an export, fp32 or int8."""
    suffix = QUANTIZED_SUFFIX if quantized else ""
    return tuple(name.replace(".onnx", f"{suffix}.onnx") for name in (ENCODER_FILE, DECODER_FILE))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu").contiguous().numpy()


class GRUSeq2SeqOnnxEncoder(nn.Module):
    """What `generate()` calls as the encoder: the encoder graph, returning the encoder output it expects."""

    main_input_name = "input_ids"

    def __init__(self, session: onnxruntime.InferenceSession, config: GRUSeq2SeqConfig):
        super().__init__()
        self.session, self.config = session, config

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, return_dict=True, validate_ids=True,
                **unused) -> GRUSeq2SeqEncoderOutput:
        if inputs_embeds is not None or input_ids is None:
            raise ValueError("the exported encoder reads input_ids (inputs_embeds are not part of the ONNX graph)")
        mask = source_mask(input_ids, None, attention_mask)
        if validate_ids:  # ONNX's Gather would fail on ids past the vocabulary and wrap negative ones silently
            check_ids([("input_ids", input_ids, self.config.vocab_size, mask)], mask)
        (final_state,) = self.session.run(None, {"input_ids": _numpy(input_ids.long()),
                                                 "attention_mask": _numpy(mask.long())})
        return GRUSeq2SeqEncoderOutput(final_state=torch.from_numpy(final_state))  # (B, L, H)


class GRUSeq2SeqOnnxForConditionalGeneration(GRUSeq2SeqGenerationMixin, PreTrainedModel):
    """
    `GRUSeq2SeqForConditionalGeneration`'s inference twin, on the CPU with ONNX Runtime: same `generate()`, same
    generation config, same outputs (logits within 1e-4 of PyTorch's). Load an export with `from_pretrained(folder)`
    (`subfolder="onnx"` for a model repo that carries its export there, `quantized=True` for the int8 graphs).
    """

    config_class = GRUSeq2SeqConfig
    main_input_name = "input_ids"
    base_model_prefix = "onnx"

    def __init__(self, config: GRUSeq2SeqConfig, encoder_session: onnxruntime.InferenceSession,
                 decoder_session: onnxruntime.InferenceSession):
        super().__init__(config)
        self.encoder = GRUSeq2SeqOnnxEncoder(encoder_session, config)
        self.decoder_session = decoder_session
        self.generation_config = self.default_generation_config(config)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def get_encoder(self):
        return self.encoder

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, subfolder: str = "",
                        quantized: bool = False, providers=None, session_options=None, **kwargs):
        """
        Load an export (a folder or a Hub repo). `providers` / `session_options` go to `onnxruntime.InferenceSession`
        (default: the CPU provider); download keywords (`revision`, `token`, `cache_dir`, `local_files_only`, ...) to
        the Hub. A generation config saved beside the graphs is used.
        """
        hub = {key: kwargs[key] for key in ("cache_dir", "force_download", "proxies", "token", "revision",
                                            "local_files_only") if key in kwargs}
        path = str(pretrained_model_name_or_path)
        if config is None:
            config = GRUSeq2SeqConfig.from_pretrained(path, subfolder=subfolder, **hub)
        files = [cached_file(path, name, subfolder=subfolder, **hub) for name in onnx_file_names(quantized)]
        sessions = [onnxruntime.InferenceSession(f, sess_options=session_options,
                                                 providers=providers or ["CPUExecutionProvider"]) for f in files]
        model = cls(config, *sessions)
        try:
            model.generation_config = GenerationConfig.from_pretrained(path, subfolder=subfolder, **hub)
        except OSError:
            pass  # no generation_config.json: the translation defaults
        return model.eval()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None, cache=None,
                past_key_values=None, use_cache=None, return_dict=None, validate_ids=True, **unused):
        """As the PyTorch model's `forward` without labels: the decoder graph runs once per decoder token."""
        cache = _merge_cache_arguments(cache, past_key_values)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, validate_ids=validate_ids)
        final_state = _as_encoder_output(encoder_outputs).final_state  # (B, L, H)
        if validate_ids:
            check_ids([("decoder_input_ids", decoder_input_ids, self.config.decoder_vocab_size, None)])
        state = decoder_start_state(final_state, cache, decoder_input_ids, None)  # (L, B, H)
        feed = {"state": _numpy(state), "context": _numpy(final_state[:, -1])}
        ids, logits = _numpy(decoder_input_ids.long()), []
        for t in range(ids.shape[1]):
            step_logits, feed["state"] = self.decoder_session.run(None, {"input_ids": ids[:, t:t + 1], **feed})
            logits.append(step_logits)
        logits = torch.from_numpy(logits[0][:, None] if len(logits) == 1 else np.stack(logits, 1))  # (B, T, V)
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        cache = _advanced_cache(cache, torch.from_numpy(feed["state"]), ids.shape[1]) if use_cache else None
        out = Seq2SeqLMOutput(logits=logits, **{CACHE_FIELD: cache})
        return out if return_dict is not False else out.to_tuple()


__all__ = ["GRUSeq2SeqOnnxForConditionalGeneration", "onnx_file_names"]
