"""``load --record FILE.jsonl``: the load generator's side of a transcript
(format: :mod:`simulator.transcript`).

While :func:`start` is in effect, every session opens its connection through
:func:`opener` as a :class:`RecordingConnection`, which writes each frame it
sends (``send``) and receives (``recv``), its opening URL (redacted) and its
close code to the process's :class:`~simulator.transcript.TranscriptWriter`.
Otherwise :func:`opener` is plain :meth:`Connection.connect
<simulator.load.transport.Connection.connect>`: a run without ``--record``
pays one function call per connect, nothing per frame.

A recorded frame costs one formatted line in memory (no second encoding,
no parsing unless it may hold a token); lines are written every second.
The Locust side (the ``--record`` option, start and stop) is
:mod:`.record_locust`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ..protocol import Frame, encode
from ..transcript import TranscriptWriter
from .transport import Connection

__all__ = ["RecordingConnection", "active", "opener", "start", "stop"]

_writer: TranscriptWriter | None = None


def start(path: str, meta: dict[str, Any]) -> TranscriptWriter:
    """Record every connection opened from now on (``source: load``); raises
    :class:`~simulator.errors.TranscriptError` when the file cannot be written."""
    global _writer
    stop()
    _writer = TranscriptWriter(path, source="load", meta=meta)
    return _writer


def stop() -> None:
    """Write what is buffered and stop recording. Idempotent."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        writer.close()


def active() -> TranscriptWriter | None:
    return _writer


class RecordingConnection(Connection):
    """A :class:`Connection` that writes what goes through it to the transcript;
    the subclasses of :func:`opener` set ``role``."""

    role: ClassVar[str] = "customer"
    writer: ClassVar[TranscriptWriter | None] = None

    def __init__(self, url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        writer = self.writer
        self._conn_no = writer.new_conn() if writer is not None else 0
        if writer is not None:
            writer.opened(self._conn_no, self.role, url)

    def send(self, frame: Frame | bytes) -> None:
        payload = frame if isinstance(frame, bytes) else encode(frame)
        writer = self.writer
        if writer is not None and not writer.closed:
            writer.frame(self._conn_no, self.role, "send", payload)
        super().send(payload)

    def _deliver(self, data: bytes, arrived: float) -> None:
        writer = self.writer
        if writer is not None and not writer.closed:
            writer.frame(self._conn_no, self.role, "recv", data)
        super()._deliver(data, arrived)

    def _terminate(self, cause: BaseException | None) -> None:
        done = self._terminated
        super()._terminate(cause)
        writer = self.writer
        if not done and writer is not None and not writer.closed:
            writer.closed_conn(self._conn_no, self.role, self.close_code)


_classes: dict[tuple[int, str], type[RecordingConnection]] = {}


def opener(role: str) -> Callable[..., Connection]:
    """How a session of ``role`` opens its connection: :meth:`Connection.connect`,
    or while recording the ``connect`` of a :class:`RecordingConnection` of that role."""
    writer = _writer
    if writer is None:
        return Connection.connect
    key = (id(writer), role)
    cls = _classes.get(key)
    if cls is None:
        _classes.clear()  # a new writer: the classes of the old one go
        cls = _classes[key] = type(f"Recording{role.title()}Connection", (RecordingConnection,), {})
        cls.role = role
        cls.writer = writer
    return cls.connect
