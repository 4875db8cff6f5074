"""A stall sampler for a gevent process (diagnostics for bench_headroom.py).

An OS thread (the original, unpatched ``_thread``) samples the main
thread's Python stack every ``interval`` seconds; a loop timer in the hub
beats every ``beat`` seconds. A sample taken while the beat is late by more
than ``late`` seconds belongs to a stall (the loop was busy or stopped); the
report counts, per function (``file:line name``), how many stall samples and
how many samples overall had it on the stack (inclusive) or at the top (leaf).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any


class StallSampler:
    def __init__(self, interval: float = 0.002, beat: float = 0.002, late: float = 0.010, depth: int = 40) -> None:
        import gevent
        from gevent import monkey

        self._start_thread = monkey.get_original("_thread", "start_new_thread")
        self._sleep = monkey.get_original("time", "sleep")
        self._clock = monkey.get_original("time", "perf_counter")
        self._main = monkey.get_original("_thread", "get_ident")()  # called from the main thread
        self.interval, self.late, self.depth = interval, late, depth
        self.last_beat = self._clock()
        self._timer = gevent.get_hub().loop.timer(beat, beat)
        self.running = False
        self.samples = 0
        self.stall_samples = 0
        self.stall_inclusive: Counter[str] = Counter()
        self.stall_leaf: Counter[str] = Counter()
        self.all_inclusive: Counter[str] = Counter()
        self.in_gc = [False]
        import os

        self._schedstat = f"/proc/{os.getpid()}/schedstat"
        self.stall_oncpu_ns = self.stall_runqueue_ns = self.all_oncpu_ns = self.all_runqueue_ns = 0
        self.stall_wall_s = 0.0

    def _beat(self) -> None:
        self.last_beat = self._clock()

    def start(self) -> None:
        import gc

        self.running = True
        self._timer.start(self._beat)

        def callback(phase: str, info: dict[str, Any]) -> None:
            self.in_gc[0] = phase == "start"

        gc.callbacks.append(callback)
        self._start_thread(self._run, ())

    def stop(self) -> None:
        self.running = False
        self._timer.stop()

    def _sched(self) -> tuple[int, int]:
        try:
            with open(self._schedstat) as f:
                oncpu, runqueue, _ = f.read().split()
            return int(oncpu), int(runqueue)
        except (OSError, ValueError):
            return 0, 0

    def _run(self) -> None:
        before = self._sched()
        then = self._clock()
        while self.running:
            self._sleep(self.interval)
            frame = sys._current_frames().get(self._main)
            if frame is None:
                continue
            now = self._clock()
            stall = now - self.last_beat > self.late
            sched = self._sched()
            oncpu, runqueue = sched[0] - before[0], sched[1] - before[1]
            before = sched
            self.all_oncpu_ns += oncpu
            self.all_runqueue_ns += runqueue
            if stall:
                self.stall_oncpu_ns += oncpu
                self.stall_runqueue_ns += runqueue
                self.stall_wall_s += now - then
            then = now
            names: list[str] = []
            if self.in_gc[0]:
                names.append("<gc collection>")
            depth = 0
            while frame is not None and depth < self.depth:
                code = frame.f_code
                names.append(f"{code.co_filename.rsplit('/', 2)[-1]}:{code.co_firstlineno} {code.co_name}")
                frame = frame.f_back
                depth += 1
            self.samples += 1
            unique = set(names)
            self.all_inclusive.update(unique)
            if stall:
                self.stall_samples += 1
                self.stall_inclusive.update(unique)
                if names:
                    self.stall_leaf[names[0]] += 1

    def report(self, top: int = 40) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "stall_samples": self.stall_samples,
            "stall_wall_s": round(self.stall_wall_s, 3),
            "stall_main_oncpu_s": round(self.stall_oncpu_ns / 1e9, 3),
            "stall_main_runqueue_s": round(self.stall_runqueue_ns / 1e9, 3),
            "all_main_oncpu_s": round(self.all_oncpu_ns / 1e9, 3),
            "all_main_runqueue_s": round(self.all_runqueue_ns / 1e9, 3),
            "stall_inclusive": self.stall_inclusive.most_common(top),
            "stall_leaf": self.stall_leaf.most_common(top),
            "all_inclusive": self.all_inclusive.most_common(top),
        }
