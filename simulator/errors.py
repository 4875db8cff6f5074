"""The exception tree of webchat-sim: one base class, structured fields."""

from __future__ import annotations

__all__ = ["FrameError", "MockStartError", "SimulatorError", "UsageError"]


class SimulatorError(Exception):
    """Base class of every exception raised by webchat-sim."""


class FrameError(SimulatorError):
    """A frame that is not a valid ``ConversationWebsocketMessage``.

    ``path`` locates the offending value (``message.transport_statuses[0].status``,
    empty for the frame as a whole), ``reason`` says what is wrong with it and
    ``code`` is a stable machine-readable kind (``invalid_json``, ``not_object``,
    ``invalid_type``, ``invalid_enum``, ``missing_field``, ``too_large``, …).
    """

    def __init__(self, reason: str, *, path: str = "", code: str = "invalid_frame") -> None:
        self.reason = reason
        self.path = path
        self.code = code
        super().__init__(f"{path}: {reason}" if path else reason)


class UsageError(SimulatorError):
    """Options or arguments that cannot work: the CLI prints the message as one
    line and exits with status 2, before anything is started."""


class MockStartError(SimulatorError):
    """The embedded mock server did not start (or not in time)."""
