"""The ``replay:FILE.jsonl[:WEIGHT]`` scenario (``load --scenario
replay:FILE``): each chat of a Locust customer replays the transcript's
customer side (:mod:`.replay`) on its own connections, with its own ids, so
one recorded conversation becomes as many as there are users.

The agents are the server's (the embedded mock's autopilot, or the
backend's, or ``--agent-users``). Each expected frame that came is timed as
``replay answer`` (milliseconds from the step's start: the send before it);
each difference is a failure of ``replay`` naming the transcript line; each
replay without a difference is timed as ``replay run`` (the whole transcript).
``WEBCHAT_REPLAY_SPEED`` (default 1.0) scales the recorded pauses and
``WEBCHAT_REPLAY_TOLERANCE`` (seconds, default 2) is the lateness allowed.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any

from ..errors import ScenarioError, TranscriptError
from ..transcript import read_transcript
from .replay import Failure, Plan, Replayer
from .scenario import Scenario

__all__ = ["replay_scenario"]

ANSWER = "replay answer"
FAILURE = "replay"
RUN = "replay run"


@lru_cache(maxsize=16)
def _plan(path: str) -> Plan:
    try:
        transcript = read_transcript(path)
    except TranscriptError as exc:
        raise ScenarioError(f"replay: {exc}") from None
    plan = Plan(transcript, frozenset({"customer"}))
    if not plan.conns:
        raise ScenarioError(f"replay: {path} has no customer connection to replay")
    return plan


def _number(name: str, default: float) -> float:
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        raise ScenarioError(f"{name} must be a number (got {text!r})") from None
    if not value > 0:
        raise ScenarioError(f"{name} must be more than 0 (got {text!r})")
    return value


def replay_scenario(spec: str) -> Scenario:
    """``FILE.jsonl`` or ``FILE.jsonl:WEIGHT`` as a scenario (:class:`ScenarioError` for a bad one)."""
    path, colon, weight_text = spec.rpartition(":")
    if not colon or not weight_text.isdigit():
        path, weight_text = spec, "1"
    plan = _plan(os.path.abspath(path))
    speed = _number("WEBCHAT_REPLAY_SPEED", 1.0)
    tolerance = _number("WEBCHAT_REPLAY_TOLERANCE", 2.0)

    def run(customer: Any) -> None:
        def failed(failure: Failure) -> None:
            customer.report_failure(FAILURE, f"{os.path.basename(path)} {failure}")

        def matched(seconds: float) -> None:
            customer.record(ANSWER, seconds * 1000)

        started = time.perf_counter()
        result = Replayer(
            plan, customer.host, speed=speed, tolerance=tolerance, on_failure=failed, on_match=matched
        ).run()
        if not result.failures:
            customer.record(RUN, (time.perf_counter() - started) * 1000)
        # a backend that refuses or is down: the user backs off before its next chat (WebchatCustomer.chat)
        customer.connect_ok = result.connect_failed == 0

    doc = f"Replay of {path}: its customer side, with the recorded pacing."
    return Scenario(name=f"replay:{os.path.basename(path)}", run=run, doc=doc, weight=int(weight_text))
