"""``webchat-sim capacity``: ``load``'s runner with a stepping load shape.

The embedded mock (unless ``--host``) and Locust start as for ``load``; Locust
runs :mod:`simulator.load.capacity_locustfile`, whose shape judges each step
and writes one JSON line per finished step. This side shows each step as it
finishes (with the live progress line of ``load``), then the per-step table
and the answer, and writes ``--json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import UsageError
from .capacity import DEFAULT_SLOS, SLO, Plan, SLOError, StepResult, Verdict, answer, holds, parse_slo, table
from .runner import LoadOptions, Progress, Runner, check_options, locust_command

__all__ = ["CapacityOptions", "run_capacity"]


@dataclass(kw_only=True)
class CapacityOptions:
    load: LoadOptions
    slos: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_SLOS))
    start: int = 10
    step: int = 10
    step_time: float = 30.0
    max_users: int = 5000
    json_path: str | None = None


def _read_steps(path: Path, slos: list[SLO]) -> list[StepResult]:
    steps = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a line being written
        verdicts = [Verdict(slo, v["value"], bool(v["ok"])) for slo, v in zip(slos, data["verdicts"], strict=True)]
        steps.append(StepResult(int(data["step"]), int(data["users"]), int(data["requests"]), verdicts))
    return steps


class StepProgress(Progress):
    """``load``'s progress line plus the step running and the last step's verdict."""

    def __init__(self, prefix: str, out: IO[str], runner: CapacityRunner) -> None:
        super().__init__(prefix, out)
        self.runner = runner

    def line(self) -> str | None:
        text = super().line()
        if text is None:
            return None
        steps = self.runner.plan.steps
        index = min(self.runner.shown, len(steps) - 1)
        return f"{text}; step {index + 1} of {len(steps)} ({steps[index]} users)"


class CapacityRunner(Runner):
    def __init__(self, copts: CapacityOptions, plan: Plan, slos: list[SLO], out: IO[str]) -> None:
        super().__init__(copts.load, out)
        self.copts = copts
        self.plan = plan
        self.slos = slos
        self.shown = 0
        self.results: Path | None = None

    def announce(self, host: str) -> str:
        plan, opts = self.plan, self.opts
        return (
            f"stepping from {plan.start} to at most {plan.steps[-1]} user(s), {plan.step} more every "
            f"{plan.step_time:g}s, against {host} (scenarios {opts.scenario}, pace {opts.pace}); "
            f"SLOs: {'; '.join(s.text for s in self.slos)}"
        )

    def make_progress(self, prefix: str) -> Progress:
        return StepProgress(prefix, self.out, self)

    def command(self, host: str, prefix: str) -> list[str]:
        folder = os.path.dirname(os.path.abspath(prefix))
        self.results = Path(folder) / (os.path.basename(prefix) + "_capacity_steps.jsonl")
        self.results.write_text("")
        spec = Path(folder) / (os.path.basename(prefix) + "_capacity_plan.json")
        spec.write_text(json.dumps({"plan": self.plan.to_json(), "slos": [s.text for s in self.slos],
                                    "results": str(self.results)}))
        cmd = locust_command(self.opts, host, prefix)
        cmd[cmd.index("-f") + 1] = str(Path(__file__).with_name("capacity_locustfile.py"))
        for option in ("--users", "--spawn-rate", "--run-time"):  # the shape decides
            at = cmd.index(option)
            del cmd[at : at + 2]
        classes = [c for c in ("AgentUser", "CustomerUser") if c in cmd]
        at = cmd.index(classes[0])
        return [*cmd[:at], "--capacity-plan", str(spec), *cmd[at:]]

    def tick(self) -> None:
        if self.results is None:
            return
        steps = _read_steps(self.results, self.slos)
        for step in steps[self.shown :]:
            verdicts = "; ".join(("ok " if v.ok else "BROKEN ") + v.slo.show(v.value) for v in step.verdicts)
            self.out.write(f"step {step.number} ({step.users} users): {'holds' if step.ok else 'BREAKS'}: {verdicts}\n")
            self.out.flush()
        self.shown = len(steps)

    def report(self, summary: dict[str, Any], host: str, log_path: str) -> tuple[int, str]:
        self.tick()
        steps = _read_steps(self.results, self.slos) if self.results else []
        self.out.write("\nSteps (each judged on its own window)\n")
        for line in table(steps, self.slos):
            self.out.write(line + "\n")
        text = answer(steps, self.plan)
        if summary.get("exceptions"):
            for exc in summary["exceptions"][:5]:
                self.out.write(f"\n{exc['count']} unexpected exception(s) in the load generator: {exc['message']}\n")
        if self.interrupted:
            code = 130 if self.interrupted == "SIGINT" else 143
            line = f"result: INTERRUPTED by {self.interrupted}: {text}"
        elif not steps:
            code, line = 1, f"result: {text}"
        else:
            code, line = 0, f"result: {text}"
        if self.copts.json_path:
            document = {
                "plan": self.plan.to_json(),
                "slos": [s.text for s in self.slos],
                "steps": [s.to_json() for s in steps],
                "holds": holds(steps),
                "breaks_at": next((s.users for s in steps if not s.ok), None),
                "answer": text,
                "exit_code": code,
                "kpis": summary["kpis"],
                "total_failures": summary["total_failures"],
            }
            Path(self.copts.json_path).write_text(json.dumps(document, indent=2))
        return code, "\n" + line


def prepare(copts: CapacityOptions) -> tuple[Plan, list[SLO]]:
    """The plan and the SLOs, or a one-line :class:`UsageError`."""
    try:
        slos = [parse_slo(s) for s in copts.slos]
    except SLOError as exc:
        raise UsageError(f"--slo: {exc}") from None
    try:
        plan = Plan(copts.start, copts.step, copts.step_time, copts.max_users)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if copts.load.processes != 1:
        raise UsageError("capacity runs one Locust process (each step is judged where its requests are made)")
    if copts.load.host is not None and copts.load.mock_args:
        raise UsageError("--fault is for the embedded mock only (not with --host)")
    return plan, slos


def run_capacity(copts: CapacityOptions, out: IO[str] = sys.stdout) -> int:
    plan, slos = prepare(copts)
    load = dataclasses.replace(copts.load, users=plan.steps[-1], run_time=f"{int(plan.duration) + 1}s")
    check_options(load)
    copts = dataclasses.replace(copts, load=load)
    return CapacityRunner(copts, plan, slos, out).run()
