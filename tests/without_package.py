"""Run Python code in a fresh interpreter where `hf_gru_seq2seq` cannot be imported, as on a machine that never
installed this package: the only way in is remote code saved beside a model."""

import os
import subprocess
import sys
import textwrap

_BLOCKER = '''
import sys
class _NoPackage:
    def find_spec(self, name, path=None, target=None):
        if name == "hf_gru_seq2seq" or name.startswith("hf_gru_seq2seq."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden: this process plays a machine without it)")
        return None
sys.meta_path.insert(0, _NoPackage())
'''


def run_without_package(code: str, env: dict | None = None, timeout: int = 300,
                        cwd=None) -> subprocess.CompletedProcess:
    """Run `code` with the package hidden; raise with its output if it fails. Returns the finished process."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **(env or {})}
    full_env.pop("PYTHONPATH", None)  # the checkout must not leak in either
    program = _BLOCKER + "\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", program], env=full_env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL,
                          timeout=timeout, cwd=cwd or "/")
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done
