"""Convert a d2l `EncoderDecoder` checkpoint (a state dict saved with `torch.save`) into a saved model folder."""

import argparse
from pathlib import Path

import torch

from .modeling_gru_seq2seq import GRUSeq2SeqForConditionalGeneration


def convert_d2l_checkpoint(checkpoint: str | Path, output_dir: str | Path, *, pad_token_id: int, bos_token_id: int,
                           eos_token_id: int, dropout: float = 0.2) -> GRUSeq2SeqForConditionalGeneration:
    """Load the state dict without unpickling code (`weights_only=True`), build the model, save it (safetensors)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no d2l checkpoint at {checkpoint}")
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{checkpoint} holds a {type(state_dict).__name__}, not a state dict")
    model = GRUSeq2SeqForConditionalGeneration.from_d2l_state_dict(
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
