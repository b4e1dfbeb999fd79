"""hf-gru-seq2seq: the GRU encoder-decoder of *Dive into Deep Learning* as a Transformers model.

Importing the package registers the model with the Auto classes, and marks the classes so that
`save_pretrained` also writes their code and an `auto_map` (for `trust_remote_code=True` users).
"""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import (
    GRUSeq2SeqCache,
    GRUSeq2SeqEncoderOutput,
    GRUSeq2SeqForConditionalGeneration,
    GRUSeq2SeqModel,
    GRUSeq2SeqPreTrainedModel,
)
from .pipeline_gru_seq2seq import GRUSeq2SeqTranslationPipeline

__version__ = "0.1.0"

AutoConfig.register(GRUSeq2SeqConfig.model_type, GRUSeq2SeqConfig, exist_ok=True)
AutoModel.register(GRUSeq2SeqConfig, GRUSeq2SeqModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration, exist_ok=True)
GRUSeq2SeqConfig.register_for_auto_class()
GRUSeq2SeqModel.register_for_auto_class("AutoModel")
GRUSeq2SeqForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")


def __getattr__(name):
    # The ONNX Runtime model imports onnxruntime (the `onnx` extra): loaded on first use only.
    if name == "GRUSeq2SeqOnnxForConditionalGeneration":
        from .modeling_gru_seq2seq_onnx import GRUSeq2SeqOnnxForConditionalGeneration

        return GRUSeq2SeqOnnxForConditionalGeneration
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GRUSeq2SeqCache",
    "GRUSeq2SeqConfig",
    "GRUSeq2SeqEncoderOutput",
    "GRUSeq2SeqForConditionalGeneration",
    "GRUSeq2SeqModel",
    "GRUSeq2SeqOnnxForConditionalGeneration",
    "GRUSeq2SeqPreTrainedModel",
    "GRUSeq2SeqTranslationPipeline",
]
