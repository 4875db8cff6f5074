"""What the tests that run the real command line share: the repository root,
an environment without proxy variables, and one way to run ``webchat-sim``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "clean_env", "run_cli"]

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without proxy variables (everything the
    tests reach is on 127.0.0.1), unbuffered, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_cli(*args: str, timeout: float = 60, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """``webchat-sim ARGS`` to completion (bounded by ``timeout``), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
