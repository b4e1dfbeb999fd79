"""Configuration of the d2l GRU encoder-decoder.

This file travels to the Hub as remote code: it imports only transformers and
huggingface_hub, never the rest of this package.
"""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class GRUSeq2SeqConfig(PreTrainedConfig):
    r"""
    Configuration of [`GRUSeq2SeqModel`] and [`GRUSeq2SeqForConditionalGeneration`]: the GRU encoder-decoder of
    *Dive into Deep Learning* (section "Sequence-to-Sequence Learning for Machine Translation").

    Args:
        vocab_size (`int`): source (encoder) vocabulary size.
        decoder_vocab_size (`int`, *optional*): target (decoder) vocabulary size; defaults to `vocab_size`.
        embedding_size (`int`): size of both token embeddings.
        hidden_size (`int`): GRU state size (per direction when `bidirectional_encoder`).
        num_hidden_layers (`int`): GRU layers, the same in encoder and decoder.
        dropout (`float`): dropout between stacked GRU layers, in [0, 1).
        bidirectional_encoder (`bool`): run the encoder GRU both ways. Each layer's two final states are joined as
            `tanh(W [h_forward ; h_backward] + b)` (one `nn.Linear(2 * hidden_size, hidden_size)` shared by all
            layers, the encoder's "bridge") to give the decoder's initial state; the context is the top layer of that
            joined state. Off by default, as in d2l.
        reverse_source (`bool`): read each source sentence from its last token to its first (Sutskever et al.,
            2014), so the decoder starts next to the words it translates first. Padding is handled as usual. Off by
            default, as in d2l.
        tie_word_embeddings (`bool`): share the decoder embedding with the output projection
            (needs `embedding_size == hidden_size`).
        pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id (`int`): special ids; the decoder start
            defaults to `bos_token_id`. All must lie inside the vocabularies.
        init_std (`float`): standard deviation of the normal initialisation of the embeddings. 1.0 is PyTorch's
            default, which d2l keeps; the 0.02 of Transformer models leaves a GRU's inputs so small that it learns
            many times slower.
        gru_autocast (`str`): what the GRUs run in under `torch.autocast` (the embeddings and the head follow
            autocast as usual). `"match"` (default): autocast's own dtype, so bf16 autocast really runs the GRU in
            bf16 (on CUDA this needs cuDNN >= 9.13; older cuDNN falls back to `"torch"`). `"float32"`: keep the
            GRUs in float32 (TF32 where enabled). `"torch"`: leave it to autocast, which runs cuDNN GRUs in float16
            even under bf16 autocast.

    Example:

    ```python
    >>> from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration
    >>> config = GRUSeq2SeqConfig(vocab_size=1000, hidden_size=64, embedding_size=32)
    >>> model = GRUSeq2SeqForConditionalGeneration(config)
    ```
    """

    model_type = "gru_seq2seq"
    keys_to_ignore_at_inference = ["cache", "past_key_values", "encoder_last_hidden_state"]

    vocab_size: int = 8000
    decoder_vocab_size: int | None = None
    embedding_size: int = 256
    hidden_size: int = 256
    num_hidden_layers: int = 2
    dropout: float | int = 0.2
    bidirectional_encoder: bool = False
    reverse_source: bool = False
    tie_word_embeddings: bool = False
    init_std: float | int = 1.0
    gru_autocast: str = "match"
    use_cache: bool = True
    is_encoder_decoder: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    decoder_start_token_id: int | None = None

    def __post_init__(self, **kwargs):
        if self.decoder_vocab_size is None:
            self.decoder_vocab_size = self.vocab_size
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = self.bos_token_id
        super().__post_init__(**kwargs)
        self.check_values()

    def check_values(self):
        """Raise `ValueError` naming the first field whose value cannot build a working model."""
        for name in ("vocab_size", "decoder_vocab_size", "embedding_size", "hidden_size", "num_hidden_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"GRUSeq2SeqConfig.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GRUSeq2SeqConfig.dropout must lie in [0, 1), got {self.dropout!r}")
        if self.gru_autocast not in ("match", "float32", "torch"):
            raise ValueError(
                f"GRUSeq2SeqConfig.gru_autocast must be 'match', 'float32' or 'torch', got {self.gru_autocast!r}"
            )
        if self.init_std <= 0:
            raise ValueError(f"GRUSeq2SeqConfig.init_std must be positive, got {self.init_std!r}")
        # pad/eos are used on both sides; bos/decoder start feed the decoder only.
        both = min(self.vocab_size, self.decoder_vocab_size)
        limits = {
            "pad_token_id": both,
            "eos_token_id": both,
            "bos_token_id": self.decoder_vocab_size,
            "decoder_start_token_id": self.decoder_vocab_size,
        }
        for name, limit in limits.items():
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 <= value < limit):
                raise ValueError(f"GRUSeq2SeqConfig.{name}={value!r} lies outside the vocabulary [0, {limit})")
        if self.decoder_start_token_id is None:
            raise ValueError("GRUSeq2SeqConfig.decoder_start_token_id (or bos_token_id) must be set")
        if self.tie_word_embeddings and self.embedding_size != self.hidden_size:
            raise ValueError(
                "GRUSeq2SeqConfig.tie_word_embeddings needs embedding_size == hidden_size, got "
                f"embedding_size={self.embedding_size}, hidden_size={self.hidden_size}"
            )


__all__ = ["GRUSeq2SeqConfig"]
