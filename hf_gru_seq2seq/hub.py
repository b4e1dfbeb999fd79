"""Share a GRU seq2seq model on the Hugging Face Hub in a single commit.

`model.push_to_hub` and `tokenizer.push_to_hub` make one commit each. `push_to_hub` below makes one for everything a
user of the repo needs: safetensors weights, config (with `auto_map` and `custom_pipelines`), generation config, the
model and pipeline code (so `trust_remote_code=True` works without this package), tokenizer files, the model card
and any plot PNG. It reads its source and never writes to it: files are staged in a temporary folder.
"""

import atexit
import json
import shutil
import tempfile
from contextlib import contextmanager
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from . import __version__
from .configuration_gru_seq2seq import GRUSeq2SeqConfig
from .modeling_gru_seq2seq import GRUSeq2SeqForConditionalGeneration, GRUSeq2SeqModel

# What a shared folder may carry. The rest (optimizer and trainer state, pickles, logs) stays home.
CONFIG_AND_TOKENIZER_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
)
SHARED_FILES = ("*.safetensors", "model.safetensors.index.json", *CONFIG_AND_TOKENIZER_FILES, "chat_template.jinja",
                "README.md", "*.png")
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
# An ONNX export in the folder's onnx/ subfolder (hf-gru-seq2seq-export-onnx MODEL MODEL/onnx) travels beside the
# weights, as in Hub repos: its graphs, their external data, its config and tokenizer, and its remote code.
ONNX_FOLDER = "onnx"
ONNX_FILES = ("*.onnx", "*.onnx.data", "*.onnx_data", "*.py", *CONFIG_AND_TOKENIZER_FILES)


class HubPushError(OSError):
    """A push that the Hub refused or that never reached it; the message names the repo and the reason."""


def push_to_hub(folder_or_model, repo_id: str, tokenizer=None, card=None, revision: str | None = None,
                commit_message: str = "Upload GRU seq2seq model", private: bool = False,
                token: str | None = None) -> CommitInfo:
    """
    Push a model to `repo_id` (created if needed) in one commit, and return that commit (`.oid`, `.commit_url`).

    Args:
        folder_or_model: a `GRUSeq2SeqForConditionalGeneration` (or `GRUSeq2SeqModel`), or a folder written by its
            `save_pretrained`. From a folder, only the files a user needs are pushed (see `SHARED_FILES`, and an ONNX
            export in its `onnx/` subfolder, see `ONNX_FILES`); missing
            model code, `auto_map` or `custom_pipelines` entries are filled in from this package.
        tokenizer: saved beside the model (replacing a folder's tokenizer files).
        card: the model card, as markdown text or a `huggingface_hub.ModelCard`; default: the folder's README.md,
            else a short card saying how to load the model.
        revision: branch to commit to, created from `main` if missing.
        private: make a new repo private (an existing repo keeps its visibility).
        token: Hub token; default: the logged-in one (`hf auth login`) or `HF_TOKEN`.

    Raises:
        ValueError: a bad `repo_id`, or a folder that is not a shareable GRU seq2seq model (no config.json, another
            model type, weights only in pickle formats).
        HubPushError: the Hub was unreachable or refused the push (bad token, missing repo, server error). Nothing
            was committed then, so pushing again is safe.
    """
    try:
        validate_repo_id(repo_id)
    except ValueError as err:
        raise ValueError(f"cannot push to {repo_id!r}: {err}") from None
    api = HfApi(token=token, library_name="hf_gru_seq2seq", library_version=__version__)
    with tempfile.TemporaryDirectory(prefix="gru_seq2seq_push_") as stage:
        stage = Path(stage)
        _stage_upload(folder_or_model, stage, tokenizer, card, repo_id)
        operations = [CommitOperationAdd(path_in_repo=p.relative_to(stage).as_posix(), path_or_fileobj=str(p))
                      for p in sorted(stage.rglob("*")) if p.is_file()]
        with _explained(repo_id, api.endpoint):
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            return api.create_commit(repo_id, operations=operations, commit_message=commit_message, revision=revision)


def _stage_upload(folder_or_model, stage: Path, tokenizer, card, repo_id: str) -> None:
    """Write into `stage` everything one push uploads: the model (or a folder's shareable files), tokenizer, card."""
    if hasattr(folder_or_model, "save_pretrained"):
        model_type = getattr(getattr(folder_or_model, "config", None), "model_type", None)
        if model_type != GRUSeq2SeqConfig.model_type:
            raise ValueError(f"push_to_hub shares GRU seq2seq models, got a {type(folder_or_model).__name__} "
                             f"(model_type {model_type!r})")
        folder_or_model.save_pretrained(stage)
    else:
        _stage_folder(Path(folder_or_model), stage)
    if tokenizer is not None:
        tokenizer.save_pretrained(stage)
    if card is not None:
        (stage / "README.md").write_text(str(card), encoding="utf-8")
    elif not (stage / "README.md").exists():
        (stage / "README.md").write_text(default_card(repo_id), encoding="utf-8")


def _stage_folder(folder: Path, stage: Path) -> None:
    """Copy the shareable files of `folder` into `stage`, completing its remote-code files and config entries."""
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder (nor a GRU seq2seq model) to push")
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    if "config.json" not in names:
        raise ValueError(f"{folder} has no config.json: write it with the model's save_pretrained")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != GRUSeq2SeqConfig.model_type:
        raise ValueError(f"{folder} holds a {config.get('model_type')!r} model, not a GRU seq2seq one "
                         f"({GRUSeq2SeqConfig.model_type!r})")
    if not any(fnmatch(n, "*.safetensors") for n in names):
        pickled = [n for n in names if any(fnmatch(n, pattern) for pattern in PICKLED_WEIGHTS)]
        raise ValueError(
            f"{folder} has no safetensors weights{f' (only {pickled})' if pickled else ''}: only safetensors are "
            "shared, so that nobody has to unpickle them; re-save the model with save_pretrained"
        )
    for name in names:
        if any(fnmatch(name, pattern) for pattern in SHARED_FILES):
            shutil.copy2(folder / name, stage / name)
    # What this package's save_pretrained writes for the same architecture: its code files and config entries.
    can_generate = "GRUSeq2SeqModel" not in (config.get("architectures") or [])
    reference = _reference_export(GRUSeq2SeqForConditionalGeneration if can_generate else GRUSeq2SeqModel)
    for path in reference.glob("*.py"):  # the folder's own copy when it has one: it matches its weights
        shutil.copy2(folder / path.name if (folder / path.name).is_file() else path, stage / path.name)
    expected = json.loads((reference / "config.json").read_text(encoding="utf-8"))
    completed = dict(config)
    for key in ("auto_map", "custom_pipelines"):
        completed[key] = {**expected.get(key, {}), **(config.get(key) or {})}
    if completed != config:
        (stage / "config.json").write_text(json.dumps(completed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    exported = folder / ONNX_FOLDER
    if exported.is_dir():
        (stage / ONNX_FOLDER).mkdir()
        for path in sorted(exported.iterdir()):
            if path.is_file() and any(fnmatch(path.name, pattern) for pattern in ONNX_FILES):
                shutil.copy2(path, stage / ONNX_FOLDER / path.name)
        # Transformers fetches remote code from the repo's root even for `subfolder="onnx"`, so the export's code
        # goes there, over the folder's own copy: it is the code that loaded these weights to export them.
        for path in sorted((stage / ONNX_FOLDER).glob("*.py")):
            shutil.copy2(path, stage / path.name)


@cache
def _reference_export(cls) -> Path:
    """A tiny model of class `cls`, saved once per process in a temporary folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="gru_seq2seq_reference_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    config = GRUSeq2SeqConfig(vocab_size=4, embedding_size=1, hidden_size=1, num_hidden_layers=1, dropout=0.0)
    cls(config).save_pretrained(folder)
    return folder


def default_card(repo_id: str) -> str:
    """A minimal model card: metadata for the Hub, and how to load the model without this package."""
    return f"""---
library_name: transformers
pipeline_tag: translation
tags:
- gru
- seq2seq
- d2l
- custom_code
---

# {repo_id}

The GRU encoder-decoder of *Dive into Deep Learning*, as a Transformers model. Its code ships with the weights, so
loading needs `trust_remote_code=True` (read the `.py` files first) but not the `hf-gru-seq2seq` package:

```python
from transformers import pipeline

translator = pipeline("translation", model="{repo_id}", trust_remote_code=True)
translator("go .")
```
"""


@contextmanager
def _explained(repo_id: str, endpoint: str):
    """Turn a failed Hub call into a `HubPushError` that names the repo, the endpoint and what to do."""
    try:
        yield
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        reason = {
            401: "the Hub refused the token (401): log in with `hf auth login`, or pass a valid token=",
            403: "the token may not write to this repo (403)",
            404: "the repo or revision was not found (404)",
        }.get(status, f"the Hub answered {status}")
        message = f"pushing to {repo_id!r} at {endpoint} failed: {reason}. Nothing was committed.\n{err}"
        raise HubPushError(message) from err
    except Exception as err:
        cause = err.__cause__ or err
        if any(word in type(cause).__name__ for word in ("Connect", "Timeout", "Network")):
            reason = f"could not reach the Hub ({type(cause).__name__}: {cause})"
        else:
            reason = f"{type(err).__name__}: {err}" + (f" ({cause})" if cause is not err else "")
        raise HubPushError(f"pushing to {repo_id!r} at {endpoint} failed: {reason}. Nothing was committed.") from err


__all__ = ["HubPushError", "default_card", "push_to_hub"]
