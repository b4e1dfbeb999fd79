"""A `translation` pipeline for the d2l GRU encoder-decoder.

Transformers 5 has no built-in `translation` task any more. A model brings one back by naming a pipeline class under
`custom_pipelines` in its config and shipping that class beside its code; `GRUSeq2SeqPreTrainedModel.save_pretrained`
does both (for the tasks `translation`, `text2text-generation` and, for a model trained by this package,
`translation_<source>_to_<target>`), so after `push_to_hub` anyone can run

    pipeline("translation", model="user/repo", trust_remote_code=True)

This file travels to the Hub as remote code: it imports only torch and transformers.
"""

import torch
from transformers import Pipeline
from transformers.utils import logging

logger = logging.get_logger(__name__)


def unknown_words(tokenizer, text: str) -> list[str]:
    """
    The pieces of `text` that `tokenizer` maps to its unknown token, in order, each once: what a model will read as
    `<unk>` and translate as best it can (a word-level vocabulary is closed; byte-level BPE has no unknown token, so
    this is always empty for it). A fast tokenizer names them exactly, by offsets; a slow one word by word.
    """
    unk = tokenizer.unk_token_id
    if unk is None or not text.strip():
        return []
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans = [span for token, span in zip(encoded["input_ids"], encoded["offset_mapping"]) if token == unk]
        pieces = [text[start:end].strip() for start, end in spans]
    else:
        pieces = [word for word in text.split() if unk in tokenizer(word, add_special_tokens=False)["input_ids"]]
    return list(dict.fromkeys(piece for piece in pieces if piece))


def list_for_a_line(labels: list[str], limit: int = 20) -> str:
    """`a, b, c` (and how many more past `limit`): a list that keeps a warning to one line."""
    return ", ".join(labels[:limit]) + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


class GRUSeq2SeqTranslationPipeline(Pipeline):
    """
    Translate sentences with a seq2seq model that can `generate()` and its tokenizer.

    Call it with a string, which gives `[{"translation_text": ...}]`, or with a list of strings, which gives one such
    dict per sentence (a list of `num_return_sequences` dicts per sentence when that is above 1), as the
    `TranslationPipeline` of Transformers 4 did. `batch_size=` runs that many sentences through each `generate()`.
    Built for the task `text2text-generation`, it answers `generated_text` instead, as Transformers 4 did.

    A blank sentence (empty, or only whitespace) gives "" without reaching the model; the other sentences of its
    batch are translated exactly as they would be alone.

    Keywords, at construction or per call (a call's win):
        truncation (`bool`): cut sources to the tokenizer's `model_max_length`.
        return_tensors (`bool`): give `{"translation_token_ids": ...}` instead of text (empty for a blank sentence).
        clean_up_tokenization_spaces (`bool`): passed to the tokenizer's `decode`, whose text is then stripped.
        anything else (`num_beams`, `max_new_tokens`, `max_length`, `do_sample`, `generation_config`, ...): passed to
            `model.generate`, whose defaults are the model's generation config.

    Example:

    ```python
    >>> translator = GRUSeq2SeqTranslationPipeline(model=model, tokenizer=tokenizer, device="cpu")
    >>> translator(["go .", "i lost ."], batch_size=2, num_beams=2, max_new_tokens=10)  # two dicts, one per sentence
    ```
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False
    # Generation keywords are routed by `_sanitize_parameters` below, the same way on every Transformers 5.x: the base
    # class's own routing (switched on by this flag) changed between minor versions.
    _pipeline_calls_generate = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            raise ValueError(f"{type(self).__name__} needs a tokenizer: pass tokenizer=...")
        if not self.model.can_generate():
            raise ValueError(
                f"{type(self).__name__} needs a model that can generate, got {type(self.model).__name__}: "
                "load it with AutoModelForSeq2SeqLM"
            )

    @property
    def output_key(self) -> str:
        return "generated_text" if self.task == "text2text-generation" else "translation_text"

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list):
            if not inputs:
                return []
            results = super().__call__(inputs, *args, **kwargs)
            return [r[0] for r in results] if all(len(r) == 1 for r in results) else results
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(self, truncation=None, return_tensors=None, clean_up_tokenization_spaces=None,
                             **generate_kwargs):
        preprocess_params = {} if truncation is None else {"truncation": truncation}
        postprocess_params = {}
        if return_tensors is not None:
            postprocess_params["return_tensors"] = return_tensors
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return preprocess_params, generate_kwargs, postprocess_params

    def preprocess(self, text, truncation=False):
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__} translates strings, got {type(text).__name__}: {text!r}")
        if not text.strip():  # a row with no token: `_forward` leaves it out of generate()
            return {"input_ids": torch.tensor([[self.tokenizer.pad_token_id or 0]]),
                    "attention_mask": torch.zeros(1, 1, dtype=torch.long)}
        encoded = self.tokenizer(text, return_tensors="pt", truncation=truncation)
        if unknown := unknown_words(self.tokenizer, text):
            named = list_for_a_line([f'"{word}"' for word in unknown])
            logger.warning(f"unknown to the tokenizer, translated as <unk>: {named} (in {text!r})")
        if encoded["input_ids"].shape[1] == 0:
            raise ValueError(f"nothing to translate: the tokenizer turned {text!r} into no tokens")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}  # (1, T) each

    def _forward(self, model_inputs, **generate_kwargs):
        ids, mask = model_inputs["input_ids"], model_inputs["attention_mask"]  # (B, T): the batch of sentences
        blank = ~mask.bool().any(1)  # (B,)
        if not blank.any():
            return {"output_ids": self._generate(ids, mask, generate_kwargs), "blank": blank}
        # Translate the others without the blank rows: padding never changes a sentence's output.
        keep = (~blank).nonzero()[:, 0]
        if len(keep):
            found = self._generate(ids[keep], mask[keep], generate_kwargs)  # (B_kept, n, T_out)
        else:
            config = generate_kwargs.get("generation_config") or self.model.generation_config
            n = generate_kwargs.get("num_return_sequences") or config.num_return_sequences or 1
            found = ids.new_zeros(0, n, 0)
        output_ids = found.new_full((ids.shape[0], *found.shape[1:]), self.tokenizer.pad_token_id or 0)
        output_ids[keep] = found
        return {"output_ids": output_ids, "blank": blank}  # (B, n, T_out), (B,)

    def _generate(self, ids, mask, generate_kwargs):
        output = self.model.generate(input_ids=ids, attention_mask=mask, **generate_kwargs)
        output_ids = output if torch.is_tensor(output) else output.sequences  # (batch * n, T_out)
        return output_ids.reshape(ids.shape[0], -1, output_ids.shape[-1])  # (batch, n, T_out)

    def postprocess(self, model_outputs, return_tensors=False, clean_up_tokenization_spaces=None):
        sequences = model_outputs["output_ids"][0]  # (n, T_out): the batch was split back into sentences
        if bool(model_outputs["blank"][0]):
            sequences = sequences[:, :0]
        if return_tensors:
            return [{"translation_token_ids": ids} for ids in sequences]
        texts = self.tokenizer.batch_decode(
            sequences, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces
        )
        return [{self.output_key: text.strip()} for text in texts]


__all__ = ["GRUSeq2SeqTranslationPipeline", "unknown_words"]
