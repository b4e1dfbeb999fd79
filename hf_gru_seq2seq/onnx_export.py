"""Export a trained model to ONNX: an encoder graph and a one-step decoder graph, with dynamic batch and source length,
optionally also in dynamic int8, in a folder that translates with plain Transformers and ONNX Runtime.

`export_onnx(model_dir_or_repo, out_dir)` (CLI: `hf-gru-seq2seq-export-onnx`) writes:
- `encoder_model.onnx`: `input_ids`, `attention_mask` (batch, source_length) -> `final_state` (batch, layers, hidden);
- `decoder_model.onnx`: `input_ids` (batch, 1), `state` (layers, batch, hidden), `context` (batch, hidden) ->
  `logits` (batch, target_vocab), `new_state` (layers, batch, hidden);
- with `quantize=True`, `encoder_model_quantized.onnx` / `decoder_model_quantized.onnx` too: ONNX Runtime's dynamic
  int8 quantization of every matrix product and embedding;
- `config.json` (whose `auto_map` names the ONNX Runtime class), `generation_config.json`, the tokenizer files and the
  remote code (`modeling_gru_seq2seq_onnx.py` and the files it imports).

Both graphs come from `torch.onnx.export` (the torch.export-based exporter), opset `OPSET`. The encoder's GRU layers
are exported as their cell looped with `scan`, which the exporter keeps as an ONNX `Scan`, so any source length works.
Put the folder in a model repo's `onnx/` subfolder to share it beside the PyTorch weights (`hub.push_to_hub` does).
"""

import argparse
import logging
import shutil
import warnings
from pathlib import Path

import torch
import transformers
from torch import nn

from .modeling_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
from .modeling_gru_seq2seq_onnx import onnx_file_names

OPSET = 20
REMOTE_CODE = ("configuration_gru_seq2seq.py", "modeling_gru_seq2seq.py", "modeling_gru_seq2seq_onnx.py",
               "pipeline_gru_seq2seq.py")
ONNX_CLASS = "modeling_gru_seq2seq_onnx.GRUSeq2SeqOnnxForConditionalGeneration"


class EncoderGraph(nn.Module):
    """The encoder, as exported: ids and mask in, the decoder's initial state out (ids are not checked)."""

    def __init__(self, model: GRUSeq2SeqForConditionalGeneration):
        super().__init__()
        self.encoder = model.get_encoder()

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids, attention_mask, return_dict=True, validate_ids=False).final_state


class DecoderStepGraph(nn.Module):
    """One decoder step and the head, as exported: a token, the state and the context in, logits and state out."""

    def __init__(self, model: GRUSeq2SeqForConditionalGeneration):
        super().__init__()
        self.decoder, self.lm_head = model.get_decoder(), model.get_output_embeddings()

    def forward(self, input_ids, state, context):
        hidden, new_state, _ = self.decoder(input_ids, state, context)  # (B, 1, H), (L, B, H)
        return self.lm_head(hidden[:, -1]), new_state


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names, dynamic_shapes, opset: int):
    import onnx

    exporter_log = logging.getLogger("torch.onnx")  # e.g. "torchvision is not installed. Skipping ..."
    level, exporter_log.level = exporter_log.level, logging.ERROR
    try:
        with warnings.catch_warnings():  # the exporter's notes on axis names and its deprecations: not the user's
            warnings.filterwarnings("ignore", message="# The axis name")
            warnings.filterwarnings("ignore", category=FutureWarning)
            program = torch.onnx.export(module.eval(), args, dynamo=True, opset_version=opset,
                                        input_names=input_names, output_names=output_names,
                                        dynamic_shapes=dynamic_shapes, verbose=False)
    finally:
        exporter_log.level = level
    program.save(str(path))
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    # The exporter can fix a dynamic size to the example's without a word (seen after an earlier torch.export of
    # an nn.GRU in the same process): refuse such a graph rather than ship one that fails on other sizes.
    inputs = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
    for name, axes in dynamic_shapes.items():
        fixed = [axis for axis in axes if not inputs[name][axis].dim_param]
        if fixed:
            raise RuntimeError(f"the exporter fixed axis {fixed[0]} of {name} in {path.name} to "
                               f"{inputs[name][fixed[0]].dim_value}: export in a fresh process "
                               "(hf-gru-seq2seq-export-onnx)")


def export_onnx(model_name_or_path: str, output_dir, quantize: bool = False, opset: int = OPSET) -> Path:
    """Export the model in `model_name_or_path` (a folder or a Hub id, with its tokenizer) into `output_dir`."""
    from transformers import AutoTokenizer

    from .translate import check_model_reference

    check_model_reference(model_name_or_path, "model")
    model = GRUSeq2SeqForConditionalGeneration.from_pretrained(model_name_or_path).float().eval()
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = model.config
    batch, length = torch.export.Dim("batch"), torch.export.Dim("source_length")
    ids = torch.full((2, 5), config.eos_token_id)
    encoder_file, decoder_file = onnx_file_names()
    with torch.no_grad():
        _export(EncoderGraph(model), (ids, torch.ones_like(ids)), out / encoder_file,
                ["input_ids", "attention_mask"], ["final_state"],
                {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}, opset)
        state = torch.zeros(config.num_hidden_layers, 2, config.hidden_size)
        _export(DecoderStepGraph(model), (ids[:, :1], state, state[0]), out / decoder_file,
                ["input_ids", "state", "context"], ["logits", "new_state"],
                {"input_ids": {0: batch}, "state": {1: batch}, "context": {0: batch}}, opset)
    if quantize:
        quantize_int8(out)
    _write_companions(model, tokenizer, out)
    return out


def quantize_int8(folder) -> None:
    """ONNX Runtime's dynamic int8 quantization of both graphs (weights int8, activations quantized on the fly),
    inside the encoder's `Scan` too, beside the fp32 ones."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process first is for convolutional models
    try:
        for source, target in zip(onnx_file_names(), onnx_file_names(quantized=True)):
            quantize_dynamic(folder / source, folder / target, weight_type=QuantType.QInt8,
                             extra_options={"EnableSubgraph": True})
    finally:
        root.level = level


def _write_companions(model, tokenizer, out: Path) -> None:
    """config.json pointing the Auto class and the pipelines at the ONNX Runtime class, the generation config, the
    tokenizer, and the remote-code files that class needs."""
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.auto_map = {"AutoConfig": "configuration_gru_seq2seq.GRUSeq2SeqConfig", "AutoModelForSeq2SeqLM": ONNX_CLASS}
    config.architectures = [ONNX_CLASS.rsplit(".", 1)[1]]
    config.custom_pipelines = model._custom_pipelines()
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    package = Path(__file__).resolve().parent
    for name in REMOTE_CODE:
        shutil.copy2(package / name, out / name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help="a saved model folder or a Hub repo id (with its tokenizer)")
    parser.add_argument("output_dir", help="where to write the graphs and their companions (e.g. MODEL/onnx)")
    parser.add_argument("--quantize", action="store_true", help="also write dynamic int8 graphs (*_quantized.onnx)")
    parser.add_argument("--opset", type=int, default=OPSET, help="ONNX opset")
    args = parser.parse_args(argv)
    transformers.utils.logging.disable_progress_bar()  # stderr keeps to what the user must read
    out = export_onnx(args.model, args.output_dir, quantize=args.quantize, opset=args.opset)
    files = sorted(p.name for p in out.glob("*.onnx"))
    print(f"Exported {', '.join(files)} to {out} (opset {args.opset}); translate with: "
          f"hf-gru-seq2seq-translate --onnx --model {out}")
