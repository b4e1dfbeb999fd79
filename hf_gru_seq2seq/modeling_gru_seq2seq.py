"""The d2l GRU encoder-decoder as a Transformers model.

Encoder: embedding -> multi-layer GRU over the real (unpadded) tokens of each sentence.
Decoder: embedding; every step reads `[embedding(token) ; context]`, where `context` is the encoder's final
top-layer state (one fixed vector per sentence, in training and in decoding alike); its GRU starts from the
encoder's final state (all layers). A linear head maps decoder states to target-vocabulary logits.

Teacher forcing runs the decoder GRU over the whole target in one fused call; `generate()` feeds one token per
step and carries the GRU state in a `GRUSeq2SeqCache`, so each new token costs the same whatever was decoded.

This file travels to the Hub as remote code: it imports only torch, transformers and the configuration.
"""

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import ModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput

from .configuration_gru_seq2seq import GRUSeq2SeqConfig

# Transformers 5.24 renamed the generation cache from `past_key_values` to `cache`, in `forward`'s arguments and in
# the output classes. The outputs below store the cache under whichever name the installed version reads back.
CACHE_FIELD = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"


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
        hidden_states, attentions: always `None` (the GRU layers are fused; there is no attention). Present so that
            code asking for them gets a well-formed output.
    """

    last_hidden_state: torch.FloatTensor | None = None
    final_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class GRUSeq2SeqCache(Cache):
    """
    The decoder's GRU state between `generate()` steps: `state` is `(num_hidden_layers, batch, hidden_size)` after
    `seen_tokens` decoder tokens. Beam search reorders it along the batch dimension.

    A recurrent state cannot forget tokens, so cropping (assisted decoding) is refused rather than done wrong.
    """

    def __init__(self, state: torch.Tensor, seen_tokens: int = 0):
        super().__init__(layers=[])
        self.state = state  # (L, B, H)
        self.seen_tokens = seen_tokens
        self.ids_from_generate = False  # set by prepare_inputs_for_generation for ids it produced itself

    def __repr__(self):
        return f"{type(self).__name__}(state={tuple(self.state.shape)}, seen_tokens={self.seen_tokens})"

    def __len__(self):
        return self.state.shape[0]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor):
        self.state = self.state.index_select(1, beam_idx.to(self.state.device))

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
    def is_compileable(self) -> bool:
        return False

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


# ----------------------------------------------------------------------------------------------------------------
# Input checks: one host sync per call, before any kernel that could fail on a bad id
# ----------------------------------------------------------------------------------------------------------------


def _first_bad_position(ids: torch.Tensor, bad: torch.Tensor) -> tuple[int, int, int]:
    b, t = (int(i) for i in bad.nonzero()[0])
    return b, t, int(ids[b, t])


def _check_ranges(checks: list[tuple[str, torch.Tensor, int, torch.Tensor | None]]) -> None:
    """
    Raise `ValueError` naming the first id outside its vocabulary. `checks` holds `(name, ids, vocab_size, mask)`;
    ids where `mask` is False are not checked. All ranges are read back in a single host sync.
    """
    checks = [(name, ids, vocab, mask) for name, ids, vocab, mask in checks if ids is not None and ids.numel()]
    if not checks:
        return
    masked = [ids if mask is None else ids.masked_fill(~mask, 0) for _, ids, _, mask in checks]
    bounds = torch.stack([t for ids in masked for t in (ids.min(), ids.max())]).tolist()
    for i, (name, _, vocab, _) in enumerate(checks):
        if bounds[2 * i] < 0 or bounds[2 * i + 1] >= vocab:
            ids = masked[i].cpu()
            b, t, value = _first_bad_position(ids, (ids < 0) | (ids >= vocab))
            raise ValueError(f"{name}[{b}, {t}] = {value} is outside the vocabulary [0, {vocab})")


def check_decoder_input_ids(decoder_input_ids: torch.Tensor | None, vocab_size: int, labels=None) -> None:
    """Shape and vocabulary checks of the decoder side (and of `labels`, -100 allowed), in one host sync."""
    if decoder_input_ids is None:
        raise ValueError("pass decoder_input_ids (or labels, to GRUSeq2SeqForConditionalGeneration)")
    if decoder_input_ids.dim() != 2 or decoder_input_ids.shape[1] == 0:
        raise ValueError(f"decoder_input_ids must be (batch, length>0), got {tuple(decoder_input_ids.shape)}")
    label_mask = None if labels is None else labels.ne(-100)
    _check_ranges([("decoder_input_ids", decoder_input_ids, vocab_size, None), ("labels", labels, vocab_size, label_mask)])


def check_labels(labels: torch.Tensor, vocab_size: int) -> None:
    """Labels are target ids or -100 (ignored)."""
    if labels.dim() != 2 or labels.shape[1] == 0:
        raise ValueError(f"labels must be (batch, length>0), got {tuple(labels.shape)}")
    _check_ranges([("labels", labels, vocab_size, labels.ne(-100))])


def source_lengths(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, vocab_size: int):
    """
    Validate the encoder input and return `(lengths, right_padded, mask)`: real tokens per row (a CPU tensor, as
    packing needs), whether every row's real tokens come first, and the boolean mask. One host sync covers lengths
    and the vocabulary check.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}): every sentence needs a token")
    if attention_mask is None:
        mask = torch.ones_like(input_ids, dtype=torch.bool)
    else:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has "
                f"{tuple(input_ids.shape)}: they must match"
            )
        mask = attention_mask.bool()
    real = input_ids.masked_fill(~mask, 0)
    right_padded = (mask[:, :-1] >= mask[:, 1:]).all()
    stats = torch.cat([mask.sum(1), torch.stack([real.min(), real.max(), right_padded.long()])]).tolist()
    lengths, (lo, hi, right_padded) = stats[:-3], stats[-3:]
    if lo < 0 or hi >= vocab_size:
        _check_ranges([("input_ids", input_ids, vocab_size, mask)])
    empty = [i for i, n in enumerate(lengths) if n == 0]
    if empty:
        raise ValueError(f"attention_mask row {empty[0]} has no tokens: empty sentences cannot be encoded")
    return torch.tensor(lengths), bool(right_padded), mask


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: `[start, y_0, ..., y_{T-2}]`, with -100 replaced by padding."""
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


# ----------------------------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------------------------


def _cudnn_runs_bf16_rnns() -> bool:
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return version is not None and version >= 91300


def run_gru(rnn: nn.GRU, inputs, state: torch.Tensor | None, policy: str):
    """
    Call `rnn` under the precision policy `config.gru_autocast` (see the config). Outside autocast, or with
    policy "torch", this is a plain call; otherwise autocast is switched off around the GRU and inputs, state and
    weights are cast to the chosen dtype (the weight casts are differentiable, as autocast's own are).
    """
    device = inputs.data.device.type  # `inputs` may be a PackedSequence
    if policy == "torch" or not torch.is_autocast_enabled(device):
        return rnn(inputs, state)
    dtype = torch.float32 if policy == "float32" else torch.get_autocast_dtype(device)
    if device == "cuda" and dtype == torch.bfloat16 and not _cudnn_runs_bf16_rnns():
        return rnn(inputs, state)
    state = None if state is None else state.to(dtype)
    with torch.autocast(device, enabled=False):
        if all(p.dtype == dtype for p in rnn.parameters()):
            return rnn(inputs.to(dtype), state)
        weights = {name: p.to(dtype) for name, p in rnn.named_parameters()}
        return torch.func.functional_call(rnn, weights, (inputs.to(dtype), state))


def reading_order(mask: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """(B, S) mask -> (B, S) positions: each row's real tokens in reading order (last to first if `reverse`),
    then its padding. Gathering with it turns any padding into right padding."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    key = torch.where(mask, -positions if reverse else positions, mask.shape[1])
    return torch.argsort(key, dim=1, stable=True)


def _gru(config: GRUSeq2SeqConfig, input_size: int, bidirectional: bool = False) -> nn.GRU:
    layers = config.num_hidden_layers
    dropout = config.dropout if layers > 1 else 0.0
    return nn.GRU(input_size, config.hidden_size, layers, dropout=dropout, batch_first=True, bidirectional=bidirectional)


class GRUSeq2SeqEncoder(nn.Module):
    """Embedding + GRU over the real tokens of each sentence (packed), so padding never changes a result."""

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
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> GRUSeq2SeqEncoderOutput | tuple:
        lengths, right_padded, mask = source_lengths(input_ids, attention_mask, self.config.vocab_size)
        batch, src_len = input_ids.shape
        order = None
        if self.config.reverse_source or not right_padded:  # real tokens first, in reading order
            order = reading_order(mask, reverse=self.config.reverse_source)
            input_ids = input_ids.gather(1, order)

        if int(lengths.min()) == src_len:  # no padding: skip packing
            outputs, h_n = run_gru(self.rnn, self.embedding(input_ids), None, self.config.gru_autocast)  # (B,S,D)
        else:
            packed = pack_padded_sequence(input_ids, lengths, batch_first=True, enforce_sorted=False)
            embedded = PackedSequence(
                self.embedding(packed.data), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
            )  # only real tokens are embedded: padding ids are never read
            outputs, h_n = run_gru(self.rnn, embedded, None, self.config.gru_autocast)  # h_n: (L*dirs, B, H)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src_len)
        if order is not None:  # put outputs back at the positions their tokens came from
            outputs = torch.zeros_like(outputs).scatter_(1, order[..., None].expand_as(outputs), outputs)

        final_state = self._join_directions(h_n).transpose(0, 1)  # (B, L, H)
        out = GRUSeq2SeqEncoderOutput(last_hidden_state=outputs, final_state=final_state)
        return out if return_dict is not False else out.to_tuple()

    def _join_directions(self, h_n: torch.Tensor) -> torch.Tensor:
        """(L * dirs, B, H) -> (L, B, H)."""
        if self.bridge is None:
            return h_n
        layers, batch, hidden = self.config.num_hidden_layers, h_n.shape[1], h_n.shape[2]
        both = h_n.view(layers, 2, batch, hidden).permute(0, 2, 1, 3).reshape(layers, batch, 2 * hidden)
        return torch.tanh(self.bridge(both))


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

    def forward(
        self, input_ids: torch.LongTensor, state: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) ids, (L, B, H) state, (B, H) context -> outputs (B, T, H), new state (L, B, H)."""
        embedded = self.embedding(input_ids)  # (B, T, E)
        context = context[:, None, :].expand(-1, input_ids.shape[1], -1).to(embedded.dtype)  # (B, T, H)
        inputs = torch.cat([embedded, context], dim=-1)  # (B, T, E + H)
        return run_gru(self.rnn, inputs, state.to(embedded.dtype), self.config.gru_autocast)


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
    # The decoder state is recurrent: generate() cannot rewind it (no assisted decoding).
    _is_stateful = True

    def _init_weights(self, module):
        """d2l's scheme: Xavier-uniform GRU and linear weights, zero biases, normal(0, init_std) embeddings."""
        if isinstance(module, nn.GRU):
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

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        model = super().from_pretrained(*args, **kwargs)
        model.compact_gru_weights()
        return model

    def compact_gru_weights(self):
        """
        Give each GRU's weights memory of their own. Loading can leave them as views into the checkpoint, whose
        alignment changes CPU results in the last bit and which, on CUDA, is not the single flat buffer cuDNN
        wants (without it every call re-packs the weights).
        """
        for module in self.modules():
            if isinstance(module, nn.GRU):
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
        `config.custom_pipelines` with the `translation` task pointing at `GRUSeq2SeqTranslationPipeline` (loaded
        with `AutoModelForSeq2SeqLM`) for a model that can generate; withdrawn for one that cannot (a bare
        `GRUSeq2SeqModel` has no head to translate with).

        The relative import is also what ships the pipeline: Transformers copies the files a remote-code module
        imports relatively (found by scanning its text for `from .x import`) when it saves or downloads that module,
        so pipeline_gru_seq2seq.py travels with this file, also when a downloaded copy of the model is saved again.
        """
        from .pipeline_gru_seq2seq import GRUSeq2SeqTranslationPipeline

        impl = f"{GRUSeq2SeqTranslationPipeline.__module__.rsplit('.', 1)[-1]}.{GRUSeq2SeqTranslationPipeline.__name__}"
        pipelines = dict(getattr(self.config, "custom_pipelines", None) or {})
        if self.can_generate():
            pipelines["translation"] = {"impl": impl, "pt": ["AutoModelForSeq2SeqLM"], "type": "text"}
        elif pipelines.get("translation", {}).get("impl") == impl:
            del pipelines["translation"]
        return pipelines

    def _resize_token_embeddings(self, new_num_tokens, pad_to_multiple_of=None, mean_resizing=True):
        """
        Behind `resize_token_embeddings` (which then sets `config.vocab_size`): resize the source vocabulary and,
        when the target vocabulary is the same one (`decoder_vocab_size == vocab_size`, as with the training
        script's shared tokenizer), the decoder embedding and the output layer with it. A separate target vocabulary
        keeps its size; `resize_decoder_token_embeddings` resizes it. Sizes that would drop a special token raise
        before any weight changes.
        """
        old = self.get_input_embeddings()
        size = old.num_embeddings if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
        shared = self.config.decoder_vocab_size == self.config.vocab_size
        self._check_vocabulary_sizes(size, size if shared else self.config.decoder_vocab_size)
        new = self._get_resized_embeddings(old, new_num_tokens, pad_to_multiple_of, mean_resizing)
        new.requires_grad_(old.weight.requires_grad)
        self.set_input_embeddings(new)
        if shared:
            self.resize_decoder_token_embeddings(new.num_embeddings, mean_resizing=mean_resizing)
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

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() must not build a key/value cache for us: the first forward creates a GRUSeq2SeqCache.
        return False


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


# Extra `generate()` model kwargs that reach `forward`; the rest (e.g. `next_sequence_length`) are generate's own.
_GENERATE_FORWARD_KWARGS = ("decoder_attention_mask", "output_attentions", "output_hidden_states", "return_dict")


def _ids_come_from_generate(cache) -> bool:
    """True (once) when `prepare_inputs_for_generation` vouched for this step's decoder ids."""
    if cache is None or not cache.ids_from_generate:
        return False
    cache.ids_from_generate = False
    return True


def _as_encoder_output(encoder_outputs) -> GRUSeq2SeqEncoderOutput:
    if isinstance(encoder_outputs, GRUSeq2SeqEncoderOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, (tuple, list)):
        return GRUSeq2SeqEncoderOutput(*encoder_outputs)
    return GRUSeq2SeqEncoderOutput(**dict(encoder_outputs))


class GRUSeq2SeqModel(GRUSeq2SeqPreTrainedModel):
    """Encoder + decoder GRU, no head: returns the decoder's top-layer states."""

    def __init__(self, config: GRUSeq2SeqConfig):
        super().__init__(config)
        self.encoder = GRUSeq2SeqEncoder(config)
        self.decoder = GRUSeq2SeqDecoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embedding

    def set_input_embeddings(self, value):
        self.encoder.embedding = value

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: GRUSeq2SeqEncoderOutput | tuple | None = None,
        cache: GRUSeq2SeqCache | None = None,
        past_key_values: GRUSeq2SeqCache | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Seq2SeqModelOutput | tuple:
        r"""
        decoder_attention_mask is accepted and ignored: the decoder is causal, so right padding of the target
        cannot reach earlier positions, and left-padded targets are not supported.
        cache / past_key_values: a `GRUSeq2SeqCache` from the previous step (the name depends on the Transformers
        version; either is read).
        """
        encoder_outputs = self.encode(input_ids, attention_mask, encoder_outputs)
        cache = _merge_cache_arguments(cache, past_key_values)
        if not _ids_come_from_generate(cache):
            check_decoder_input_ids(decoder_input_ids, self.config.decoder_vocab_size)
        hidden, new_cache = self.decode(encoder_outputs, decoder_input_ids, cache, use_cache)
        out = Seq2SeqModelOutput(
            last_hidden_state=hidden,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            **{CACHE_FIELD: new_cache},
        )
        return out if return_dict is not False else out.to_tuple()

    def encode(self, input_ids, attention_mask=None, encoder_outputs=None) -> GRUSeq2SeqEncoderOutput:
        """The given encoder outputs (a tuple is accepted), or the encoder run on `input_ids`."""
        if encoder_outputs is not None:
            return _as_encoder_output(encoder_outputs)
        if input_ids is None:
            raise ValueError("pass input_ids (or encoder_outputs)")
        return self.encoder(input_ids, attention_mask, return_dict=True)

    def decode(
        self,
        encoder_outputs: GRUSeq2SeqEncoderOutput | tuple,
        decoder_input_ids: torch.LongTensor,
        cache: GRUSeq2SeqCache | None = None,
        use_cache: bool | None = None,
    ) -> tuple[torch.Tensor, "GRUSeq2SeqCache | None"]:
        """
        Run the decoder over `decoder_input_ids` (already checked against the vocabulary), starting from `cache`
        or, without one, from the encoder's final state. Returns the top-layer outputs `(B, T, H)` and, with
        `use_cache`, the cache holding the new state (a given cache is updated in place, as Transformers' are).
        """
        final_state = encoder_outputs.final_state  # (B, L, H)
        batch = decoder_input_ids.shape[0]
        if final_state.shape[0] != batch:
            raise ValueError(f"encoder batch {final_state.shape[0]} != decoder_input_ids batch {batch}")
        if cache is None:
            start, seen = final_state.transpose(0, 1).contiguous(), 0  # (L, B, H)
        else:
            start, seen = cache.state, cache.seen_tokens
            if start.shape[1] != batch:
                raise ValueError(f"cache batch {start.shape[1]} != decoder_input_ids batch {batch}")
        outputs, new_state = self.decoder(decoder_input_ids, start, final_state[:, -1])  # (B, T, H), (L, B, H)

        use_cache = use_cache if use_cache is not None else self.config.use_cache
        new_cache = None
        if use_cache:
            new_cache = cache if cache is not None else GRUSeq2SeqCache(new_state)
            new_cache.state, new_cache.seen_tokens = new_state, seen + decoder_input_ids.shape[1]
        return outputs, new_cache


class GRUSeq2SeqForConditionalGeneration(GRUSeq2SeqPreTrainedModel, GenerationMixin):
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

    @staticmethod
    def default_generation_config(config: GRUSeq2SeqConfig) -> GenerationConfig:
        """Defaults for translation: beam search of 4, stop at end of sentence or after 128 new tokens."""
        return GenerationConfig(
            max_new_tokens=128,
            num_beams=4,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
            pad_token_id=config.pad_token_id,
            decoder_start_token_id=config.decoder_start_token_id,
        )

    def _beam_search(self, *args, **kwargs):
        # Transformers before 5.2x sizes the beam candidates with `config.get_text_config().vocab_size`, which for
        # this model is the *source* vocabulary; the logits cover the target one. Show it the target size meanwhile.
        vocab_size = self.config.vocab_size
        self.config.vocab_size = self.config.decoder_vocab_size
        try:
            return super()._beam_search(*args, **kwargs)
        finally:
            self.config.vocab_size = vocab_size

    def get_input_embeddings(self):
        return self.model.encoder.embedding

    def set_input_embeddings(self, value):
        self.model.encoder.embedding = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def get_encoder(self):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Used by `DataCollatorForSeq2Seq`: labels shifted right behind `decoder_start_token_id`."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: GRUSeq2SeqEncoderOutput | tuple | None = None,
        cache: GRUSeq2SeqCache | None = None,
        past_key_values: GRUSeq2SeqCache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> Seq2SeqLMOutput | tuple:
        r"""
        labels (`(batch, tgt_len)`): target ids, -100 where no loss is wanted. Without `decoder_input_ids`, the
        decoder reads the labels shifted right. The loss is token-level cross-entropy in float32, summed and divided
        by `num_items_in_batch` when given (the Trainer's count over all gradient-accumulation steps), else averaged.
        """
        cache = _merge_cache_arguments(cache, past_key_values)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
            check_labels(labels, self.config.decoder_vocab_size)  # covers the shifted copy too
        elif not _ids_come_from_generate(cache):
            check_decoder_input_ids(decoder_input_ids, self.config.decoder_vocab_size, labels)
        encoder_outputs = self.model.encode(input_ids, attention_mask, encoder_outputs)
        hidden, new_cache = self.model.decode(encoder_outputs, decoder_input_ids, cache, use_cache)
        logits = self.lm_head(hidden)  # (B, T, V)
        loss = None if labels is None else token_cross_entropy(logits, labels, num_items_in_batch)
        out = Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            **{CACHE_FIELD: new_cache},
        )
        return out if return_dict is not False else out.to_tuple()

    def prepare_inputs_for_generation(self, input_ids, cache=None, past_key_values=None, attention_mask=None,
                                      encoder_outputs=None, use_cache=None, **kwargs):
        """
        The inputs of one `generate()` step: with a cache, only the tokens its state has not read yet (one per step);
        without, the whole prefix. (Leaner than the generic version, which inspects `forward` at every step.)

        Tokens after the prompt come from generate's own choice over this model's logits, so they are inside the
        vocabulary: the cache is marked so that `forward` skips the check, and with it a host sync per token.
        """
        cache = _merge_cache_arguments(cache, past_key_values)
        if cache is not None:
            input_ids = input_ids[:, cache.seen_tokens:]
            cache.ids_from_generate = not kwargs.get("is_first_iteration")  # a prompt is the user's: checked
        inputs = {"decoder_input_ids": input_ids, "encoder_outputs": encoder_outputs,
                  "attention_mask": attention_mask, "use_cache": use_cache, "cache": cache}
        inputs.update((k, v) for k, v in kwargs.items() if k in _GENERATE_FORWARD_KWARGS)
        return inputs

    # ------------------------------------------------------------------------------------------------------------
    # d2l conversion
    # ------------------------------------------------------------------------------------------------------------

    @classmethod
    def from_d2l(cls, encoder: nn.Module, decoder: nn.Module, *, pad_token_id: int, bos_token_id: int,
                 eos_token_id: int, **config_kwargs) -> "GRUSeq2SeqForConditionalGeneration":
        """
        Build the model equivalent to d2l's `Seq2SeqEncoder` / `Seq2SeqDecoder` pair (modules with `embedding`,
        `rnn` and, for the decoder, `dense`). Sizes, layers and dropout are read off the modules.
        """
        if isinstance(decoder.dense.weight, nn.parameter.UninitializedParameter):
            raise ValueError("the d2l decoder's LazyLinear `dense` is uninitialised: run one batch through it first")
        state_dict = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
        state_dict.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
        rnn = encoder.rnn if isinstance(encoder.rnn, nn.GRU) else encoder.rnn.rnn  # d2l wraps nn.GRU in d2l.GRU
        config_kwargs.setdefault("dropout", rnn.dropout)
        return cls.from_d2l_state_dict(
            state_dict, pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
            **config_kwargs,
        )

    @classmethod
    def from_d2l_state_dict(cls, state_dict: dict[str, torch.Tensor], *, pad_token_id: int, bos_token_id: int,
                            eos_token_id: int, **config_kwargs) -> "GRUSeq2SeqForConditionalGeneration":
        """
        Build the model from the state dict of a d2l `EncoderDecoder`: keys `encoder.embedding.weight`,
        `encoder.rnn.weight_ih_l0` (or `encoder.rnn.rnn.weight_ih_l0` when d2l's `GRU` wrapper holds the
        `nn.GRU`), ..., `decoder.dense.weight`. Sizes come from the tensors; dropout is not stored there, so it is
        the config default unless given.
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
        model = cls(config)
        renamed = {}
        for key, value in state_dict.items():
            if key.startswith("decoder.dense."):
                renamed["lm_head." + key.removeprefix("decoder.dense.")] = value
            else:
                renamed["model." + key] = value
        model_keys = set(model.state_dict())
        unexpected = sorted(set(renamed) - model_keys)
        absent = sorted(model_keys - set(renamed))
        if unexpected or absent:
            raise ValueError(f"d2l state dict does not match the model: unexpected {unexpected}, missing {absent}")
        model.load_state_dict(renamed)
        return model.eval()


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


__all__ = [
    "GRUSeq2SeqCache",
    "GRUSeq2SeqEncoderOutput",
    "GRUSeq2SeqForConditionalGeneration",
    "GRUSeq2SeqModel",
    "GRUSeq2SeqPreTrainedModel",
]
