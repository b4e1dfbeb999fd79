"""The hand-written reference the package is timed against: a minimal batch-first d2l GRU encoder-decoder, its
teacher-forced loss and its cached greedy loop, and the copy of a package model's weights into it.

It is written the way a PyTorch user would write it (packed sequences, `nn.GRU`), so that "model / hand" says what
the package's generality costs. Only the GRU precision policy under autocast is the package's own code
(`gru_autocast_dtype`), so that both run their GRUs in the same dtype by construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from hf_gru_seq2seq.modeling_gru_seq2seq import gru_autocast_dtype

from .config import BOS, DEFAULT_GRU_AUTOCAST, EOS, Size


class ReferenceSeq2Seq(nn.Module):
    """
    The d2l GRU encoder-decoder, batch-first, as little code as it takes: embedding + GRU encoder over the real
    tokens (packed, lengths known on the host; read last to first with `reverse_source`); the decoder reads
    `[embedding(token) ; context]`, context being the encoder's final top-layer state, and starts from the encoder's
    final state; a linear head.

    `gru_autocast` is the GRUs' precision policy under `torch.autocast`, as the package config's field of that name
    (decided by the package's `gru_autocast_dtype`).
    """

    def __init__(self, vocab: int, tgt_vocab: int, emb: int, hid: int, layers: int, dropout: float = 0.0,
                 gru_autocast: str = "torch", reverse_source: bool = False):
        super().__init__()
        if gru_autocast not in ("torch", "match", "float32"):
            raise ValueError(f"gru_autocast must be torch, match or float32, got {gru_autocast!r}")
        self.gru_autocast, self.reverse_source = gru_autocast, reverse_source
        dropout = dropout if layers > 1 else 0.0
        self.enc_emb = nn.Embedding(vocab, emb)
        self.enc_rnn = nn.GRU(emb, hid, layers, dropout=dropout, batch_first=True)
        self.dec_emb = nn.Embedding(tgt_vocab, emb)
        self.dec_rnn = nn.GRU(emb + hid, hid, layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hid, tgt_vocab)

    @classmethod
    def for_size(cls, size: Size, gru_autocast: str = "torch") -> ReferenceSeq2Seq:
        return cls(size.vocab, size.vocab, size.emb, size.hid, size.layers, size.dropout, gru_autocast)

    @classmethod
    def for_config(cls, config) -> ReferenceSeq2Seq:
        """The reference of a package model's `GRUSeq2SeqConfig` (a bidirectional encoder has none)."""
        if config.bidirectional_encoder:
            raise ValueError("the hand reference has no bidirectional encoder")
        return cls(config.vocab_size, config.decoder_vocab_size, config.embedding_size, config.hidden_size,
                   config.num_hidden_layers, config.dropout, config.gru_autocast, config.reverse_source)

    def run_gru(self, rnn: nn.GRU, x, state):
        """`rnn(x, state)` in the dtype the package's policy picks under the current autocast: where it picks one,
        autocast is off around the call and inputs, state and weights are cast to it."""
        device = (x.data if isinstance(x, PackedSequence) else x).device.type
        dtype = gru_autocast_dtype(self.gru_autocast, device)
        if dtype is None:
            return rnn(x, state)
        state = None if state is None else state.to(dtype)
        with torch.autocast(device, enabled=False):
            if rnn.weight_ih_l0.dtype == dtype:
                return rnn(x.to(dtype), state)
            # One cast of all weights into one contiguous buffer, in nn.GRU's order. (For bf16, cuDNN still copies
            # them into its own layout at every call, with a warning, as it does for the package model.)
            names = rnn._flat_weights_names
            weights = [getattr(rnn, n) for n in names]
            flat = torch.cat([w.reshape(-1) for w in weights]).to(dtype)
            views = {n: v.view_as(w) for n, w, v in zip(names, weights, flat.split([w.numel() for w in weights]))}
            return torch.func.functional_call(rnn, views, (x.to(dtype), state))

    def encode(self, input_ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(B, S) ids, host lengths (None: no padding) -> final state (L, B, H)."""
        if self.reverse_source:
            input_ids = reverse_real_tokens(input_ids, lengths)
        x = self.enc_emb(input_ids)  # (B, S, E)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return self.run_gru(self.enc_rnn, x, None)[1]

    def decode(self, tokens: torch.Tensor, state: torch.Tensor, context: torch.Tensor):
        """(B, T) ids, (L, B, H) state, (B, H) context -> logits (B, T, V), new state (L, B, H)."""
        e = self.dec_emb(tokens)  # (B, T, E)
        x = torch.cat([e, context[:, None].expand(-1, tokens.shape[1], -1).to(e.dtype)], -1)  # (B, T, E + H)
        y, state = self.run_gru(self.dec_rnn, x, state.to(e.dtype))
        return self.head(y), state

    def forward(self, input_ids, lengths, decoder_input_ids):
        state = self.encode(input_ids, lengths)
        return self.decode(decoder_input_ids, state, state[-1])[0]


def reverse_real_tokens(input_ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """(B, S) right-padded ids with each row's real tokens in reverse order; padding stays where it is."""
    if lengths is None:
        return input_ids.flip(1)
    pos = torch.arange(input_ids.shape[1], device=input_ids.device)  # (S,)
    last = lengths.to(input_ids.device)[:, None] - 1  # (B, 1)
    return input_ids.gather(1, torch.where(pos <= last, last - pos, pos))


def build_reference(size: Size, device: torch.device, seed: int = 0, gru_autocast: str | None = None):
    """The reference, initialised in place on `device`; `gru_autocast` None follows the package's default policy."""
    torch.manual_seed(seed)
    with torch.device(device):
        return ReferenceSeq2Seq.for_size(size, gru_autocast or DEFAULT_GRU_AUTOCAST)


def copy_package_weights(ref: ReferenceSeq2Seq, model) -> ReferenceSeq2Seq:
    """Load a package model's weights into the reference (in place; GRU weights stay cuDNN-flat)."""
    src = model.state_dict()
    prefixes = {"enc_emb.": "model.encoder.embedding.", "enc_rnn.": "model.encoder.rnn.",
                "dec_emb.": "model.decoder.embedding.", "dec_rnn.": "model.decoder.rnn.", "head.": "lm_head."}
    mapped = {}
    for key in ref.state_dict():
        prefix = next(p for p in prefixes if key.startswith(p))
        mapped[key] = src[prefixes[prefix] + key[len(prefix):]]
    ref.load_state_dict(mapped)
    return ref


def reference_loss(ref: ReferenceSeq2Seq, batch: dict) -> torch.Tensor:
    """Teacher-forced token cross-entropy (float32) over non-pad targets, from a `hand_batch`."""
    logits = ref(batch["input_ids"], batch["lengths"], batch["decoder_input_ids"])
    return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100)


@torch.no_grad()
def hand_greedy(ref: ReferenceSeq2Seq, input_ids, lengths, new_tokens: int, bos: int = BOS, eos: int = EOS):
    """Cached greedy decoding: the encoder once, then one GRU step per token carrying the state. Never emits `eos`
    (as `generate(min_new_tokens=new_tokens)`), so every row decodes exactly `new_tokens` tokens: (B, new_tokens)."""
    state = ref.encode(input_ids, lengths)  # (L, B, H)
    context = state[-1]  # (B, H)
    token = torch.full((input_ids.shape[0], 1), bos, dtype=torch.long, device=input_ids.device)
    out = torch.empty((input_ids.shape[0], new_tokens), dtype=torch.long, device=input_ids.device)
    for t in range(new_tokens):
        logits, state = ref.decode(token, state, context)
        logits = logits[:, -1].float()  # (B, V); generate() also picks the argmax of float32 scores
        logits[:, eos] = -float("inf")
        token = logits.argmax(-1, keepdim=True)
        out[:, t : t + 1] = token
    return out
