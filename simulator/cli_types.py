"""The argparse types of the ``webchat-sim`` command line (:mod:`.cli`): each
turns one option's text into its value or raises
``argparse.ArgumentTypeError`` with the one line the user sees."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

def _serve_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]`` (no upper bound if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def _serve_float(low: float, high: float | None = None, *, low_included: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number ``>= low`` (``> low`` unless
    ``low_included``), ``<= high`` when given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        too_low = value < low or (value == low and not low_included)
        if too_low or (high is not None and value > high):
            if high is not None:
                bounds = f"between {low:g} and {high:g}"
            else:
                bounds = f"{low:g} or more" if low_included else f"more than {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def _serve_exchanges(text: str) -> tuple[int, int]:
    """An argparse type: ``N`` or ``LOW-HIGH`` with ``1 <= LOW <= HIGH``."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected N or LOW-HIGH (e.g. 3-6), got {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    if low > high:
        raise argparse.ArgumentTypeError(f"LOW must not exceed HIGH, got {text!r}")
    return low, high


def _serve_queues(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated queue names (at least one; blanks dropped)."""
    from .mock.rules import LIMITS

    queues = tuple(dict.fromkeys(q.strip() for q in text.split(",") if q.strip()))
    if not queues:
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated queue names, got {text!r}")
    if long := [q for q in queues if len(q) > LIMITS.queue_name]:
        raise argparse.ArgumentTypeError(
            f"a queue name of {len(long[0])} characters, limit {LIMITS.queue_name}: {long[0][:40]!r}..."
        )
    return queues


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """A size in bytes: ``1048576``, ``512k``, ``256MB``, ``256MiB``, ``1.5G``
    (units are powers of 1024, whether written ``MB`` or ``MiB``); ValueError
    with a one-line reason otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a size such as 256MB, 1GiB or 1048576, got {text!r}")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()])


def _serve_size(low: int, low_text: str) -> Callable[[str], int]:
    """An argparse type: a size (:func:`parse_size`) of at least ``low`` bytes."""

    def parse(text: str) -> int:
        try:
            value = parse_size(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low_text}, got {text!r}")
        return value

    return parse


def _serve_api_key(text: str) -> tuple[str, str | None]:
    """An argparse type: ``KEY`` or ``KEY=AGENT NAME``."""
    from .mock.access import parse_api_key

    try:
        return parse_api_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _serve_keys_file(path: str) -> list[tuple[str, str | None]]:
    """An argparse type: a file of API keys, one ``KEY`` or ``KEY=AGENT NAME``
    per line (blank lines and ``#`` comments skipped)."""
    from .mock.access import parse_api_key

    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            keys.append(parse_api_key(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{path}, line {number}: expected KEY or KEY=AGENT NAME") from None
    if not keys:
        raise argparse.ArgumentTypeError(f"{path}: no API keys in it")
    return keys


def _serve_fault(text: str) -> tuple[str, str]:
    """An argparse type: ``NAME=VALUE`` of :mod:`.mock.faults` (``drop=0.01``, ``latency=50ms-400ms``)."""
    from .mock.faults import parse_fault

    try:
        name, value = parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, str(value)


def _serve_fault_profile(path: str) -> list[tuple[str, str]]:
    """An argparse type: a file of faults, one ``NAME=VALUE`` a line (``#`` comments)."""
    from .mock.faults import parse_profile

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return [(name, str(value)) for name, value in parse_profile(text, path)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _languages(text: str) -> tuple[str, ...]:
    from .demo import parse_languages

    try:
        return parse_languages(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    value = _parse(int, text, "a whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
    return value


def _non_negative_int(text: str) -> int:
    value = _parse(int, text, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def _positive_float(text: str) -> float:
    value = _parse(float, text, "a number")
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
    return value


def _processes(text: str) -> int:
    value = _parse(int, text, "a whole number")
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"must be a positive number, or -1 for one per core (got {text})")
    return value


def _run_time(text: str) -> str:
    from .load.runner import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0s (Locust would run forever)")
    return text.strip()


def _parse(kind: Callable[[str], _T], text: str, what: str) -> _T:
    try:
        value: _T = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not {what}') from None
    return value




_RETAIN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def _serve_retain(text: str) -> float:
    """An argparse type: how long storage keeps closed conversations, e.g.
    ``7d``, ``12h``, ``1d12h``, ``30m``, ``90s`` or plain seconds; more than 0."""
    value = text.strip().lower()
    match = _RETAIN.fullmatch(value)
    try:
        seconds = float(value) if value.replace(".", "", 1).isdigit() else None
    except ValueError:
        seconds = None
    if seconds is None and (not value or match is None):
        raise argparse.ArgumentTypeError(f'"{text}" is not a duration (e.g. 7d, 12h, 1d12h, 30m, 90s)')
    if seconds is None:
        assert match is not None
        days, hours, minutes, secs = match.groups()
        seconds = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0s, got {text!r}")
    return seconds
