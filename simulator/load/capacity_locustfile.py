"""What ``webchat-sim capacity`` runs in Locust: the packaged users plus :class:`CapacityShape`.

``--capacity-plan FILE`` names a JSON file (written by the capacity runner)
with the step plan, the SLOs and the file the steps' results go to, one JSON
line per finished step. A listener on ``events.request`` fills the current
step's :class:`~simulator.load.capacity.Window`; at each step's end the shape
judges it, writes the line, and stops the run at the first broken step.
Locust's own statistics (its CSV files) stay those of the whole run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from locust import LoadTestShape, events

from simulator.load.capacity import SLO, Plan, StepResult, Window, judge, parse_slo
from simulator.load.locustfile import AgentUser, CustomerUser

__all__ = ["AgentUser", "CapacityShape", "CustomerUser"]


def _add_options(parser: Any) -> None:
    parser.add_argument("--capacity-plan", type=str, default="", help="webchat-sim capacity's step plan (JSON)")


events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]


class CapacityShape(LoadTestShape):
    """Steps users up by the plan; judges each step's own window; stops at the first broken step."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.plan: Plan | None = None
        self.slos: list[SLO] = []
        self.results: Path | None = None
        self.window = Window()
        self.index = 0
        self.done = False
        events.request.add_listener(self._on_request)  # type: ignore[no-untyped-call]

    def _load(self) -> Plan | None:
        if self.plan is None and self.runner is not None:
            options = self.runner.environment.parsed_options
            path = str(getattr(options, "capacity_plan", "") or "")
            if not path:
                return None
            spec = json.loads(Path(path).read_text())
            self.plan = Plan.from_json(spec["plan"])
            self.slos = [parse_slo(s) for s in spec["slos"]]
            self.results = Path(spec["results"])
        return self.plan

    def _on_request(self, name: str, response_time: float | None, exception: BaseException | None, **_: Any) -> None:
        if not self.done:
            self.window.add(name, response_time, exception is not None)

    def _close_step(self, plan: Plan) -> bool:
        """Judge the step that just ended, write its line; ``True`` if it held."""
        result = StepResult(self.index + 1, plan.steps[self.index], self.window.requests,
                            judge(self.slos, self.window))
        if self.results is not None:
            with self.results.open("a") as fh:
                fh.write(json.dumps(result.to_json()) + "\n")
        self.window = Window()
        self.index += 1
        return result.ok

    def tick(self) -> tuple[int, float] | None:
        plan = self._load()
        if plan is None or self.done:
            return None
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        while plan.step_at(elapsed) > self.index:
            if not self._close_step(plan) or self.index >= len(plan.steps):
                self.done = True
                return None
        return plan.steps[self.index], float(max(plan.step, plan.start))
