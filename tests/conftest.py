import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # model_tester, d2l_reference
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the suite may reach the real Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = TESTS.parent.parent / "shared"


@pytest.fixture
def shared_dir():
    """`../shared` beside the checkout; tests that need it skip cleanly where it is absent."""
    if not (SHARED / "data" / "fra-eng.txt").exists():
        pytest.skip("../shared/data/fra-eng.txt is not present")
    return SHARED


@pytest.fixture(scope="module")
def hub_server():
    """A miniature Hub on 127.0.0.1 (tests/hub_server.py), one per test module. Its clients are subprocesses started
    with `hub_server.client_env(hf_home)`."""
    from hub_server import HubServer

    with HubServer() as hub:
        yield hub


@pytest.fixture(scope="session")
def number_words_model(tmp_path_factory):
    """The README's main job as a new user runs it, with no flag at all (about a minute on a 2-core CPU), once per
    session: the folder it writes, `outputs/number-words`."""
    import subprocess
    import sys

    cwd = tmp_path_factory.mktemp("main-job")
    from script_runs import REPO, script_env

    done = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py")], cwd=cwd, env=script_env(),
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return cwd / "outputs" / "number-words"


@pytest.fixture(scope="session")
def number_words_export(number_words_model, tmp_path_factory):
    """The main job's model exported to ONNX with its int8 graphs, as the README's command does, once per session
    (tests/test_onnx.py and tests/test_web.py share it)."""
    import subprocess
    import sys

    from script_runs import REPO, script_env

    out = tmp_path_factory.mktemp("number-words-onnx")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "export_onnx.py"), str(number_words_model),
                           str(out), "--quantize"], capture_output=True, text=True, timeout=600,
                          env=script_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("Exported decoder_model.onnx, decoder_model_quantized.onnx")
    assert done.stderr == ""  # the exporter's and the loader's chatter stays quiet
    return out
