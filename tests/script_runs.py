"""The environment the repository's scripts run in from a test: the checkout first on `PYTHONPATH`, as when a user
runs `python scripts/train.py` from a clone without installing the package."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script_env() -> dict:
    """This process's environment with the checkout put in front of any `PYTHONPATH` it had."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
