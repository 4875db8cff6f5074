"""Scenario scripts: plain Python modules with a ``run(customer)`` function.

A spec such as ``happy_path:3,abandon:1`` names the shipped scenarios (the
repository's top-level ``scenarios/`` folder, installed as
``simulator.scenarios``) or paths to ``.py`` files, with integer weights.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ScenarioError

__all__ = ["Scenario", "ScenarioError", "ScenarioMix", "available_scenarios", "load_scenario", "parse_mix"]

@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[..., Any]
    doc: str
    weight: int = 1


def _shipped() -> Path:
    """The folder of the shipped scenarios: the installed package, or the
    checkout's ``scenarios/`` when the project runs uninstalled."""
    try:
        package = importlib.import_module("simulator.scenarios")  # the top-level scenarios/, installed
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "scenarios"
    return Path(package.__file__ or "").parent


def available_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(p.stem for p in _shipped().glob("*.py") if not p.stem.startswith("_"))


def _module(name: str) -> ModuleType:
    if name.endswith(".py") or "/" in name:
        return _from_file(Path(name), name)
    if not name.isidentifier() or name not in available_scenarios():
        raise ScenarioError(f'unknown scenario "{name}"; available: {", ".join(available_scenarios())}')
    try:
        return importlib.import_module(f"simulator.scenarios.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("simulator.scenarios", f"simulator.scenarios.{name}"):
            raise ScenarioError(f"scenario {name} failed to load: {exc}") from None
        return _from_file(_shipped() / f"{name}.py", name)  # an uninstalled checkout


def _from_file(path: Path, name: str) -> ModuleType:
    if not path.is_file():
        raise ScenarioError(f"scenario file not found: {name}; available: {', '.join(available_scenarios())}")
    spec = importlib.util.spec_from_file_location(f"webchat_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"cannot load scenario file {name}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's script: say what broke, in one line
        raise ScenarioError(f"scenario file {name} failed to load: {type(exc).__name__}: {exc}") from None
    return module


def load_scenario(name: str, weight: int = 1) -> Scenario:
    module = _module(name)
    run = getattr(module, "run", None)
    if not callable(run):
        raise ScenarioError(f"scenario {name} has no run(customer) function")
    doc = (module.__doc__ or "").strip()
    return Scenario(name=Path(name).stem, run=run, doc=doc, weight=weight)


def parse_mix(spec: str) -> list[Scenario]:
    """``"happy_path:3,abandon:1"`` → weighted scenarios (weight defaults to 1)."""
    out: list[Scenario] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, colon, weight_text = part.rpartition(":")
        if not colon:
            name, weight_text = part, "1"
        if not weight_text.strip().isdigit():
            raise ScenarioError(
                f'bad weight "{weight_text}" in scenario "{part}" (expected NAME or NAME:WEIGHT, '
                f"a whole number >= 0); available: {', '.join(available_scenarios())}"
            )
        out.append(load_scenario(name.strip(), int(weight_text)))
    if not out or sum(s.weight for s in out) == 0:
        raise ScenarioError(
            f"no scenario with a positive weight in {spec!r}; available: {', '.join(available_scenarios())}"
        )
    return out


class ScenarioMix:
    """Weighted choice among scenarios with a seeded random."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.scenarios = [s for s in scenarios if s.weight > 0]
        self._weights = [s.weight for s in self.scenarios]

    def pick(self, rng: random.Random) -> Scenario:
        return rng.choices(self.scenarios, weights=self._weights, k=1)[0]
