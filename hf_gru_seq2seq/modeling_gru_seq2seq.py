"""The d2l GRU encoder-decoder as a Transformers model.

Encoder: embedding -> multi-layer GRU over each sentence's real tokens. Decoder: embedding; every step reads
`[embedding(token) ; context]`, where `context` is the encoder's final top-layer state (one fixed vector per
sentence, in training and in decoding alike); its GRU starts from the encoder's final state (all layers). A linear
head maps decoder states to target-vocabulary logits.

Padding never changes a result, without packing or sorting: each encoder layer runs over the whole padded batch, with
every row's real tokens gathered to the front in reading order, and each row's final state is read at its last real
token (a GRU is causal, so what follows a position never changes it).

Teacher forcing runs the decoder GRU over the whole target in one fused call; `generate()` feeds one token per
step and carries the GRU state in a `GRUSeq2SeqCache`, so each new token costs the same whatever was decoded.

This file travels to the Hub as remote code: it imports only torch, transformers (and packaging, which transformers
requires) and the configuration.
"""

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree
import transformers
from packaging import version
from torch import nn
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import ModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput

from .configuration_gru_seq2seq import GRUSeq2SeqConfig

# ================================================================================================================
# Compatibility with transformers 5.17-5.23, in one place. Each shim names the version that lets it go.
# ================================================================================================================

# 5.24 renamed generate()'s cache from `past_key_values` to `cache`, in `forward`'s arguments and in the output
# classes: outputs store it under the name the installed version reads back, `forward` and
# `prepare_inputs_for_generation` take both names. Goes when the lowest supported version is 5.24.
CACHE_FIELD = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"


def _merge_cache_arguments(cache, past_key_values):
    """Accept the cache under its 5.24 name (`cache`) or its older one (`past_key_values`), never losing it."""
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("pass the decoder state as `cache` or as `past_key_values`, not both")
    state = cache if cache is not None else past_key_values
    if state is None or isinstance(state, GRUSeq2SeqCache):
        return state
    if isinstance(state, Cache) and state.get_seq_length() == 0:
        return None  # an empty cache made by generic code: start from the encoder state
    raise TypeError(f"GRUSeq2Seq models carry their state in a GRUSeq2SeqCache, got {type(state).__name__}")


# 5.17's beam search sizes its candidates with `config.get_text_config().vocab_size`, which for this model is the
# *source* vocabulary; the logits cover the target one. 5.18 reads the size off the logits. Goes at 5.18.
_BEAM_SEARCH_READS_CONFIG_VOCAB = version.parse(transformers.__version__) < version.parse("5.18")


class _BeamSearchOnTargetVocabulary:
    """Beam search, on 5.17, shown a config whose `vocab_size` is the target one: on a shallow copy of the model with
    a config of its own, so that nothing another call (another thread) reads ever changes."""

    def _beam_search(self, *args, **kwargs):
        if not _BEAM_SEARCH_READS_CONFIG_VOCAB or self.config.vocab_size == self.config.decoder_vocab_size:
            return super()._beam_search(*args, **kwargs)
        view = copy.copy(self)  # the same weights and submodules
        view.config = copy.copy(self.config)
        view.config.vocab_size = self.config.decoder_vocab_size
        return super(_BeamSearchOnTargetVocabulary, view)._beam_search(*args, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Outputs and the recurrent cache
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class GRUSeq2SeqEncoderOutput(ModelOutput):
    """
    Encoder output, batch-first throughout so that `generate()` can repeat it for beams.

    Args:
        last_hidden_state (`(batch, src_len, hidden_size * directions)`): top-layer GRU output at every source
            position; zeros at padding.
        final_state (`(batch, num_hidden_layers, hidden_size)`): the decoder's initial state, one vector per layer
            (for a bidirectional encoder, both directions joined by the bridge). `final_state[:, -1]` is the context.
        hidden_states (`tuple` of `num_hidden_layers + 1` tensors, with `output_hidden_states=True`): the embedding
            output `(batch, src_len, embedding_size)`, then each GRU layer's output `(batch, src_len, hidden_size *
            directions)`, all at the source positions, zeros at padding.
        attentions: always `None`: there is no attention.
    """

    last_hidden_state: torch.FloatTensor | None = None
    final_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class GRUSeq2SeqCache(Cache):
    """
    The decoder's GRU state between `generate()` steps: `state` is `(num_hidden_layers, batch, hidden_size)` after
    `seen_tokens` decoder tokens, or None before the first step, which starts from the encoder's final state. Beam
    search reorders it along the batch dimension.

    Compileable: outside autograd the state is written in place (`advance`), so a compiled decoding step, CUDA graphs
    included, finds it at the same address every step; this is what lets `generate()` use Transformers' compiled
    decoding. A recurrent state cannot forget tokens, so cropping (assisted decoding) is refused rather than done
    wrong.
    """

    is_compileable = True

    def __init__(self, state: torch.Tensor | None = None, seen_tokens: int = 0):
        super().__init__(layers=[])
        self.state = state  # (L, B, H)
        self.seen_tokens = seen_tokens

    def __repr__(self):
        shape = None if self.state is None else tuple(self.state.shape)
        return f"{type(self).__name__}(state={shape}, seen_tokens={self.seen_tokens})"

    def __len__(self):
        return 0 if self.state is None else self.state.shape[0]

    def advance(self, new_state: torch.Tensor, new_tokens: int) -> None:
        """Hold `new_state`, the state after `new_tokens` more decoder tokens."""
        if (self.state is not None and not torch.is_grad_enabled() and self.state.shape == new_state.shape
                and self.state.dtype == new_state.dtype):
            self.state.copy_(new_state)
        else:
            self.state = new_state
            if not is_traced() and not torch.is_grad_enabled():
                torch._dynamo.mark_static_address(self.state)  # a buffer compiled steps update in place
        self.seen_tokens += new_tokens

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor):
        self.state.copy_(self.state.index_select(1, beam_idx.to(self.state.device)))

    def batch_repeat_interleave(self, repeats: int):
        self.state = self.state.repeat_interleave(repeats, dim=1)

    def batch_select_indices(self, indices: torch.Tensor):
        self.state = self.state[:, indices]

    def crop(self, max_length: int):
        raise NotImplementedError("GRUSeq2SeqCache is a recurrent state: it cannot drop tokens once read")

    def reset(self):
        raise NotImplementedError("GRUSeq2SeqCache cannot be reset: re-run the encoder to start again")

    @property
    def batch_size(self) -> int:
        return self.state.shape[1]

    @property
    def is_croppable(self) -> bool:
        return False

    @property
    def is_sliding(self) -> list[bool]:
        return [False] * len(self)

    @property
    def is_linear(self) -> list[bool]:
        # "linear" caches make generate() skip slicing the prompt by `get_seq_length()`; ours needs that slicing.
        return [False] * len(self)


def _register_cache_with_pytree() -> None:
    """Let `torch.export` take and return a `GRUSeq2SeqCache` (the forward returns one by default), as Transformers
    does for its own caches. Both fields are children, not context: `seen_tokens` is the target length after a
    teacher-forced forward, which a program exported with a dynamic target length must not bake in."""
    def children(cache):
        return [cache.state, cache.seen_tokens]

    pytree.register_pytree_node(
        GRUSeq2SeqCache,
        lambda cache: (children(cache), None),
        lambda values, _: GRUSeq2SeqCache(*values),
        serialized_type_name=f"{GRUSeq2SeqCache.__module__}.{GRUSeq2SeqCache.__qualname__}",
        flatten_with_keys_fn=lambda cache: (
            [(pytree.GetAttrKey(k), v) for k, v in zip(("state", "seen_tokens"), children(cache))], None),
    )


_register_cache_with_pytree()


# ----------------------------------------------------------------------------------------------------------------
# Input checks: one host sync per call, before any kernel that could fail on a bad id
# ----------------------------------------------------------------------------------------------------------------


def check_ids(checks: list[tuple[str, torch.Tensor | None, int, torch.Tensor | None]], mask=None) -> None:
    """
    Raise `ValueError` naming the first id outside its vocabulary, or the first row of `mask` (the source attention
    mask) without a token. `checks` holds `(name, ids, vocab_size, where)`; ids where `where` is False (padding, -100
    labels) are not checked. Everything is read back in a single host sync.
    """
    checks = [(name, ids, vocab, where) for name, ids, vocab, where in checks if ids is not None and ids.numel()]
    masked = [ids if where is None else ids.masked_fill(~where, 0) for _, ids, _, where in checks]
    stats = [t for ids in masked for t in (ids.min(), ids.max())]
    if mask is not None:
        stats.append(mask.sum(1).min())
    if not stats:
        return
    values = torch.stack([s.long() for s in stats]).tolist()
    for i, (name, _, vocab, _) in enumerate(checks):
        if values[2 * i] < 0 or values[2 * i + 1] >= vocab:
            ids = masked[i].cpu()
            b, t = (int(i) for i in ((ids < 0) | (ids >= vocab)).nonzero()[0])
            raise ValueError(f"{name}[{b}, {t}] = {int(ids[b, t])} is outside the vocabulary [0, {vocab})")
    if mask is not None and values[-1] == 0:
        row = int((mask.sum(1) == 0).nonzero()[0, 0])
        raise ValueError(f"attention_mask row {row} has no tokens: empty sentences cannot be encoded")


def source_mask(input_ids, inputs_embeds, attention_mask) -> torch.Tensor:
    """The (B, S) boolean mask of real source tokens, after checking the shapes of what was given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids and inputs_embeds")
    given, name = (input_ids, "input_ids") if input_ids is not None else (inputs_embeds, "inputs_embeds")
    shape = tuple(given.shape) if input_ids is not None else tuple(given.shape[:-1])
    if len(shape) != 2:
        raise ValueError(f"{name} must be (batch, length{', embedding' if input_ids is None else ''}), got "
                         f"{tuple(given.shape)}")
    if 0 in shape:
        raise ValueError(f"{name} is empty (shape {shape}): every sentence needs a token")
    if attention_mask is None:
        return torch.ones(shape, dtype=torch.bool, device=given.device)
    if tuple(attention_mask.shape) != shape:
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but {name} has {shape}: "
                         "they must match")
    return attention_mask.bool()


def check_decoder_shape(decoder_input_ids, decoder_inputs_embeds) -> None:
    if decoder_input_ids is None and decoder_inputs_embeds is None:
        raise ValueError("pass decoder_input_ids or decoder_inputs_embeds (or labels, to "
                         "GRUSeq2SeqForConditionalGeneration)")
    if decoder_input_ids is not None and decoder_inputs_embeds is not None:
        raise ValueError("pass decoder_input_ids or decoder_inputs_embeds, not both")
    given = decoder_input_ids if decoder_input_ids is not None else decoder_inputs_embeds
    if given.dim() != (2 if decoder_input_ids is not None else 3) or given.shape[1] == 0:
        name = "decoder_input_ids" if decoder_input_ids is not None else "decoder_inputs_embeds"
        raise ValueError(f"{name} must be (batch, length>0{'' if decoder_input_ids is not None else ', embedding'}), "
                         f"got {tuple(given.shape)}")


def decoder_start_state(final_state, cache, decoder_input_ids, decoder_inputs_embeds) -> torch.Tensor:
    """The state the decoder reads its tokens from: the cache's, else the encoder's final state, (L, B, H)."""
    batch = (decoder_input_ids if decoder_input_ids is not None else decoder_inputs_embeds).shape[0]
    if final_state.shape[0] != batch:
        raise ValueError(f"encoder batch {final_state.shape[0]} != decoder batch {batch}")
    if cache is None or cache.state is None:
        return final_state.transpose(0, 1).contiguous()
    if cache.state.shape[1] != batch:
        raise ValueError(f"cache batch {cache.state.shape[1]} != decoder batch {batch}")
    return cache.state


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: `[start, y_0, ..., y_{T-2}]`, with -100 replaced by padding."""
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


# ----------------------------------------------------------------------------------------------------------------
# GRU calls
# ----------------------------------------------------------------------------------------------------------------


def _cudnn_runs_bf16_rnns() -> bool:
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return version is not None and version >= 91300


def gru_autocast_dtype(policy: str, device_type: str) -> torch.dtype | None:
    """
    The dtype a GRU runs in under the current autocast for the precision policy `config.gru_autocast`, or None
    where autocast's own choice stands: outside autocast, with policy "torch", or bf16 on CUDA with a cuDNN older
    than 9.13 (which has no bf16 RNNs). "float32" keeps GRUs in float32, "match" runs them in autocast's dtype.
    """
    if policy == "torch" or not torch.is_autocast_enabled(device_type):
        return None
    dtype = torch.float32 if policy == "float32" else torch.get_autocast_dtype(device_type)
    if device_type == "cuda" and dtype == torch.bfloat16 and not _cudnn_runs_bf16_rnns():
        return None
    return dtype


def is_traced() -> bool:
    """True inside torch.compile, torch.export (and so the ONNX exporter) and TorchScript tracing: the graphs
    recorded there must not depend on the data, so the eager checks that read ids back are left out."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


class GRUStack(nn.RNNBase):
    """
    A multi-layer, batch-first GRU with `nn.GRU`'s parameters (same names, same cuDNN weight packing, so checkpoints
    load unchanged), run all layers at once or one layer, in one direction, at a time.

    It is not an `nn.GRU` on purpose: torch.compile refuses to trace those (unless `torch._dynamo.config.allow_rnn`
    is set). Eager and compiled calls run `torch._VF.gru`, nn.GRU's own kernel; under torch.export (and the ONNX
    exporter) each layer is written out as its GRU cell, looped with `scan` over time, so that an exported program
    takes any source length and its matrix products can be quantized.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0,
                 bidirectional: bool = False):
        super().__init__("GRU", input_size, hidden_size, num_layers, batch_first=True,
                         dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)

    def layer_weights(self, layer: int, reverse: bool = False) -> list[torch.Tensor]:
        """`[w_ih, w_hh, b_ih, b_hh]` of one layer, one direction."""
        suffix = f"_l{layer}{'_reverse' if reverse else ''}"
        return [getattr(self, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, inputs: torch.Tensor, state: torch.Tensor, policy: str = "torch", layer: int | None = None,
                reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """
        `inputs` (B, T, D) from `state` (layers, B, H): all layers (`layer=None`, dropout between them in training),
        or only `layer` in one direction from a (1, B, H) state. Returns outputs (B, T, H) and the final state.

        `policy` is `config.gru_autocast` (see `gru_autocast_dtype`): where it picks a dtype, autocast is switched off
        around the GRU and inputs, state and weights are cast to it (the weight casts are differentiable, as
        autocast's own are); elsewhere the GRU runs as autocast would run it.
        """
        layers = range(self.num_layers) if layer is None else [layer]
        if torch.compiler.is_exporting():
            return _gru_written_out(inputs, state, [self.layer_weights(i, reverse) for i in layers])
        weights = list(self._flat_weights) if layer is None else self.layer_weights(layer, reverse)
        arguments = (True, len(layers), self.dropout if layer is None else 0.0, self.training,
                     self.bidirectional and layer is None, True)
        dtype = gru_autocast_dtype(policy, inputs.device.type)
        if dtype is None:
            return torch._VF.gru(inputs, state, weights, *arguments)
        with torch.autocast(inputs.device.type, enabled=False):
            weights = [w.to(dtype) for w in weights]
            return torch._VF.gru(inputs.to(dtype), state.to(dtype), weights, *arguments)


def _gru_cell(gates_x: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step as PyTorch defines it, from the input's gate terms `x W_ih^T + b_ih` (B, 3H) and state (B, H)."""
    x_r, x_z, x_n = gates_x.chunk(3, -1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return n + z * (h - n)  # (1 - z) n + z h


def _gru_written_out(x: torch.Tensor, state: torch.Tensor, layers: list[list[torch.Tensor]]):
    """The GRU equations over (B, T, D) inputs, layer after layer, for exporters: one cell for a single step, else the
    cell looped over time with `scan` (a loop the exported program keeps, whatever T is)."""
    finals = []
    for h, (w_ih, w_hh, b_ih, b_hh) in zip(state, layers):
        gates_x = F.linear(x, w_ih, b_ih)  # (B, T, 3H): every step's input terms at once
        if x.shape[1] == 1:
            h = _gru_cell(gates_x[:, 0], h, w_hh, b_hh)
            x = h[:, None]
        else:
            from torch._higher_order_ops.scan import scan  # torch >= 2.6; only exporters need it

            def step(carry, gates_t, w_hh=w_hh, b_hh=b_hh):
                carry = _gru_cell(gates_t, carry, w_hh, b_hh)
                return carry, carry.clone()

            # A contiguous copy, not a view: an exported program runs `scan` by compiling `step`, and torch 2.13's
            # guards on a view's base break its recompilation for a new shape ("tuple index out of range").
            h, outputs = scan(step, h, gates_x.transpose(0, 1).contiguous())  # (B, H), (T, B, H)
            x = outputs.transpose(0, 1)
        finals.append(h)
    return x, torch.stack(finals)


def reading_order(mask: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """
    (B, S) mask -> `(order, place)`, two (B, S) index tensors for `gather` along the positions. `order` puts each
    row's real tokens first, in reading order (last to first if `reverse`), then its padding; `place` puts them back.
    Computed from running counts (no sort, no host sync), so any padding (left, right or holes) works.
    """
    real = mask.long()
    lengths = real.sum(1, keepdim=True)
    rank = real.cumsum(1) - 1  # each real token's index among its row's real tokens
    if reverse:
        rank = lengths - 1 - rank
    place = torch.where(mask, rank, lengths + (1 - real).cumsum(1) - 1)  # where each position goes (a permutation)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(place)
    order = torch.empty_like(place).scatter_(1, place, positions)  # its inverse
    return order, place


def gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, S, D) rows reordered along S by a (B, S) index."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


def _gru(config: GRUSeq2SeqConfig, input_size: int, bidirectional: bool = False) -> GRUStack:
    return GRUStack(input_size, config.hidden_size, config.num_hidden_layers, config.dropout, bidirectional)


# ----------------------------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------------------------


class GRUSeq2SeqEncoder(nn.Module):
    """Embedding + GRU over each sentence's real tokens, layer by layer; padding never changes a result."""

    main_input_name = "input_ids"

    def __init__(self, config: GRUSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.rnn = _gru(config, config.embedding_size, bidirectional=config.bidirectional_encoder)
        # Joins each layer's forward and backward final states into one decoder state.
        self.bridge = nn.Linear(2 * config.hidden_size, config.hidden_size) if config.bidirectional_encoder else None

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        validate_ids: bool = True,
    ) -> GRUSeq2SeqEncoderOutput | tuple:
        r"""
        inputs_embeds (`(batch, src_len, embedding_size)`): given instead of `input_ids`.
        validate_ids (`bool`): check the ids against the vocabulary and every row for a token first (one host sync).
        """
        mask = source_mask(input_ids, inputs_embeds, attention_mask)  # (B, S)
        if validate_ids and not is_traced():
            check_ids([("input_ids", input_ids, self.config.vocab_size, mask)], mask)
        if inputs_embeds is None:
            inputs_embeds = self.embedding(input_ids.masked_fill(~mask, 0))  # padding ids are never looked up
        x = inputs_embeds * mask[..., None].to(inputs_embeds.dtype)  # (B, S, E), zeros at padding
        last = (mask.sum(1) - 1).clamp(min=0)  # (B,) each row's last real token in reading order
        rows = torch.arange(x.shape[0], device=x.device)
        directions = [self.config.reverse_source]
        if self.config.bidirectional_encoder:
            directions.append(not self.config.reverse_source)
        orders = [reading_order(mask, reverse) for reverse in directions]

        hidden_states, finals = [x], []
        for layer in range(self.config.num_hidden_layers):
            outputs, layer_finals = [], []
            for direction, (order, place) in enumerate(orders):
                h0 = x.new_zeros(1, x.shape[0], self.config.hidden_size)
                y, _ = self.rnn(gather_positions(x, order), h0, self.config.gru_autocast, layer,
                                reverse=direction == 1)  # (B, S, H) in this direction's reading order
                layer_finals.append(y[rows, last])  # (B, H): the state after the row's last real token
                outputs.append(gather_positions(y, place))  # back at the source positions
            x = torch.cat(outputs, -1) * mask[..., None].to(outputs[0].dtype)  # (B, S, H * directions)
            hidden_states.append(x)
            finals.append(torch.cat(layer_finals, -1))
            if layer < self.config.num_hidden_layers - 1:
                x = F.dropout(x, self.rnn.dropout, self.training)

        final_state = torch.stack(finals, 1)  # (B, L, H * directions)
        if self.bridge is not None:
            final_state = torch.tanh(self.bridge(final_state))  # (B, L, H)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        out = GRUSeq2SeqEncoderOutput(last_hidden_state=hidden_states[-1], final_state=final_state,
                                      hidden_states=tuple(hidden_states) if output_hidden_states else None)
        return out if return_dict is not False else out.to_tuple()


class GRUSeq2SeqDecoder(nn.Module):
    """
    The decoder GRU. `forward` consumes T tokens from a given state: the whole target under teacher forcing, one
    token per step in `generate()` (whose loop drives it, one step at a time).
    """

    def __init__(self, config: GRUSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.decoder_vocab_size, config.embedding_size)
        self.rnn = _gru(config, config.embedding_size + config.hidden_size)

    def forward(self, input_ids: torch.LongTensor | None, state: torch.Tensor, context: torch.Tensor,
                inputs_embeds: torch.FloatTensor | None = None, output_hidden_states: bool = False):
        """
        (B, T) ids (or (B, T, E) `inputs_embeds`), (L, B, H) state, (B, H) context -> outputs (B, T, H), new state
        (L, B, H) and, with `output_hidden_states`, the embedding output and each layer's outputs.
        """
        embedded = self.embedding(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, E)
        context = context[:, None, :].expand(-1, embedded.shape[1], -1).to(embedded.dtype)  # (B, T, H)
        x = torch.cat([embedded, context], dim=-1)  # (B, T, E + H)
        state = state.to(embedded.dtype)
        policy = self.config.gru_autocast
        if not output_hidden_states:
            outputs, new_state = self.rnn(x, state, policy)  # all layers in one fused call
            return outputs, new_state, None
        hidden_states, finals = [embedded], []
        for layer in range(self.config.num_hidden_layers):
            if layer > 0:
                x = F.dropout(x, self.rnn.dropout, self.training)
            x, final = self.rnn(x, state[layer:layer + 1], policy, layer)
            hidden_states.append(x)
            finals.append(final)
        return x, torch.cat(finals), tuple(hidden_states)


# ----------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------


class GRUSeq2SeqPreTrainedModel(PreTrainedModel):
    config_class = GRUSeq2SeqConfig
    config: GRUSeq2SeqConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules = ["GRUSeq2SeqEncoder", "GRUSeq2SeqDecoder"]

    def _init_weights(self, module):
        """d2l's scheme: Xavier-uniform GRU and linear weights, zero biases, normal(0, init_std) embeddings."""
        if isinstance(module, nn.RNNBase):
            for name, param in module.named_parameters():
                if name.startswith("weight"):
                    init.xavier_uniform_(param)
                else:
                    init.zeros_(param)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.init_std)

    def get_input_embeddings(self):
        return self.get_encoder().embedding

    def set_input_embeddings(self, value):
        self.get_encoder().embedding = value

    def get_encoder(self):
        return self.base_model.encoder

    def get_decoder(self):
        return self.base_model.decoder

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) with output_loading_info
        model.compact_gru_weights()
        return loaded

    def compact_gru_weights(self):
        """
        Give each GRU's weights memory of their own. Loading can leave them as views into the checkpoint, whose
        alignment changes CPU results in the last bit and which, on CUDA, is not the single flat buffer cuDNN
        wants (without it every call re-packs the weights).
        """
        for module in self.modules():
            if isinstance(module, nn.RNNBase):
                module._apply(torch.clone)  # RNNBase._apply also re-flattens for cuDNN

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as usual; for remote code, also name both model classes in `auto_map`, so `AutoModel` and
        `AutoModelForSeq2SeqLM` both load the folder, and declare the translation pipeline in `custom_pipelines`
        (its file is copied beside this one: see `_custom_pipelines`). `push_to_hub` saves through here too."""
        if self._auto_class is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map["AutoModel"] = f"{module}.GRUSeq2SeqModel"
            auto_map["AutoModelForSeq2SeqLM"] = f"{module}.GRUSeq2SeqForConditionalGeneration"
            self.config.auto_map = auto_map
            self.config.custom_pipelines = self._custom_pipelines()
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _custom_pipelines(self) -> dict:
        """
        `config.custom_pipelines` with `GRUSeq2SeqTranslationPipeline` (loaded with `AutoModelForSeq2SeqLM`) under
        the tasks `translation` and `text2text-generation` (Transformers 4's names, gone from v5's built-in tasks)
        and any `translation_<source>_to_<target>` declared with `add_translation_task`, for a model that can
        generate; withdrawn for one that cannot (a bare `GRUSeq2SeqModel` has no head to translate with).

        The relative import is also what ships the pipeline: Transformers copies the files a remote-code module
        imports relatively (found by scanning its text for `from .x import`) when it saves or downloads that module,
        so pipeline_gru_seq2seq.py travels with this file, also when a downloaded copy of the model is saved again.
        """
        entry = self._pipeline_entry()
        pipelines = dict(getattr(self.config, "custom_pipelines", None) or {})
        for task in {"translation", "text2text-generation", *(t for t in pipelines if t.startswith("translation_"))}:
            if self.can_generate():
                pipelines[task] = entry
            elif pipelines.get(task, {}).get("impl") == entry["impl"]:
                del pipelines[task]
        return pipelines

    def add_translation_task(self, source_lang: str, target_lang: str) -> None:
        """Also answer `pipeline("translation_<source_lang>_to_<target_lang>", ...)` once saved, as Transformers 4
        did for translation models."""
        pipelines = dict(getattr(self.config, "custom_pipelines", None) or {})
        pipelines[f"translation_{source_lang}_to_{target_lang}"] = self._pipeline_entry()
        self.config.custom_pipelines = pipelines

    @staticmethod
    def _pipeline_entry() -> dict:
        from .pipeline_gru_seq2seq import GRUSeq2SeqTranslationPipeline

        impl = f"{GRUSeq2SeqTranslationPipeline.__module__.rsplit('.', 1)[-1]}.{GRUSeq2SeqTranslationPipeline.__name__}"
        return {"impl": impl, "pt": ["AutoModelForSeq2SeqLM"], "type": "text"}

    def _resize_token_embeddings(self, new_num_tokens, pad_to_multiple_of=None, mean_resizing=True):
        """
        Behind `resize_token_embeddings` (which then sets `config.vocab_size`): resize the source vocabulary and,
        when the target vocabulary is the same one (`decoder_vocab_size == vocab_size`, as with the training
        script's shared tokenizer), the decoder embedding and the output layer with it. A separate target vocabulary
        keeps its size; `resize_decoder_token_embeddings` resizes it. Sizes that would drop a special token raise
        before any weight changes.
        """
        old = self.get_input_embeddings()
        if pad_to_multiple_of is not None and not isinstance(pad_to_multiple_of, int):
            # Transformers' own message; its resizing raises it before it changes anything.
            self._get_resized_embeddings(old, new_num_tokens, pad_to_multiple_of, mean_resizing)
        size = old.num_embeddings if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
        shared = self.config.decoder_vocab_size == self.config.vocab_size
        self._check_vocabulary_sizes(size, size if shared else self.config.decoder_vocab_size)
        new = self._get_resized_embeddings(old, new_num_tokens, pad_to_multiple_of, mean_resizing)
        new.requires_grad_(old.weight.requires_grad)
        self.set_input_embeddings(new)
        if shared:
            self.resize_decoder_token_embeddings(size, mean_resizing=mean_resizing)
        return new

    def resize_decoder_token_embeddings(self, new_num_tokens: int, mean_resizing: bool = True) -> nn.Embedding:
        """Resize the target vocabulary: the decoder embedding, the output layer (when there is one) and
        `config.decoder_vocab_size`. New rows are initialised as `resize_token_embeddings` does."""
        self._check_vocabulary_sizes(self.config.vocab_size, new_num_tokens)
        decoder = self.get_decoder()
        old = decoder.embedding
        decoder.embedding = self._get_resized_embeddings(old, new_num_tokens, mean_resizing=mean_resizing)
        decoder.embedding.requires_grad_(old.weight.requires_grad)
        head = self.get_output_embeddings()
        if head is not None:
            new_head = self._get_resized_lm_head(head, new_num_tokens, mean_resizing=mean_resizing)
            new_head.requires_grad_(head.weight.requires_grad)
            self.set_output_embeddings(new_head)
        self.config.decoder_vocab_size = new_num_tokens
        self.tie_weights()
        return decoder.embedding

    def _check_vocabulary_sizes(self, vocab_size, decoder_vocab_size):
        """Raise the config's own `ValueError` (naming the field) if these sizes would not hold its special ids."""
        trial = copy.copy(self.config)
        trial.vocab_size, trial.decoder_vocab_size = vocab_size, decoder_vocab_size
        trial.check_values()


class GRUSeq2SeqModel(GRUSeq2SeqPreTrainedModel):
    """Encoder + decoder GRU, no head: returns the decoder's top-layer states."""

    def __init__(self, config: GRUSeq2SeqConfig):
        super().__init__(config)
        self.encoder = GRUSeq2SeqEncoder(config)
        self.decoder = GRUSeq2SeqDecoder(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: GRUSeq2SeqEncoderOutput | tuple | None = None,
        cache: GRUSeq2SeqCache | None = None,
        past_key_values: GRUSeq2SeqCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        validate_ids: bool = True,
    ) -> Seq2SeqModelOutput | tuple:
        r"""
        decoder_attention_mask is accepted and ignored: the decoder is causal, so right padding of the target
        cannot reach earlier positions, and left-padded targets are not supported.
        cache / past_key_values: the previous step's `GRUSeq2SeqCache` (its name depends on the version; either works).
        inputs_embeds / decoder_inputs_embeds (`(batch, length, embedding_size)`): given instead of the ids.
        validate_ids (`bool`): check every id against its vocabulary before any kernel runs (one host sync).
            `generate()` turns it off for the tokens it chose itself.
        """
        cache = _merge_cache_arguments(cache, past_key_values)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        check_decoder_shape(decoder_input_ids, decoder_inputs_embeds)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, inputs_embeds, output_attentions,
                                           output_hidden_states, return_dict=True, validate_ids=validate_ids)
        encoder_outputs = _as_encoder_output(encoder_outputs)
        if validate_ids and not is_traced():
            check_ids([("decoder_input_ids", decoder_input_ids, self.config.decoder_vocab_size, None)])

        final_state = encoder_outputs.final_state  # (B, L, H)
        start = decoder_start_state(final_state, cache, decoder_input_ids, decoder_inputs_embeds)  # (L, B, H)
        hidden, new_state, decoder_hidden_states = self.decoder(
            decoder_input_ids, start, final_state[:, -1], decoder_inputs_embeds, output_hidden_states
        )  # (B, T, H), (L, B, H)
        new_cache = _advanced_cache(cache, new_state, hidden.shape[1]) if use_cache else None
        out = Seq2SeqModelOutput(
            last_hidden_state=hidden,
            decoder_hidden_states=decoder_hidden_states,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            **{CACHE_FIELD: new_cache},
        )
        return out if return_dict is not False else out.to_tuple()


class GRUSeq2SeqGenerationMixin(_BeamSearchOnTargetVocabulary, GenerationMixin):
    """
    What `generate()` needs from a GRU seq2seq model besides its `forward`, shared by the PyTorch model and its
    ONNX Runtime twin: the recurrent cache, the inputs of one step, translation defaults, and a guard against
    sources with nothing to translate.
    """

    # The decoder state is recurrent: generate() cannot rewind it (no assisted decoding). Transformers read this flag
    # up to 5.24; `_validate_generation_mode` below refuses on every version, with the reason.
    _is_stateful = True
    _ASSISTED_FLAGS = ("prompt_lookup_num_tokens", "assistant_early_exit")

    def _validate_generation_mode(self, generation_mode, generation_config, generation_mode_kwargs):
        """Refuse assisted decoding (a draft model, prompt lookup, early exit) before Transformers' own checks, so
        that every version and every batch size gives the model's reason. It is refused also where Transformers would
        quietly ignore the draft (under beam search): a user who asked for it should know it did not happen."""
        asked = [name for name in self._ASSISTED_FLAGS if getattr(generation_config, name, None) is not None]
        if generation_mode_kwargs.get("assistant_model") is not None:
            asked.insert(0, "assistant_model")
        if getattr(generation_config, "use_mtp", False):
            asked.append("use_mtp")
        if asked or generation_mode == "assisted_generation":
            raise ValueError(
                f"{type(self).__name__} does not support assisted decoding (asked for by {', '.join(asked)}): its "
                "decoder state is recurrent, so it cannot be rewound to drop draft tokens that are rejected. Use "
                "greedy search, beam search or sampling."
            )
        super()._validate_generation_mode(generation_mode, generation_config, generation_mode_kwargs)

    @staticmethod
    def default_generation_config(config: GRUSeq2SeqConfig) -> GenerationConfig:
        """Defaults for translation: beam search of 4, stop at end of sentence or at `max_length` 129 tokens (the
        decoder start and 128 new ones). A caller's `max_length` or `max_new_tokens` overrides the limit."""
        return GenerationConfig(
            max_length=129,
            num_beams=4,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
            pad_token_id=config.pad_token_id,
            decoder_start_token_id=config.decoder_start_token_id,
        )

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() must not build a key/value cache for us (see `_prepare_cache_for_generation`).
        return False

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, *args, **kwargs):
        """Give generate() an empty `GRUSeq2SeqCache` before its first step (which fills it from the encoder): a
        compileable cache that exists before the loop is what switches on Transformers' compiled decoding."""
        super()._prepare_cache_for_generation(generation_config, model_kwargs, *args, **kwargs)
        if model_kwargs.get(CACHE_FIELD) is None and generation_config.use_cache is not False:
            model_kwargs[CACHE_FIELD] = GRUSeq2SeqCache()

    def prepare_inputs_for_generation(self, input_ids, cache=None, past_key_values=None, attention_mask=None,
                                      encoder_outputs=None, use_cache=None, **kwargs):
        """
        The inputs of one `generate()` step: with a cache, only the tokens its state has not read yet (one per step);
        without, the whole prefix. (Leaner than the generic version, which inspects `forward` at every step.)

        Tokens after the prompt come from generate's own choice over this model's logits, so they are inside the
        vocabulary: `validate_ids=False` skips their check, and with it a host sync per token. A prompt is the
        user's: checked.
        """
        cache = _merge_cache_arguments(cache, past_key_values)
        fresh = cache is None or cache.seen_tokens == 0
        if cache is not None:  # a contiguous copy: a slice's strides would change every step (a recompile each)
            input_ids = input_ids[:, cache.seen_tokens:].clone(memory_format=torch.contiguous_format)
        inputs = {"decoder_input_ids": input_ids, "encoder_outputs": encoder_outputs,
                  "attention_mask": attention_mask, "use_cache": use_cache, "cache": cache, "validate_ids": fresh}
        inputs.update((k, v) for k, v in kwargs.items() if k in _GENERATE_FORWARD_KWARGS)
        return inputs

    @torch.no_grad()
    def generate(self, inputs=None, *args, **kwargs):
        """
        `GenerationMixin.generate`, after refusing sources that hold no real token (only padding and special tokens,
        as a tokenizer makes of an empty string): there is nothing to translate, and a model asked anyway writes a
        confident sentence.

        A caller's `max_new_tokens` replaces the generation config's `max_length` rather than overriding it with a
        warning at every call, as Transformers does when both are set.
        """
        input_ids = inputs if inputs is not None and not inputs.is_floating_point() else kwargs.get("input_ids")
        if input_ids is not None and kwargs.get("encoder_outputs") is None:
            check_source_has_words(input_ids, kwargs.get("attention_mask"), self.config)
        if kwargs.get("max_new_tokens") is not None and "max_length" not in kwargs:
            kwargs["max_length"] = None
        return super().generate(inputs, *args, **kwargs)


class GRUSeq2SeqForConditionalGeneration(GRUSeq2SeqGenerationMixin, GRUSeq2SeqPreTrainedModel):
    """The d2l translation model: `GRUSeq2SeqModel` + a linear head to the target vocabulary; loss and `generate()`."""

    _tied_weights_keys = {"lm_head.weight": "model.decoder.embedding.weight"}
    # The Trainer passes `num_items_in_batch`, so gradient accumulation averages over all tokens of the step.
    accepts_loss_kwargs = True

    def __init__(self, config: GRUSeq2SeqConfig):
        super().__init__(config)
        self.model = GRUSeq2SeqModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.decoder_vocab_size)
        self.post_init()
        self.generation_config = self.default_generation_config(config)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Used by `DataCollatorForSeq2Seq`: labels shifted right behind `decoder_start_token_id`."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _check_all_ids(self, input_ids, attention_mask, inputs_embeds, encoder_outputs, decoder_input_ids, labels):
        """Every id of a call against its vocabulary, in one host sync; the source only when it will be encoded."""
        mask = None if encoder_outputs is not None else source_mask(input_ids, inputs_embeds, attention_mask)
        check_ids([
            ("input_ids", None if encoder_outputs is not None else input_ids, self.config.vocab_size, mask),
            ("decoder_input_ids", decoder_input_ids, self.config.decoder_vocab_size, None),
            ("labels", labels, self.config.decoder_vocab_size, None if labels is None else labels.ne(-100)),
        ], mask)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: GRUSeq2SeqEncoderOutput | tuple | None = None,
        cache: GRUSeq2SeqCache | None = None,
        past_key_values: GRUSeq2SeqCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        validate_ids: bool = True,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> Seq2SeqLMOutput | tuple:
        r"""
        labels (`(batch, tgt_len)`): target ids, -100 where no loss is wanted. Without decoder inputs, the decoder
        reads the labels shifted right. The loss is token-level cross-entropy in float32, summed and divided by
        `num_items_in_batch` when given (the Trainer's count over all gradient-accumulation steps), else averaged.
        The other arguments are `GRUSeq2SeqModel.forward`'s.
        """
        given_decoder_ids = decoder_input_ids
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)  # checked with the labels
        if validate_ids and not is_traced():  # all ids at once, in one host sync
            check_decoder_shape(decoder_input_ids, decoder_inputs_embeds)
            self._check_all_ids(input_ids, attention_mask, inputs_embeds, encoder_outputs, given_decoder_ids, labels)
        outputs = self.model(
            input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs, cache,
            past_key_values, inputs_embeds, decoder_inputs_embeds, use_cache, output_attentions, output_hidden_states,
            return_dict=True, validate_ids=False,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # (B, T, V)
        loss = None if labels is None else token_cross_entropy(logits, labels, num_items_in_batch)
        out = Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            decoder_hidden_states=outputs.decoder_hidden_states,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
        )
        return out if return_dict is not False else out.to_tuple()


def check_source_has_words(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, config) -> None:
    """`ValueError` naming the first row whose attended tokens are all padding or special tokens."""
    real = ~torch.isin(input_ids, torch.tensor([config.pad_token_id, config.bos_token_id, config.eos_token_id],
                                               device=input_ids.device))
    if attention_mask is not None:
        real &= attention_mask.bool()
    empty = ~real.any(1)
    if empty.any():
        row = int(empty.nonzero()[0, 0])
        raise ValueError(f"input_ids row {row} holds no real token, only padding and special tokens (as a tokenizer "
                         "makes of an empty string): there is nothing to translate")


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Float32 cross-entropy over the target tokens whose label is not -100."""
    losses = F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten().to(logits.device), ignore_index=-100, reduction="sum"
    )
    if num_items_in_batch is None:
        num_items_in_batch = labels.ne(-100).sum()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(losses.device)
    return losses / num_items_in_batch


# Extra `generate()` model kwargs that reach `forward`; the rest (e.g. `next_sequence_length`) are generate's own.
_GENERATE_FORWARD_KWARGS = ("decoder_attention_mask", "output_attentions", "output_hidden_states", "return_dict")


def _advanced_cache(cache: GRUSeq2SeqCache | None, new_state: torch.Tensor, steps: int) -> GRUSeq2SeqCache:
    """`cache` (a new one when None) holding the decoder state after `steps` more tokens."""
    cache = cache if cache is not None else GRUSeq2SeqCache()
    cache.advance(new_state, steps)
    return cache


def _as_encoder_output(encoder_outputs) -> GRUSeq2SeqEncoderOutput:
    """The encoder's output as its dataclass, from the dataclass itself, a tuple or a dict."""
    if isinstance(encoder_outputs, GRUSeq2SeqEncoderOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, (tuple, list)):
        return GRUSeq2SeqEncoderOutput(*encoder_outputs)
    return GRUSeq2SeqEncoderOutput(**dict(encoder_outputs))


__all__ = [
    "GRUSeq2SeqCache",
    "GRUSeq2SeqEncoderOutput",
    "GRUSeq2SeqForConditionalGeneration",
    "GRUSeq2SeqModel",
    "GRUSeq2SeqPreTrainedModel",
]
