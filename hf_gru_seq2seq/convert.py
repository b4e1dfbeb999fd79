"""d2l models -> `GRUSeq2SeqForConditionalGeneration`: from the module pair (`from_d2l`), from an `EncoderDecoder`'s
state dict (`from_d2l_state_dict`), or from a checkpoint file into a saved folder (`convert_d2l_checkpoint`, CLI
`hf-gru-seq2seq-convert-d2l`)."""

import argparse
from pathlib import Path

import torch
from torch import nn

from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import GRUSeq2SeqForConditionalGeneration


def from_d2l(encoder: nn.Module, decoder: nn.Module, *, pad_token_id: int, bos_token_id: int, eos_token_id: int,
             **config_kwargs) -> GRUSeq2SeqForConditionalGeneration:
    """
    The model equivalent to d2l's `Seq2SeqEncoder` / `Seq2SeqDecoder` pair (modules with `embedding`, `rnn` and,
    for the decoder, `dense`). Sizes, layers and dropout are read off the modules.
    """
    if isinstance(decoder.dense.weight, nn.parameter.UninitializedParameter):
        raise ValueError("the d2l decoder's LazyLinear `dense` is uninitialised: run one batch through it first")
    state_dict = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state_dict.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    rnn = encoder.rnn if isinstance(encoder.rnn, nn.GRU) else encoder.rnn.rnn  # d2l wraps nn.GRU in d2l.GRU
    config_kwargs.setdefault("dropout", rnn.dropout)
    return from_d2l_state_dict(state_dict, pad_token_id=pad_token_id, bos_token_id=bos_token_id,
                               eos_token_id=eos_token_id, **config_kwargs)


def from_d2l_state_dict(state_dict: dict[str, torch.Tensor], *, pad_token_id: int, bos_token_id: int,
                        eos_token_id: int, **config_kwargs) -> GRUSeq2SeqForConditionalGeneration:
    """
    The model from the state dict of a d2l `EncoderDecoder`: keys `encoder.embedding.weight`,
    `encoder.rnn.weight_ih_l0` (or `encoder.rnn.rnn.weight_ih_l0` when d2l's `GRU` wrapper holds the `nn.GRU`), ...,
    `decoder.dense.weight`. Sizes come from the tensors; dropout is not stored there, so it is the config default
    unless given.
    """
    state_dict = {k.replace(".rnn.rnn.", ".rnn."): v for k, v in state_dict.items()}
    expected = ["encoder.embedding.weight", "encoder.rnn.weight_ih_l0", "decoder.embedding.weight",
                "decoder.rnn.weight_ih_l0", "decoder.dense.weight", "decoder.dense.bias"]
    missing = [k for k in expected if k not in state_dict]
    if missing:
        raise ValueError(f"not a d2l GRU seq2seq state dict: missing {missing}")
    vocab_size, embedding_size = state_dict["encoder.embedding.weight"].shape
    decoder_vocab_size, hidden_size = state_dict["decoder.dense.weight"].shape
    num_layers = sum(1 for k in state_dict if k.startswith("encoder.rnn.weight_ih_l") and "reverse" not in k)
    config = GRUSeq2SeqConfig(
        vocab_size=vocab_size, decoder_vocab_size=decoder_vocab_size, embedding_size=embedding_size,
        hidden_size=hidden_size, num_hidden_layers=num_layers,
        bidirectional_encoder=any("reverse" in k for k in state_dict if k.startswith("encoder.rnn.")),
        pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **config_kwargs,
    )
    model = GRUSeq2SeqForConditionalGeneration(config)
    renamed = {("lm_head." + k.removeprefix("decoder.dense.")) if k.startswith("decoder.dense.") else "model." + k: v
               for k, v in state_dict.items()}
    model_keys = set(model.state_dict())
    unexpected, absent = sorted(set(renamed) - model_keys), sorted(model_keys - set(renamed))
    if unexpected or absent:
        raise ValueError(f"d2l state dict does not match the model: unexpected {unexpected}, missing {absent}")
    model.load_state_dict(renamed)
    return model.eval()


def convert_d2l_checkpoint(checkpoint: str | Path, output_dir: str | Path, *, pad_token_id: int, bos_token_id: int,
                           eos_token_id: int, dropout: float = 0.2) -> GRUSeq2SeqForConditionalGeneration:
    """Load the state dict without unpickling code (`weights_only=True`), build the model, save it (safetensors)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no d2l checkpoint at {checkpoint}")
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{checkpoint} holds a {type(state_dict).__name__}, not a state dict")
    model = from_d2l_state_dict(
        state_dict, pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, dropout=dropout
    )
    model.save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", help="file written by torch.save(model.state_dict()) for a d2l Seq2Seq model")
    parser.add_argument("output_dir")
    parser.add_argument("--pad_token_id", type=int, required=True, help="d2l's tgt_vocab['<pad>']")
    parser.add_argument("--bos_token_id", type=int, required=True, help="d2l's tgt_vocab['<bos>']")
    parser.add_argument("--eos_token_id", type=int, required=True, help="d2l's tgt_vocab['<eos>']")
    parser.add_argument("--dropout", type=float, default=0.2, help="not stored in a state dict; used if trained on")
    args = parser.parse_args(argv)
    convert_d2l_checkpoint(args.checkpoint, args.output_dir, pad_token_id=args.pad_token_id,
                           bos_token_id=args.bos_token_id, eos_token_id=args.eos_token_id, dropout=args.dropout)
    print(f"saved to {args.output_dir}")
