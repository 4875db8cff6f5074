"""The layout holds: the two wings never import each other's I/O shells, no
module grows past ~700 lines, nothing generic is installed, and the README's
custom-dialect locustfile runs only the user's own classes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ROOT, clean_env

pytestmark = pytest.mark.timeout(120)

PACKAGE = ROOT / "simulator"
MAX_LINES = 720
LONG_BY_NATURE = {"fake/phrases"}  # phrasebooks: data written as Python


def _modules_after_import(*modules: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True)
    return set(proc.stdout.split())


def _wing(name: str) -> list[str]:
    return sorted(f"simulator.{name}.{p.stem}" for p in (PACKAGE / name).glob("*.py") if p.stem != "__init__")


def test_the_mock_never_imports_gevent_or_locust() -> None:
    loaded = _modules_after_import(*_wing("mock"), "simulator.cli")
    assert not {m for m in loaded if m.split(".")[0] in ("gevent", "locust")}
    assert not {m for m in loaded if m.startswith("simulator.load")}


def test_the_load_side_never_imports_the_mocks_asyncio_shell() -> None:
    loaded = _modules_after_import(*_wing("load"))
    assert "simulator.mock.server" not in loaded and "simulator.mock.app" not in loaded
    assert not {m for m in loaded if m.startswith("simulator.mock")}


def test_no_module_is_longer_than_about_700_lines() -> None:
    long = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if any(relative.startswith(folder) for folder in LONG_BY_NATURE):
            continue
        if (lines := len(path.read_text().splitlines())) > MAX_LINES:
            long[relative] = lines
    assert long == {}


def test_scenarios_install_inside_the_package() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"simulator.scenarios" = "scenarios"' in text
    assert not re.search(r'include = \[[^]]*"scenarios', text)
    # installed, they are simulator.scenarios; from a checkout that shadows the install, the scenarios/ folder
    from simulator.load.scenario import _shipped, available_scenarios

    assert (_shipped() / "__init__.py").is_file() and _shipped().name == "scenarios"
    assert {"happy_path", "abandon", "reconnect"} <= set(available_scenarios())


def _readme_locustfile() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(# mylocustfile\.py\n.*?)```", readme, re.S)
    assert match, "the README's custom-dialect example"
    return match.group(1)


def test_the_readmes_custom_locustfile_runs_only_its_own_classes(tmp_path: Path) -> None:
    locustfile = tmp_path / "mylocustfile.py"
    locustfile.write_text(_readme_locustfile())
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--list"], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    listed = {line.strip() for line in proc.stdout.splitlines() if line.strip() and not line.startswith("Available")}
    assert listed == {"MyAgent", "MyCustomer"}, proc.stdout


def test_the_readmes_custom_locustfile_chats(tmp_path: Path) -> None:
    """The same file, its path set to the mock's, against the mock: chats run
    with the subclass's dialect (its header reaches the server unharmed)."""
    from simulator.load.runner import MockProcess

    locustfile = tmp_path / "mylocustfile.py"
    locustfile.write_text(_readme_locustfile().replace('"/chat/socket"', '"/ws"'))
    mock = MockProcess(["--agents", "2", "--pace", "fast", "--rate", "1000", "--burst", "2000"])
    try:
        host = mock.url.rsplit("/", 1)[0]  # no path: the dialect's path is used
        prefix = tmp_path / "run"
        cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "2", "-r", "2", "-t", "3s",
               "--host", host, "--csv", str(prefix), "--pace", "fast", "MyCustomer"]
        proc = subprocess.run(cmd, cwd=tmp_path, env={**clean_env(), "CHAT_TOKEN": "t0ken"}, capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        mock.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    from simulator.load.runner import read_summary

    summary = read_summary(str(prefix))
    assert summary["kpis"]["first reply"]["requests"] > 0
    assert summary["total_failures"] == 0
