"""README's Python examples run as written, on a machine without this package, against a saved folder standing in
for the Hub repo they name, and none of them stops at a `trust_remote_code` prompt."""

from pathlib import Path

import pytest
from model_tester import GRUSeq2SeqModelTester, tiny_tokenizer
from without_package import run_without_package

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks of the README section under `heading` (up to the next heading of any level)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    blocks, block = [], None
    for line in lines[start:end]:
        if line.strip() == "```python":
            block = []
        elif line.strip() == "```" and block is not None:
            blocks.append("\n".join(block))
            block = None
        elif block is not None:
            block.append(line)
    return blocks


@pytest.fixture(scope="module")
def repo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme") / "gru-fr-en"
    GRUSeq2SeqModelTester().model(eos_bias=3.0).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@pytest.mark.parametrize("heading", ["### Pull without the package", "### Translate with the pipeline"])
def test_readme_examples_run_without_the_package_or_a_prompt(repo_folder, heading):
    blocks = python_blocks(heading)
    assert blocks, heading
    code = "\n".join(blocks).replace('"you/gru-fr-en"', repr(str(repo_folder)))
    done = run_without_package(code)
    output = done.stdout + done.stderr
    assert "[y/N]" not in output and "trust_remote_code" not in output
    assert "You are using a model of type" not in output
