"""Share on the Hub: push once, then load anywhere, without this package.

`hub_server` (tests/hub_server.py) plays the Hub on 127.0.0.1 for the real `huggingface_hub` client. Clients run in
subprocesses, since huggingface_hub reads HF_ENDPOINT when imported; pulls run where `hf_gru_seq2seq` cannot be
imported (tests/without_package.py), as on a user's machine. Every client refuses connections to anything but
loopback and refuses to unpickle, and every test asserts that neither was attempted.
"""

import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from model_tester import TINY_SENTENCES, GRUSeq2SeqModelTester, tiny_tokenizer
from safetensors.torch import load_file
from without_package import run_without_package

from hf_gru_seq2seq import GRUSeq2SeqModel, GRUSeq2SeqTranslationPipeline

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = TINY_SENTENCES
REMOTE_CODE = {"configuration_gru_seq2seq.py", "modeling_gru_seq2seq.py", "pipeline_gru_seq2seq.py"}


# -- clients -----------------------------------------------------------------------------------------------------------

# Run first in every client. `report` / `save` hand results back; `error_of` returns the message of an expected error.
PRELUDE = r'''
import atexit, io, ipaddress, json, os, pickle, socket, sys
from pathlib import Path

OUT = Path(os.environ["HUB_CLIENT_OUT"])
SENTENCES = json.loads(os.environ["HUB_CLIENT_SENTENCES"])
sys.stdin = io.StringIO()  # a trust_remote_code prompt reads end-of-file at once instead of waiting for a user
_guard = {"refused": [], "unpickled": []}


def _loopback(host):
    host = host.decode() if isinstance(host, bytes) else host
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what):
    _guard["refused"].append(what)
    raise ConnectionRefusedError(f"test guard: {what} is not loopback")


_connect, _getaddrinfo, _create_connection = socket.socket.connect, socket.getaddrinfo, socket.create_connection


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _refuse(repr(address))
    return _connect(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        _refuse(repr(host))
    return _getaddrinfo(host, *args, **kwargs)


def _guarded_create_connection(address, *args, **kwargs):
    if not _loopback(address[0]):
        _refuse(repr(address))
    return _create_connection(address, *args, **kwargs)


socket.socket.connect, socket.getaddrinfo = _guarded_connect, _guarded_getaddrinfo
socket.create_connection = _guarded_create_connection


def _no_unpickling(name):
    def refuse(*args, **kwargs):
        _guard["unpickled"].append(name)
        raise RuntimeError(f"test guard: {name} called; a shared model must load without unpickling")
    return refuse


import torch

pickle.load, pickle.loads = _no_unpickling("pickle.load"), _no_unpickling("pickle.loads")
torch.load = _no_unpickling("torch.load")
atexit.register(lambda: (OUT / "guard.json").write_text(json.dumps(_guard)))


def report(**values):
    (OUT / "report.json").write_text(json.dumps(values))


def save(**tensors):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "tensors.safetensors"))


def error_of(call):
    try:
        call()
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    raise AssertionError("expected an error")
'''


def run_client(hub, code: str, out: Path, *, package: bool = False, env: dict | None = None):
    """Run `code` as a client of `hub` (the package importable only with `package=True`), with its cache in
    `out/home`. Returns what it `report`ed and `save`d, once checked that it reached only loopback and unpickled
    nothing."""
    out.mkdir(parents=True, exist_ok=True)
    full_env = {**hub.client_env(out / "home"), "HUB_CLIENT_OUT": str(out),
                "HUB_CLIENT_SENTENCES": json.dumps(SENTENCES), **(env or {})}
    program = PRELUDE + textwrap.dedent(code)
    if package:
        full_env = {**os.environ, **full_env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
        done = subprocess.run([sys.executable, "-c", program], env=full_env, capture_output=True, text=True,
                              timeout=300, cwd=out, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise AssertionError(f"client failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    else:
        run_without_package(program, env=full_env, cwd=out)
    guard = json.loads((out / "guard.json").read_text())
    assert guard == {"refused": [], "unpickled": []}, guard
    assert hub.unhandled == [], f"the test hub got requests it has no route for: {hub.unhandled}"
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    tensors = load_file(out / "tensors.safetensors") if (out / "tensors.safetensors").exists() else {}
    return report, tensors


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder`: content hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the published repos -----------------------------------------------------------------------------------------------

PUSH = '''
import hashlib, torch
from model_tester import GRUSeq2SeqModelTester, tiny_tokenizer
from hf_gru_seq2seq.hub import push_to_hub

tokenizer = tiny_tokenizer()
model = GRUSeq2SeqModelTester().model()
model.generation_config.update(num_beams=3, max_new_tokens=8)  # the repo's defaults, which pipelines must use
batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
decoder_input_ids = torch.tensor([[1, 4, 16, 9, 2]] * len(SENTENCES))

def outputs(m):
    with torch.no_grad():
        logits = m(**batch, decoder_input_ids=decoder_input_ids).logits
        hidden = m.model(**batch, decoder_input_ids=decoder_input_ids).last_hidden_state
        generated = m.generate(**batch, num_beams=2, max_new_tokens=6)
    return logits, hidden, generated

# v1: model.push_to_hub, then tokenizer.push_to_hub, as a Transformers user would
model.push_to_hub("alice/gru-tiny")
v1 = tokenizer.push_to_hub("alice/gru-tiny").oid
logits_v1, _, _ = outputs(model)
# v2: new weights on top
with torch.no_grad():
    model.lm_head.bias.add_(torch.linspace(-1, 1, model.lm_head.bias.numel()))
v2 = model.push_to_hub("alice/gru-tiny").oid
logits_v2, hidden_v2, generated_v2 = outputs(model)

# the helper, from a training folder: weights, tokenizer, card, a plot, and a pickle that must stay home
folder = OUT / "folder"
model.save_pretrained(folder)
tokenizer.save_pretrained(folder)
(folder / "README.md").write_text("---\\nlicense: mit\\n---\\n# GRU seq2seq, shared\\n")
(folder / "loss.png").write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(range(256)) * 4)
(folder / "training_args.bin").write_bytes(b"\\x80\\x04N.")

def files(path):
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(path.iterdir())}

before = files(folder)
shared = push_to_hub(folder, "alice/gru-shared", commit_message="Share the model")
after = files(folder)
dev = push_to_hub(model, "alice/gru-shared", tokenizer=tokenizer, card="# dev card\\n", revision="dev")

# with the package installed, the same repo loads through its code: no trust_remote_code
from transformers import AutoModelForSeq2SeqLM, pipeline
from hf_gru_seq2seq import GRUSeq2SeqTranslationPipeline
local = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny")
local_translator = pipeline("translation", model="alice/gru-tiny", pipeline_class=GRUSeq2SeqTranslationPipeline)
logits_local, _, _ = outputs(local)

report(v1=v1, v2=v2, shared=shared.oid, dev=dev.oid, folder_before=before, folder_after=after,
       translations=[t.strip() for t in tokenizer.batch_decode(generated_v2, skip_special_tokens=True)],
       local_class=type(local).__module__, local_pipeline_class=type(local_translator).__module__,
       local_translations=local_translator(SENTENCES, batch_size=4, num_beams=2, max_new_tokens=6))
save(input_ids=batch["input_ids"], decoder_input_ids=decoder_input_ids, logits_v1=logits_v1, logits_v2=logits_v2,
     hidden_v2=hidden_v2, logits_local=logits_local)
'''


@pytest.fixture(scope="module")
def hub(hub_server):
    # Text files over this size go through LFS like binary ones; modeling_gru_seq2seq.py is over it.
    hub_server.lfs_threshold = 16 * 1024
    return hub_server


@pytest.fixture(scope="module")
def published(hub, tmp_path_factory):
    """Repos `alice/gru-tiny` (pushed twice with `model.push_to_hub` + `tokenizer.push_to_hub`) and
    `alice/gru-shared` (pushed with `hf_gru_seq2seq.hub.push_to_hub`: main from a folder, `dev` from the objects),
    and what the package computes for them."""
    out = tmp_path_factory.mktemp("push")
    report, tensors = run_client(hub, inspect.getsource(tiny_tokenizer) + PUSH, out, package=True)
    return {**report, **tensors, "folder": out / "folder"}


def test_push_ships_weights_code_pipeline_and_tokenizer_in_one_commit(hub, published):
    """The helper's single commit holds everything a user needs and nothing pickled; the folder is left as it was."""
    history = hub.repos["alice/gru-shared"].history("main")
    assert [c.message for c in history] == ["Share the model", "initial commit"]
    assert history[0].oid == published["shared"]
    files = hub.files("alice/gru-shared")
    assert set(files) == {".gitattributes", "README.md", "config.json", "generation_config.json", "model.safetensors",
                          "tokenizer.json", "tokenizer_config.json", "loss.png"} | REMOTE_CODE
    assert files["loss.png"] == (published["folder"] / "loss.png").read_bytes()
    assert files["README.md"] == (published["folder"] / "README.md").read_bytes()
    config = json.loads(files["config.json"])
    assert config["auto_map"] == {
        "AutoConfig": "configuration_gru_seq2seq.GRUSeq2SeqConfig",
        "AutoModel": "modeling_gru_seq2seq.GRUSeq2SeqModel",
        "AutoModelForSeq2SeqLM": "modeling_gru_seq2seq.GRUSeq2SeqForConditionalGeneration",
    }
    assert config["custom_pipelines"]["translation"] == {
        "impl": "pipeline_gru_seq2seq.GRUSeq2SeqTranslationPipeline", "pt": ["AutoModelForSeq2SeqLM"], "type": "text"}
    # binary files and text over the threshold went through the LFS batch API, small text inline
    modes = {path: mode for (repo, path), mode in hub.upload_modes.items() if repo == "alice/gru-shared"}
    assert modes["model.safetensors"] == modes["loss.png"] == modes["modeling_gru_seq2seq.py"] == "lfs"
    assert modes["config.json"] == modes["pipeline_gru_seq2seq.py"] == "regular"
    assert published["folder_before"] == published["folder_after"]
    # the branch push from the objects
    assert hub.repos["alice/gru-shared"].branches["dev"] == published["dev"]
    assert hub.files("alice/gru-shared", "dev")["README.md"] == b"# dev card\n"


def test_model_push_to_hub_alone_ships_the_pipeline(hub, published):
    """`model.push_to_hub` (no helper) writes the pipeline file and the `custom_pipelines` entry too."""
    first_push = hub.repos["alice/gru-tiny"].history()[-2]  # the model's commit, before the tokenizer's
    assert first_push.message.startswith("Upload") and REMOTE_CODE <= set(first_push.files)
    assert "translation" in json.loads(first_push.files["config.json"].data)["custom_pipelines"]
    assert not any(path.endswith((".bin", ".pt", ".pth", ".pkl")) for path in first_push.files)


def test_pull_with_the_package_runs_its_code_without_trust_remote_code(published):
    """Where the package is installed, `from_pretrained` and `pipeline(..., pipeline_class=...)` use its classes."""
    assert published["local_class"] == "hf_gru_seq2seq.modeling_gru_seq2seq"
    assert published["local_pipeline_class"] == "hf_gru_seq2seq.pipeline_gru_seq2seq"
    torch.testing.assert_close(published["logits_local"], published["logits_v2"], atol=0, rtol=0)
    assert [x["translation_text"] for x in published["local_translations"]] == published["translations"]


PULL = '''
import os, sys, torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

# Before any trusted load, which would register the classes in this process
no_trust_model = error_of(lambda: AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny"))
no_trust_pipeline = error_of(lambda: pipeline("translation", model="alice/gru-tiny"))

tokenizer = AutoTokenizer.from_pretrained("alice/gru-tiny", trust_remote_code=True)
latest = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny", trust_remote_code=True)
first = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny", revision=os.environ["V1"], trust_remote_code=True)
base = AutoModel.from_pretrained("alice/gru-tiny", trust_remote_code=True)
shared = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-shared", trust_remote_code=True)
dev = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-shared", revision="dev", trust_remote_code=True)

# a downloaded copy saved again keeps its code and pipeline, and loads from the folder
latest.save_pretrained(OUT / "resaved")
resaved = AutoModelForSeq2SeqLM.from_pretrained(OUT / "resaved", trust_remote_code=True)

batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
decoder_input_ids = torch.tensor([[1, 4, 16, 9, 2]] * len(SENTENCES))
with torch.no_grad():
    logits = {name: m(**batch, decoder_input_ids=decoder_input_ids).logits
              for name, m in dict(latest=latest, first=first, shared=shared, dev=dev, resaved=resaved).items()}
    hidden = base(**batch, decoder_input_ids=decoder_input_ids).last_hidden_state
pull_report = dict(
    no_trust_model=no_trust_model, no_trust_pipeline=no_trust_pipeline,
    classes=[type(m).__module__ + "." + type(m).__name__ for m in (latest, first, base, shared, resaved)],
    package_imported=sorted(name for name in sys.modules if name.startswith("hf_gru_seq2seq")),
    resaved_files=sorted(os.listdir(OUT / "resaved")),
    resaved_pipelines=json.loads((OUT / "resaved" / "config.json").read_text())["custom_pipelines"],
    cached=sorted(p.name for p in Path(os.environ["HF_HUB_CACHE"]).rglob("*") if p.is_file()),
)
save(input_ids=batch["input_ids"], hidden=hidden, **{f"logits_{k}": v for k, v in logits.items()})
'''


def test_pull_without_the_package_gives_the_same_model(published, pulled):
    """AutoModelForSeq2SeqLM / AutoModel / AutoTokenizer load the pushed repo as remote code, on a machine without
    the package, with the logits of the original; `revision=` pins the first push; a re-saved copy keeps working."""
    report, pulled = pulled
    assert report["package_imported"] == []
    assert all(name.startswith("transformers_modules.") for name in report["classes"]), report["classes"]
    assert report["classes"][2].endswith(".modeling_gru_seq2seq.GRUSeq2SeqModel")
    assert torch.equal(pulled["input_ids"], published["input_ids"])
    for name in ("latest", "shared", "dev", "resaved"):
        torch.testing.assert_close(pulled[f"logits_{name}"], published["logits_v2"], atol=0, rtol=0, msg=name)
    torch.testing.assert_close(pulled["logits_first"], published["logits_v1"], atol=0, rtol=0)
    assert not torch.equal(published["logits_v1"], published["logits_v2"])  # so the pin is what tells them apart
    torch.testing.assert_close(pulled["hidden"], published["hidden_v2"], atol=0, rtol=0)
    assert REMOTE_CODE <= set(report["resaved_files"])
    assert "translation" in report["resaved_pipelines"]
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in report["cached"])
    # without trust_remote_code=True the code is not run, and the error says why
    for error in (report["no_trust_model"], report["no_trust_pipeline"]):
        assert error.startswith("ValueError") and "alice/gru-tiny" in error and "trust_remote_code=True" in error


PIPELINE = '''
import torch
from transformers import pipeline

translator = pipeline("translation", model="alice/gru-tiny", trust_remote_code=True)

def direct(**generate_kwargs):
    batch = translator.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        ids = translator.model.generate(**batch, **generate_kwargs)
    return [text.strip() for text in translator.tokenizer.batch_decode(ids, skip_special_tokens=True)]

capped = pipeline("translation", model="alice/gru-tiny", trust_remote_code=True, max_new_tokens=2, num_beams=1)
pipeline_report = dict(
    pipeline_class=type(translator).__module__ + "." + type(translator).__name__,
    single=translator(SENTENCES[0], num_beams=2, max_new_tokens=6),
    batched=translator(SENTENCES, batch_size=2, num_beams=2, max_new_tokens=6),
    one_by_one=translator(SENTENCES, num_beams=2, max_new_tokens=6),
    greedy_short=translator(SENTENCES, batch_size=4, num_beams=1, max_new_tokens=3),
    defaults=translator(SENTENCES, batch_size=4),
    capped=capped(SENTENCES, batch_size=3),
    two_each=translator(SENTENCES[:2], num_beams=3, num_return_sequences=2, max_new_tokens=6),
    direct_beam=direct(num_beams=2, max_new_tokens=6),
    direct_greedy_short=direct(num_beams=1, max_new_tokens=3),
    direct_defaults=direct(),
    direct_capped=direct(num_beams=1, max_new_tokens=2),
)
'''


@pytest.fixture(scope="module")
def pulled(hub, published, tmp_path_factory):
    """One client, on a machine without the package, pulls what `published` pushed: models, tokenizer, pipeline."""
    code = PULL + PIPELINE + "report(**pull_report, **pipeline_report)\n"
    return run_client(hub, code, tmp_path_factory.mktemp("pull"), env={"V1": published["v1"]})


def test_translation_pipeline_from_the_hub(published, pulled):
    """`pipeline("translation", model=repo, trust_remote_code=True)` gives `{"translation_text"}` per sentence,
    batched or not, equal to decoding `model.generate` with the same keywords, which reach `generate`."""
    r, _ = pulled
    assert r["pipeline_class"].startswith("transformers_modules.")
    assert r["pipeline_class"].endswith("pipeline_gru_seq2seq.GRUSeq2SeqTranslationPipeline")

    def texts(results):
        assert all(isinstance(x, dict) and set(x) == {"translation_text"} for x in results), results
        return [x["translation_text"] for x in results]

    assert len(r["single"]) == 1 and texts(r["single"]) == r["direct_beam"][:1]
    assert texts(r["batched"]) == texts(r["one_by_one"]) == r["direct_beam"] == published["translations"]
    assert texts(r["greedy_short"]) == r["direct_greedy_short"] != r["direct_beam"]
    assert texts(r["defaults"]) == r["direct_defaults"] != r["direct_beam"]  # the repo's generation config...
    assert all(len(text.split()) <= 8 for text in r["direct_defaults"])  # ...whose max_new_tokens is 8
    assert texts(r["capped"]) == r["direct_capped"]  # keywords given when building the pipeline
    assert all(len(text.split()) <= 2 for text in r["direct_capped"])
    assert max(len(text.split()) for text in r["direct_beam"]) > 3  # so the caps above bite
    assert [len(texts(per_sentence)) for per_sentence in r["two_each"]] == [2, 2]


def test_failed_pulls_name_the_repo_and_leave_no_partial_file(hub, published, tmp_path):
    """404 repo / revision errors name them; a 500 on the weights fails cleanly and a retry succeeds; a download cut
    halfway is retried and ends with the right bytes; a stale `.incomplete` file in the cache is never trusted."""
    weights = hub.repos["alice/gru-shared"].resolve("main").files["model.safetensors"]
    blobs = tmp_path / "home" / "hub" / "models--alice--gru-shared" / "blobs"
    blobs.mkdir(parents=True)
    # a half download under the name that older huggingface_hub versions resumed from
    (blobs / f"{weights.sha256}.incomplete").write_bytes(b"stale half download" * 100)
    hub.fail("GET", r"^/alice/gru-tiny/resolve/[^/]+/model\.safetensors$", status=500)
    hub.fail("GET", r"^/alice/gru-shared/resolve/[^/]+/model\.safetensors$", truncate=True)
    code = '''
    import hashlib, os, torch
    from transformers import AutoModelForSeq2SeqLM
    cache = Path(os.environ["HF_HUB_CACHE"])
    missing_repo = error_of(lambda: AutoModelForSeq2SeqLM.from_pretrained(
        "alice/no-such-model", trust_remote_code=True))
    missing_revision = error_of(lambda: AutoModelForSeq2SeqLM.from_pretrained(
        "alice/gru-tiny", revision="no-such-branch", trust_remote_code=True))
    server_error = error_of(lambda: AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny", trust_remote_code=True))
    after_error = sorted(str(p.relative_to(cache)) for p in (cache / "models--alice--gru-tiny").rglob("*")
                         if p.is_file())
    retried = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny", trust_remote_code=True)
    resumed = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-shared", trust_remote_code=True)
    blobs = cache / "models--alice--gru-shared" / "blobs"
    batch = {"input_ids": torch.tensor([[4, 16, 2]]), "decoder_input_ids": torch.tensor([[1, 4]])}
    with torch.no_grad():
        logits = {name: m(**batch).logits for name, m in dict(retried=retried, resumed=resumed).items()}
    report(missing_repo=missing_repo, missing_revision=missing_revision, server_error=server_error,
           after_error=after_error, blobs={p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in blobs.iterdir()})
    save(**logits)
    '''
    start = len(hub.requests)
    try:
        r, pulled = run_client(hub, code, tmp_path)
    finally:
        hub.clear_faults()
    assert "alice/no-such-model" in r["missing_repo"] and r["missing_repo"].startswith("OSError")
    assert "no-such-branch" in r["missing_revision"] and "alice/gru-tiny" in r["missing_revision"]
    assert "alice/gru-tiny" in r["server_error"] and "500" in r["server_error"]
    weights_tiny = hub.repos["alice/gru-tiny"].resolve("main").files["model.safetensors"]
    assert not any(weights_tiny.sha256 in path or "safetensors" in path for path in r["after_error"]), r["after_error"]
    assert not any(path.endswith(".incomplete") for path in r["after_error"])
    torch.testing.assert_close(pulled["retried"], pulled["resumed"], atol=0, rtol=0)  # both are v2
    assert r["blobs"][weights.sha256] == weights.sha256  # resumed bytes are right, whatever the stale file held
    weight_gets = [status for method, path, status in hub.requests[start:]
                   if method == "GET" and re.search(r"^/alice/gru-shared/resolve/.*/model\.safetensors$", path)]
    assert len(weight_gets) >= 2  # the cut download, then the retry that completed it


def test_failed_pushes_name_the_repo_commit_nothing_and_leave_the_folder(hub, published, tmp_path):
    """A bad token (401) and a server error in the middle of the upload give `HubPushError`s naming the repo; the
    repo keeps no partial commit, a retry makes exactly one; bad input is refused before any upload."""
    folder = published["folder"]
    before = snapshot(folder)
    pickles_only = tmp_path / "pickles_only"
    pickles_only.mkdir()
    (pickles_only / "config.json").write_text(json.dumps({"model_type": "gru_seq2seq"}))
    (pickles_only / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    hub.fail("POST", r"^/api/models/alice/gru-flaky/commit/main$", status=500)
    code = f'''
    from hf_gru_seq2seq.hub import push_to_hub
    folder = {str(folder)!r}
    report(
        denied=error_of(lambda: push_to_hub(folder, "alice/gru-denied", token="hf_wrong_token")),
        flaky=error_of(lambda: push_to_hub(folder, "alice/gru-flaky")),
        retry=push_to_hub(folder, "alice/gru-flaky").oid,
        bad_id=error_of(lambda: push_to_hub(folder, "alice/not a name")),
        pickles_only=error_of(lambda: push_to_hub({str(pickles_only)!r}, "alice/gru-pickles")),
        not_a_folder=error_of(lambda: push_to_hub(folder + "/missing", "alice/gru-missing")),
    )
    '''
    try:
        r, _ = run_client(hub, code, tmp_path / "client", package=True)
    finally:
        hub.clear_faults()
    assert r["denied"].startswith("HubPushError") and "alice/gru-denied" in r["denied"] and "401" in r["denied"]
    assert "alice/gru-denied" not in hub.repos
    assert r["flaky"].startswith("HubPushError") and "alice/gru-flaky" in r["flaky"] and "500" in r["flaky"]
    history = hub.repos["alice/gru-flaky"].history()
    assert [c.oid for c in history[:1]] == [r["retry"]] and len(history) == 2  # the failed commit left nothing
    assert set(history[0].files) >= {"model.safetensors", "config.json"} | REMOTE_CODE
    assert r["bad_id"].startswith("ValueError") and "alice/not a name" in r["bad_id"]
    assert r["pickles_only"].startswith("ValueError") and "safetensors" in r["pickles_only"]
    assert r["not_a_folder"].startswith("ValueError") and "missing" in r["not_a_folder"]
    assert not {"alice/gru-pickles", "alice/gru-missing"} & hub.repos.keys()
    assert snapshot(folder) == before


def test_hub_down_errors_name_the_repo_or_endpoint(hub, published, tmp_path):
    """With the server stopped, the helper says which repo it could not push, and a pull fails with Transformers'
    connection error naming the endpoint, rather than hanging or loading something else."""
    code = f'''
    import time
    time.sleep = lambda seconds: None  # huggingface_hub retries a refused connection with back-off
    from hf_gru_seq2seq.hub import push_to_hub
    from transformers import AutoModelForSeq2SeqLM
    # the guards every client runs under do refuse (then forget these two probes)
    probes = [error_of(lambda: socket.create_connection(("192.0.2.1", 443), timeout=1)),
              error_of(lambda: pickle.loads(pickle.dumps(None)))]
    _guard["refused"].clear(), _guard["unpickled"].clear()
    report(push=error_of(lambda: push_to_hub({str(published["folder"])!r}, "alice/gru-down")),
           pull=error_of(lambda: AutoModelForSeq2SeqLM.from_pretrained("alice/gru-tiny", trust_remote_code=True)),
           probes=probes)
    '''
    with hub.stopped():
        r, _ = run_client(hub, code, tmp_path, package=True)
    assert r["push"].startswith("HubPushError") and "alice/gru-down" in r["push"] and "could not reach" in r["push"]
    assert r["pull"].startswith("OSError") and hub.url in r["pull"]
    assert all("test guard" in probe for probe in r["probes"]), r["probes"]


# -- the pipeline and the save hook, with the package ------------------------------------------------------------------


def test_pipeline_used_directly_matches_generate():
    model, tokenizer = GRUSeq2SeqModelTester().model(), tiny_tokenizer()
    translator = GRUSeq2SeqTranslationPipeline(model=model, tokenizer=tokenizer, device="cpu")
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    generated = model.generate(**batch, num_beams=2, max_new_tokens=5)
    expected = [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    results = translator(SENTENCES, batch_size=3, num_beams=2, max_new_tokens=5)
    assert results == [{"translation_text": text} for text in expected]
    assert translator(tuple(SENTENCES[:1]), num_beams=2, max_new_tokens=5) == results[:1]
    assert translator([]) == []
    ids = translator(SENTENCES[0], return_tensors=True, num_beams=2, max_new_tokens=5)[0]["translation_token_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == expected[0]


def test_pipeline_refuses_what_it_cannot_translate():
    model, tokenizer = GRUSeq2SeqModelTester().model(), tiny_tokenizer()
    translator = GRUSeq2SeqTranslationPipeline(model=model, tokenizer=tokenizer, device="cpu")
    with pytest.raises(TypeError, match="translates strings, got int"):
        translator([3])
    with pytest.raises(ValueError, match="needs a tokenizer"):
        GRUSeq2SeqTranslationPipeline(model=model, device="cpu")
    with pytest.raises(ValueError, match="needs a model that can generate, got GRUSeq2SeqModel"):
        GRUSeq2SeqTranslationPipeline(model=GRUSeq2SeqModelTester().model(GRUSeq2SeqModel), tokenizer=tokenizer,
                                      device="cpu")


def test_save_pretrained_declares_the_pipeline_only_for_models_that_translate(tmp_path):
    """The seq2seq LM declares `translation`; a bare `GRUSeq2SeqModel` withdraws it, as it has no head to translate
    with. Both ship the pipeline file, which the modeling file imports (inside a method only)."""
    model = GRUSeq2SeqModelTester().model()
    model.save_pretrained(tmp_path / "lm")
    model.model.save_pretrained(tmp_path / "base")  # shares the config the LM save just filled in
    for name in ("lm", "base"):
        assert REMOTE_CODE <= {p.name for p in (tmp_path / name).iterdir()}
    assert "translation" in json.loads((tmp_path / "lm" / "config.json").read_text())["custom_pipelines"]
    assert "translation" not in json.loads((tmp_path / "base" / "config.json").read_text()).get("custom_pipelines", {})
    import ast

    modeling = ast.parse((ROOT / "hf_gru_seq2seq" / "modeling_gru_seq2seq.py").read_text())
    top_level = [node.module for node in modeling.body if isinstance(node, ast.ImportFrom) and node.level]
    assert top_level == ["configuration_gru_seq2seq"]


def test_an_onnx_export_travels_in_the_onnx_subfolder(hub, tmp_path):
    """A model folder holding its export in onnx/ is pushed in one commit, graphs beside the weights; a machine
    without the package then translates with ONNX Runtime from `subfolder="onnx"`, as PyTorch does."""
    from hf_gru_seq2seq.onnx_export import export_onnx

    folder = tmp_path / "model"
    model = GRUSeq2SeqModelTester(bidirectional_encoder=True).model(reverse_source=True, logit_scale=4.0)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    export_onnx(str(folder), folder / "onnx")
    batch = tiny_tokenizer()(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model.generate(**batch, num_beams=2, max_new_tokens=6)
    run_client(hub, f"""
from hf_gru_seq2seq.hub import push_to_hub
push_to_hub({str(folder)!r}, "alice/gru-onnx")
""", tmp_path / "push", package=True)
    files = hub.files("alice/gru-onnx")
    assert {"model.safetensors", "onnx/encoder_model.onnx", "onnx/decoder_model.onnx", "onnx/config.json",
            "onnx/tokenizer.json", "onnx/modeling_gru_seq2seq_onnx.py", "modeling_gru_seq2seq_onnx.py"} <= set(files)
    assert len(hub.repos["alice/gru-onnx"].history("main")) == 2  # the initial commit and the push
    report, _ = run_client(hub, """
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
model = AutoModelForSeq2SeqLM.from_pretrained("alice/gru-onnx", subfolder="onnx", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("alice/gru-onnx", subfolder="onnx", trust_remote_code=True)
ids = model.generate(**tokenizer(SENTENCES, padding=True, return_tensors="pt"), num_beams=2, max_new_tokens=6)
report(cls=type(model).__name__, ids=ids.tolist())
""", tmp_path / "pull")
    assert report["cls"] == "GRUSeq2SeqOnnxForConditionalGeneration"
    assert report["ids"] == expected.tolist()
