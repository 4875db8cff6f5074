"""The inbox and the waiters of a load-generator
:class:`~simulator.load.transport.Connection`, as its base class.

The connection's receive loop decodes each text message and offers it to the
waiters: the first registered waiter whose predicate accepts it gets it (two
greenlet switches per answer); frames nobody waits for go to a bounded inbox
that later :meth:`FrameWaiters.wait_for` calls search first. A wait is a bare
loop timer and a :class:`gevent.hub.Waiter`: :class:`gevent.Timeout` and
:class:`~gevent.event.AsyncResult` cost several times more, on every round trip.

Nothing here touches a socket; the connection says why no more frames will
come (:meth:`FrameWaiters._closed_error`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final, cast

import gevent
from gevent import getcurrent
from gevent.hub import Waiter

from ..protocol import Frame
from .handshake import ConnectionClosedError, WaitTimeout

__all__ = ["FrameWaiters"]

_Waiter = tuple[Callable[[Frame], bool], Waiter]
_EXPIRED: Final = object()  # handed to a waiter when its timeout fired
_MISSING: Final = object()


class _Failure:
    """Handed to a waiter instead of a frame: raise ``error`` in it."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class FrameWaiters:
    """Frames waited for: the waiters, in registration order, and the inbox
    of frames nobody waited for (at most ``inbox_limit``; ``dropped`` counts
    the oldest discarded from a full inbox). Every method must be called
    from a greenlet of the thread that created it."""

    def __init__(self, inbox_limit: int = 10_000) -> None:
        if inbox_limit < 1:
            raise ValueError(f"inbox_limit must be at least 1, got {inbox_limit}")
        self._inbox: deque[Frame] = deque(maxlen=inbox_limit)
        self._inbox_limit = inbox_limit
        self._waiters: list[_Waiter] = []
        self._handed: dict[_Waiter, object] = {}  # handed from outside the hub, not yet woken
        self._batch: list[tuple[_Waiter, object]] | None = None  # handed while received bytes are handled
        self._hub = gevent.get_hub()
        self._loop = self._hub.loop
        self._input_closed = False  # no more frames: close frame received or connection gone
        self.dropped = 0

    def _closed_error(self) -> ConnectionClosedError:
        """What waiters get once no more frames will come (the connection says why)."""
        raise NotImplementedError

    @property
    def waiting(self) -> int:
        """Number of :meth:`wait_for` calls waiting for a frame."""
        return len(self._waiters)

    def frames(self, *, consume: bool = False) -> list[Frame]:
        """The unconsumed frames, oldest first; ``consume=True`` also empties the inbox."""
        frames = list(self._inbox)
        if consume:
            self._inbox.clear()
        return frames

    def keep_earlier(self, frames: list[Frame]) -> None:
        """Put ``frames`` (oldest first; e.g. what an earlier connection of the
        same session received and nobody took) before the inbox's own, for
        later :meth:`wait_for` calls; beyond ``inbox_limit`` the oldest go."""
        inbox = self._inbox
        room = self._inbox_limit - len(inbox)
        if len(frames) > room:
            self.dropped += len(frames) - room
            frames = frames[len(frames) - room :] if room > 0 else []
        inbox.extendleft(reversed(frames))

    # -- Waiting ------------------------------------------------------------

    def wait_for(self, predicate: Callable[[Frame], bool], timeout: float, *, description: str = "frame") -> Frame:
        """Return (and consume) the oldest frame that satisfies ``predicate``.

        The inbox is searched first; otherwise the call waits, and each new
        frame goes to the first waiter (in registration order) whose predicate
        accepts it. An exception raised by ``predicate`` for a new frame is
        raised here. Raises :class:`WaitTimeout` (naming ``description``)
        after ``timeout`` seconds, :class:`ConnectionClosedError` as soon as
        the connection closes.
        """
        inbox = self._inbox
        if inbox:
            for index, frame in enumerate(inbox):
                if predicate(frame):
                    del inbox[index]
                    return frame
        if self._input_closed:
            raise self._closed_error()
        waiter: _Waiter = (predicate, Waiter(self._hub))
        self._waiters.append(waiter)
        # A bare loop timer and a Waiter: gevent.Timeout and AsyncResult cost
        # several times more, on every round trip.
        timer = self._loop.timer(max(timeout, 0.0))
        timer.start(self._expire, waiter, update=True)
        try:
            found = waiter[1].get()
        except BaseException:
            # Killed, or an outer timeout: don't lose a frame handed over meanwhile.
            self._withdraw(waiter)
            raise
        finally:
            timer.close()
        if found is _EXPIRED:
            raise WaitTimeout(description, timeout)
        if type(found) is _Failure:
            raise found.error  # ConnectionClosedError or the predicate's error
        return cast(Frame, found)

    def _hand(self, waiter: _Waiter, value: object) -> None:
        """Give a withdrawn waiter its frame (or ``_EXPIRED``, or a ``_Failure``) and wake it.

        While received bytes are being handled, the waiter is woken once they
        all are (as if each had been read before any waiter ran). Then, from
        the hub, the waiting greenlet runs at once; from anywhere else the
        value is parked until the hub wakes the greenlet (see :meth:`_withdraw`).
        """
        batch = self._batch
        if batch is not None:
            batch.append((waiter, value))
        elif getcurrent() is self._hub:
            waiter[1].switch(value)
        else:
            self._handed[waiter] = value
            self._loop.run_callback(self._wake, waiter)

    def _wake(self, waiter: _Waiter) -> None:
        value = self._handed.pop(waiter, _MISSING)
        if value is not _MISSING:  # else withdrawn meanwhile
            waiter[1].switch(value)

    def _expire(self, waiter: _Waiter) -> None:
        """A wait timed out (runs in the hub): withdraw the waiter, wake its greenlet."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return  # it was handed something already
        self._hand(waiter, _EXPIRED)

    def _withdraw(self, waiter: _Waiter) -> None:
        """An abandoned wait: unregister it, or put the frame it was handed back first in the inbox."""
        try:
            self._waiters.remove(waiter)
            return
        except ValueError:
            pass
        value = self._handed.pop(waiter, _MISSING)
        if value is _MISSING or value is _EXPIRED or type(value) is _Failure:
            return
        if len(self._inbox) == self._inbox_limit:
            self.dropped += 1  # it is the oldest frame
        else:
            self._inbox.appendleft(cast(Frame, value))

    def _fail_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            self._hand(waiter, _Failure(self._closed_error()))
