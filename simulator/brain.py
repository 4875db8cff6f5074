"""The simulated support agent's brain, sans I/O: what to do next in a chat, and when.

A :class:`ChatBrain` follows one conversation. Its shell tells it what
happened — the chat was taken (:meth:`~ChatBrain.assigned`), a customer
message arrived (:meth:`~ChatBrain.customer_message`), the chat ended
elsewhere (:meth:`~ChatBrain.end`) — and every call answers with the
:data:`Action` s to carry out, each with the time ``at`` it is due: read this
message, show this much typed text, send this text, push this coupon or these
items, close, or wake the brain up. Once the shell has carried an action out
(a :class:`Wake`: once its time has come) it says so with
:meth:`~ChatBrain.done`, which may plan more. The brain owns no socket, clock or
global randomness: times are passed in and every draw comes from the
``random.Random`` and :class:`~simulator.fake.ChatFaker` it is given, so the same
seed and the same events at the same times give the same actions.

Two shells host it: the mock's autopilot agents
(:class:`simulator.mock.autopilot.AutopilotAgent`, turning actions into frames
inside the engine) and the load generator's Locust agents
(:class:`simulator.load.users.WebchatAgent`, executing them with the verbs of an
``AgentSession`` and gevent waits). :class:`Agenda` keeps actions in the order
they are due, for shells and tests.

What the brain does in one chat:

1. **Reading.** Each new customer message (the question counts as the first)
   gets a :class:`Read` after the :attr:`~simulator.pace.Timing.read` delay;
   a message id seen before is ignored.
2. **Answering.** After reading and thinking it plans :class:`Typing` actions
   whose ``text`` is what is typed so far, for a time proportional to the
   reply's length (at most :attr:`~simulator.pace.Timing.max_typing`), then the
   :class:`Send`. The first answer greets and answers the question; the topic
   is ``ChatFaker.topic_of`` of the first customer message, the language the
   customer's (given when the chat is taken, or by its latest message).
   Answers repeat what the customer gave (``ChatFaker.extract_slots`` of each
   message: order number, product, e-mail address, tracking number, card
   digits, size, colour; the customer's e-mail too) rather than inventing other
   values, and are drawn among the templates that mention what the messages
   being answered gave, when one does. Messages that arrive while an answer is
   being typed are answered together by one more answer. A chat without any
   customer message :attr:`~simulator.pace.Timing.greet_alone` seconds after it
   was taken gets a greeting alone.
3. **Pushing.** In a chat about coupons it pushes a coupon after its first
   answer with probability ``coupon_probability`` (an answer that mentions a
   code mentions that one); in a chat about a product, cart items with
   probability ``item_probability``.
4. **Closing.** When the customer says goodbye (``ChatFaker.is_goodbye``,
   once the agent has answered something: "thanks in advance" in a question is
   no goodbye) or writes again after ``exchanges`` answers (drawn per chat),
   the agent says goodbye, then closes. With an
   :attr:`~simulator.pace.Timing.idle_close` (the human pace) it also closes a
   chat whose customer stays silent that long after the last answer. Nothing is
   planned once it closes or :meth:`~ChatBrain.end` is called.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .fake import ChatFaker, Topic
from .pace import DEFAULT_COUPON_PROBABILITY, DEFAULT_EXCHANGES, DEFAULT_ITEM_PROBABILITY, Timing
from .protocol import CartItem

__all__ = [
    "Action",
    "Agenda",
    "AgentStyle",
    "ChatBrain",
    "Close",
    "PushCoupon",
    "PushItems",
    "Read",
    "Say",
    "Send",
    "Typing",
    "Wake",
    "WakeReason",
]


# ---------------------------------------------------------------------------
# Actions


class Say(StrEnum):
    """What a :class:`Send` says."""

    GREETING = "greeting"
    """A greeting alone (a chat started without a question)."""
    ANSWER = "answer"
    """An answer (the first one opens with a greeting)."""
    GOODBYE = "goodbye"
    """The agent's goodbye; a :class:`Close` follows."""


class WakeReason(StrEnum):
    """Why a :class:`Wake` was planned."""

    GREET = "greet"
    """Greet the customer if nothing was said since the chat was taken."""
    IDLE = "idle"
    """Close the chat if the customer stayed silent since the last answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Read:
    """Mark the customer message ``message_id`` read."""

    at: float
    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Typing:
    """Show that the agent is typing; ``text`` is what is typed so far (never empty)."""

    at: float
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Send ``text``: the agent has been typing it since ``typing_from``."""

    at: float
    text: str
    kind: Say
    language: str
    """The language of ``text`` (the customer's)."""
    client_message_id: str
    """An id for the message, drawn with the brain's faker (a shell may use its own)."""
    typing_from: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PushCoupon:
    """Push the coupon ``code`` into the customer's cart (``add coupon``)."""

    at: float
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PushItems:
    """Push cart items (``add item``)."""

    at: float
    items: tuple[CartItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    """Close the conversation."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Wake:
    """Nothing to send: call :meth:`ChatBrain.done` with it once ``at`` has come."""

    at: float
    reason: WakeReason
    token: int = 0
    """For :attr:`WakeReason.IDLE`: the count of customer messages when it was planned."""


Action = Read | Typing | Send | PushCoupon | PushItems | Close | Wake
"""Something a shell does for the brain at ``action.at``."""


# ---------------------------------------------------------------------------
# The brain


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStyle:
    """How one simulated agent works, the same in all its chats."""

    agent_name: str
    """The name it signs its greetings with (a first name)."""
    timing: Timing
    exchanges: tuple[int, int] = DEFAULT_EXCHANGES
    """It says goodbye when the customer writes after this many answers (drawn per chat)."""
    coupon_probability: float = DEFAULT_COUPON_PROBABILITY
    item_probability: float = DEFAULT_ITEM_PROBABILITY

    def __post_init__(self) -> None:
        low, high = self.exchanges
        if not 1 <= low <= high:
            raise ValueError(f"exchanges must be (low, high) with 1 <= low <= high, got {self.exchanges}")


class ChatBrain:
    """The decisions of one agent in one chat (see the module documentation)."""

    def __init__(
        self,
        style: AgentStyle,
        *,
        faker: ChatFaker,
        rng: random.Random,
        language: str | None = None,
        customer_name: str | None = None,
        customer_email: str | None = None,
    ) -> None:
        self.style = style
        self.timing = style.timing
        self.faker = faker
        self.rng = rng
        self.exchanges = rng.randint(*style.exchanges)
        """Answers after which a customer message gets the goodbye."""
        self.language = faker.language_for(language)
        """The language answers are written in (the customer's)."""
        self.customer_name = customer_name.split(" ", 1)[0] if customer_name else None
        self.customer_email = customer_email
        self.topic: Topic | None = None
        """The topic of the first customer message."""
        self.given: dict[str, str] = {}
        """Slot values the customer gave (latest wins)."""
        self.coupon: str | None = None
        """The coupon this chat pushes (drawn with the topic)."""
        self.push_items = False
        self.greeted = False
        self.answers = 0
        self.typing = False
        """An answer (or the greeting) is planned and not sent yet."""
        self.closing = False
        """The goodbye is planned."""
        self.over = False
        """Closed or ended: nothing more is planned."""
        self._fresh: set[str] = set()  # slots given by the messages not answered yet
        self._unanswered: str | None = None  # last customer text that arrived while typing
        self._pushed = False
        self._silence = 0  # bumped by every customer message (invalidates idle wakes)
        self._seen: set[str] = set()

    # ------------------------------------------------------------------
    # Events

    def assigned(self, now: float) -> list[Action]:
        """The chat was taken (assigned or engaged) at ``now``."""
        return [Wake(at=now + self.timing.greet_alone, reason=WakeReason.GREET)]

    def customer_message(
        self, text: str, now: float, *, message_id: str | None = None, language: str | None = None
    ) -> list[Action]:
        """A customer message arrived at ``now`` (``language``: its ISO code, if it has one)."""
        if self.over or (message_id is not None and message_id in self._seen):
            return []
        out: list[Action] = []
        if message_id is not None:
            self._seen.add(message_id)
            read_at = now + self._draw(self.timing.read)
            out.append(Read(at=read_at, message_id=message_id))
        else:
            read_at = now
        if language:
            self.language = self.faker.language_for(language)
        self._silence += 1
        if self.closing:
            return out
        if self.topic is None:
            self._choose_topic(text)
        given = self.faker.extract_slots(text, self.language)
        self.given.update(given)
        self._fresh.update(given)
        if self.typing:
            self._unanswered = text
            return out
        return out + self._respond(text, read_at)

    def done(self, action: Action, at: float) -> list[Action]:
        """``action`` was carried out at ``at`` (a :class:`Wake`: its time came)."""
        if self.over:
            return []
        if isinstance(action, Send):
            return self._answered(at) if action.kind is not Say.GOODBYE else []
        if isinstance(action, Wake):
            if action.reason is WakeReason.GREET:
                return self._greet_if_silent(at)
            return self._close_if_silent(action.token, at)
        if isinstance(action, Close):
            self.over = True
        return []

    def end(self) -> None:
        """The chat ended elsewhere (the customer closed it or left, the server
        refused): plan nothing more."""
        self.over = True

    # ------------------------------------------------------------------
    # Decisions

    def _draw(self, span: tuple[float, float]) -> float:
        return self.timing.draw(span, self.rng)

    def _choose_topic(self, text: str) -> None:
        topic = self.topic = self.faker.topic_of(text)
        if topic is Topic.COUPONS and self.rng.random() < self.style.coupon_probability:
            self.coupon = self.faker.coupon_code()
        elif topic is Topic.PRODUCT and self.rng.random() < self.style.item_probability:
            self.push_items = True

    def _type(self, text: str, start: float, kind: Say) -> list[Action]:
        """Typing actions then the message, after thinking from ``start``."""
        begin = start + self._draw(self.timing.think)
        duration = self.timing.typing_time(text, self.rng)
        out: list[Action] = []
        moment = begin
        while moment < begin + duration:
            typed = max(1, round(len(text) * (moment - begin) / duration)) if duration > 0 else len(text)
            out.append(Typing(at=moment, text=text[:typed]))
            moment += self._draw(self.timing.typing_every)
        client_id = self.faker.client_message_id()
        out.append(
            Send(
                at=begin + duration,
                text=text,
                kind=kind,
                language=self.language,
                client_message_id=client_id,
                typing_from=begin,
            )
        )
        return out

    def _respond(self, text: str, start: float) -> list[Action]:
        if self.answers >= self.exchanges or (self.answers > 0 and self.faker.is_goodbye(text)):
            return self._say_goodbye(start)
        slots = {"email": self.customer_email} if self.customer_email else {}
        slots.update(self.given)
        if self.coupon:
            slots["coupon"] = self.coupon
        prefer, self._fresh = self._fresh, set()
        answer = self.faker.agent_reply(
            self.topic or Topic.PRODUCT,
            self.language,
            first=not self.greeted,
            agent_name=self.style.agent_name,
            customer_name=self.customer_name,
            slots=slots,
            prefer=prefer,
        )
        self.greeted = True
        self.answers += 1
        self.typing = True
        out = self._type(answer, start, Say.ANSWER)
        if not self._pushed and (self.coupon or self.push_items):
            self._pushed = True
            push_at = out[-1].at + self._draw(self.timing.push)
            if self.coupon:
                out.append(PushCoupon(at=push_at, code=self.coupon))
            else:
                out.append(PushItems(at=push_at, items=tuple(self.faker.cart_items(language=self.language))))
        return out

    def _answered(self, at: float) -> list[Action]:
        """An answer was sent: answer what came meanwhile, or wait (and maybe close when idle)."""
        self.typing = False
        if self.closing:
            return []
        if self._unanswered is not None:
            text, self._unanswered = self._unanswered, None
            return self._respond(text, at)
        idle = self.timing.idle_close
        if idle is not None and self.answers >= self.exchanges:
            return [Wake(at=at + idle, reason=WakeReason.IDLE, token=self._silence)]
        return []

    def _greet_if_silent(self, at: float) -> list[Action]:
        if self.greeted or self.typing or self.closing:
            return []
        self.greeted = True
        self.typing = True
        greeting = self.faker.greeting(
            self.language, agent_name=self.style.agent_name, customer_name=self.customer_name
        )
        return self._type(greeting, at, Say.GREETING)

    def _close_if_silent(self, token: int, at: float) -> list[Action]:
        if self._silence == token and not self.typing and not self.closing:
            return self._say_goodbye(at)
        return []

    def _say_goodbye(self, start: float) -> list[Action]:
        self.closing = True
        goodbye = self.faker.goodbye(self.language, agent=True, name=self.customer_name)
        out = self._type(goodbye, start, Say.GOODBYE)
        out.append(Close(at=out[-1].at + self._draw(self.timing.close)))
        return out


# ---------------------------------------------------------------------------
# Keeping actions until they are due


class Agenda:
    """Actions waiting for their time, earliest first; equal times keep the
    order they were added in. ``add(action, at=...)`` files an action under
    another time than its own (a shell that starts an action early)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Action]] = []
        self._seq = itertools.count()

    def add(self, action: Action, *, at: float | None = None) -> None:
        heapq.heappush(self._heap, (action.at if at is None else at, next(self._seq), action))

    def extend(self, actions: Iterable[Action]) -> None:
        for action in actions:
            self.add(action)

    def next_deadline(self) -> float | None:
        """When the earliest action is due (``None``: nothing planned)."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Action | None:
        """The earliest action due at or before ``now``, removed (``None``: none is due)."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)
