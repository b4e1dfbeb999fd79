"""Transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`), taken at test time from the source
distribution of the *installed* transformers version, never committed here.

`load()` runs `pip download --no-binary :all: --no-deps transformers==<installed>` once, extracts the two files
below from the archive's top-level `tests/` into a cache folder outside the repository
(`$HF_GRU_SEQ2SEQ_TEST_CACHE`, default `~/.cache/hf-gru-seq2seq/transformers-tests/<version>`), and imports them as
the package `transformers_common_tests`. When the archive cannot be had, `Unavailable` says why, and the suite
skips with that reason.

The archive holds only the top-level test files. Three modules they import relatively live in sub-folders of
Transformers' test tree that the archive leaves out; `STAND_INS` below replaces them with the least that lets the
two files import: two empty mixins (the generation and export test mixins, whose tests this suite does not run)
and a table of common config arguments, written here.
"""

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import types
import warnings
from pathlib import Path

import pytest
import transformers

FILES = ("test_modeling_common.py", "test_configuration_common.py")
PACKAGE = "transformers_common_tests"

STAND_INS = {
    "__init__.py": "",
    "exporters/__init__.py": "",
    "exporters/test_export.py": '''"""Stand-in (hf-gru-seq2seq): the sdist lacks tests/exporters; its export tests
are not run."""


class ExportTesterMixin:
    pass
''',
    "generation/__init__.py": "",
    "generation/test_utils.py": '''"""Stand-in (hf-gru-seq2seq): the sdist lacks tests/generation; its generate
tests are not run (the project's own tests cover generate())."""


class GenerationTesterMixin:
    pass
''',
    "utils/__init__.py": "",
    "utils/test_configuration_utils.py": '''"""Stand-in (hf-gru-seq2seq): the sdist lacks tests/utils. Arguments
every `PreTrainedConfig` takes, each with a value other than its default, for
`ConfigTester.check_config_arguments_init`."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["GRUSeq2SeqForConditionalGeneration"],
    "problem_type": "regression",
}
''',
}


class Unavailable(RuntimeError):
    """Transformers' test files could not be had; the message says why."""


def cache_dir(version: str = transformers.__version__) -> Path:
    default = Path.home() / ".cache" / "hf-gru-seq2seq" / "transformers-tests"
    root = os.environ.get("HF_GRU_SEQ2SEQ_TEST_CACHE") or default
    return Path(root) / version


def fetch(version: str = transformers.__version__) -> Path:
    """The folder holding the two upstream files and the stand-ins for `version`, downloaded once."""
    folder = cache_dir(version)
    if all((folder / name).is_file() for name in FILES):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                   f"transformers=={version}", "--dest", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise Unavailable(f"pip download of the transformers {version} sdist failed: {err}") from None
        archives = sorted(Path(tmp).glob("transformers-*.tar.gz"))
        if done.returncode != 0 or not archives:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"no source distribution of transformers {version} ({last})")
        staged = Path(tmp) / "tests"
        staged.mkdir()
        with tarfile.open(archives[0]) as archive:
            for name in FILES:
                try:
                    member = archive.extractfile(f"transformers-{version}/tests/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise Unavailable(f"the transformers {version} sdist holds no tests/{name}")
                (staged / name).write_bytes(member.read())
        for name, text in STAND_INS.items():
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            (staged / name).write_text(text)
        try:
            staged.rename(folder)
        except OSError:
            if not all((folder / name).is_file() for name in FILES):  # not another process that got there first
                raise
    return folder


def load():
    """`(test_modeling_common, test_configuration_common)` of the installed transformers version."""
    if PACKAGE not in sys.modules:
        folder = fetch()
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(folder)]
        package.__file__ = str(folder / "__init__.py")
        sys.modules[PACKAGE] = package
    with warnings.catch_warnings():  # their marks (flash_attn_test, ...) are registered by their own conftest
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return (importlib.import_module(f"{PACKAGE}.test_modeling_common"),
                importlib.import_module(f"{PACKAGE}.test_configuration_common"))
