"""Locust users that drive chats: :class:`CustomerUser` and :class:`AgentUser`.

Each logical chat operation fires exactly one ``events.request`` with request
type ``WS``, a low-cardinality name (see :class:`~simulator.sessions.KPI`) and
milliseconds measured with ``perf_counter``; events that are counted but not
timed (rrweb chunks, invalid frames, server errors) fire with
``response_time=None``. Options are added to Locust's command line (and
environment variables ``WEBCHAT_*``); each user gets a Faker seeded from
``--seed``, the worker index and its own number, so a run is reproducible and
workers of ``--processes`` differ.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import Any, ClassVar

import gevent
from gevent.lock import BoundedSemaphore
from locust import User, events, task
from locust.env import Environment

from .dialect import Dialect
from .fake import ChatFaker, Topic
from .scenario import ScenarioMix, parse_mix
from .sessions import AgentSession, CustomerSession, OperationFailed, Pacing

__all__ = ["AgentUser", "ChatUser", "CustomerUser"]

log = logging.getLogger("webchat_sim.users")
REQUEST_TYPE = "WS"
_counter = itertools.count()


def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("webchat-sim")
    group.add_argument(
        "--scenario",
        type=str,
        env_var="WEBCHAT_SCENARIO",
        default="happy_path",
        help="weighted scenario mix, e.g. happy_path:3,abandon:1 (names in scenarios/ or .py paths)",
    )
    group.add_argument(
        "--pace",
        choices=["human", "fast", "none"],
        env_var="WEBCHAT_PACE",
        default="human",
        help="human: typing and thinking in seconds; fast: milliseconds; none: no pauses",
    )
    group.add_argument(
        "--chars-per-second",
        type=float,
        env_var="WEBCHAT_CPS",
        default=0.0,
        help="typing speed for the human pace (default 6)",
    )
    group.add_argument("--seed", type=int, env_var="WEBCHAT_SEED", default=0, help="base seed of the fake data")
    group.add_argument(
        "--queues",
        type=str,
        env_var="WEBCHAT_QUEUES",
        default="support",
        help="comma-separated queue names customers pick from and agents log in to",
    )
    group.add_argument(
        "--chat-timeout",
        type=float,
        env_var="WEBCHAT_TIMEOUT",
        default=60.0,
        help="seconds any single wait (ack, agent, reply) may take before it is a failure",
    )
    group.add_argument(
        "--manual-routing",
        action="store_true",
        env_var="WEBCHAT_MANUAL_ROUTING",
        default=False,
        help="AgentUsers engage customers themselves instead of waiting for round-robin",
    )
    group.add_argument(
        "--agent-users",
        type=int,
        env_var="WEBCHAT_AGENT_USERS",
        default=0,
        help="run exactly this many AgentUsers (0: by weight, when AgentUser is selected)",
    )
    group.add_argument(
        "--agent-max-chats",
        type=int,
        env_var="WEBCHAT_AGENT_MAX_CHATS",
        default=3,
        help="chats an AgentUser handles at once",
    )


def _fix_agent_count(environment: Environment, **_: Any) -> None:
    count = int(getattr(environment.parsed_options, "agent_users", 0) or 0)
    if count > 0:
        AgentUser.fixed_count = count


events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_fix_agent_count)  # type: ignore[no-untyped-call]


class ChatUser(User):
    """Shared set-up: options, seeding, the recorder that feeds Locust stats."""

    abstract = True
    dialect_class: ClassVar[type[Dialect]] = Dialect

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.options = options
        runner = environment.runner
        worker = int(getattr(runner, "worker_index", 0) or 0)
        self.number = next(_counter)
        base = int(getattr(options, "seed", 0) or 0)
        self.seed = base * 1_000_003 + worker * 100_003 + self.number
        self.rng = random.Random(self.seed)
        self.faker = ChatFaker(self.seed)
        self.dialect = self.dialect_class()
        self.pacing = Pacing.of(
            getattr(options, "pace", "human"), chars_per_second=getattr(options, "chars_per_second", 0.0) or None
        )
        self.timeout = float(getattr(options, "chat_timeout", 60.0))
        self.queues = tuple(q for q in str(getattr(options, "queues", "support")).split(",") if q) or ("support",)

    def record(
        self, name: str, response_time: float | None, *, length: int = 0, exception: BaseException | None = None
    ) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={"user": self.number},
        )

    def session_kwargs(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "faker": self.faker,
            "rng": self.rng,
            "dialect": self.dialect,
            "pacing": self.pacing,
            "timeout": self.timeout,
        }


class CustomerUser(ChatUser):
    """A webchat visitor running scenario scripts, one chat per iteration."""

    weight = 10
    _mix: ClassVar[ScenarioMix | None] = None
    _mix_spec: ClassVar[str | None] = None

    def mix(self) -> ScenarioMix:
        spec = str(getattr(self.options, "scenario", "happy_path"))
        cls = type(self)
        if cls._mix is None or cls._mix_spec != spec:
            cls._mix = ScenarioMix(parse_mix(spec))
            cls._mix_spec = spec
        return cls._mix

    @task
    def chat(self) -> None:
        scenario = self.mix().pick(self.rng)
        customer = CustomerSession(self.host or "ws://127.0.0.1:8765", **self.session_kwargs())
        customer.queue = self.rng.choice(self.queues)
        try:
            scenario.run(customer)
        except OperationFailed:
            pass  # already reported with its reason
        finally:
            customer.expire_pending(final=True)
            customer.disconnect()


class AgentUser(ChatUser):
    """A support agent for backends without built-in agents: logs in to the
    queues, takes chats (round-robin assignment or ``--manual-routing``), and
    answers each chat in its own greenlet up to ``--agent-max-chats`` at once."""

    weight = 1
    fixed_count = 0

    def on_start(self) -> None:
        self.agent = AgentSession(
            self.host or "ws://127.0.0.1:8765",
            queues=self.queues,
            manual=bool(getattr(self.options, "manual_routing", False)),
            **self.session_kwargs(),
        )
        self.slots = BoundedSemaphore(int(getattr(self.options, "agent_max_chats", 3)))
        self.agent.connect()

    def on_stop(self) -> None:
        self.agent.disconnect()

    @task
    def work(self) -> None:
        self.agent.expire_pending()  # acks that never came are failures; forget unread receipts
        self.slots.acquire()
        try:
            conversation = self.agent.take_chat(required=False)  # an idle queue is not a failure
        except OperationFailed:
            conversation = None
        if conversation is None:
            self.slots.release()
            if not self.agent.connected:
                self.agent.connect()
            return
        gevent.spawn(self._handle, conversation)

    def _handle(self, conversation: str) -> None:
        agent = self.agent
        try:
            first = True
            topic: Topic | None = None
            for _ in range(self.rng.randint(3, 8)):
                frame = agent.wait_for_customer_message(conversation)
                if frame is None:
                    return
                body = frame.message.body if frame.message else ""
                if topic is None:
                    topic = self.faker.topic_of(body or "")
                agent.read(conversation, frame)
                if self.faker.is_goodbye(body or ""):
                    agent.reply(conversation, self.faker.goodbye(agent.chats.get(conversation, "en"), agent=True))
                    break
                agent.think()
                agent.reply(conversation, topic=topic, first=first)
                first = False
                if topic is Topic.COUPONS and self.rng.random() < 0.5:
                    agent.push_coupon(conversation)
                elif topic is Topic.PRODUCT and self.rng.random() < 0.5:
                    agent.push_items(conversation)
            if not agent.is_closed(conversation):
                agent.close_chat(conversation)
        except OperationFailed:
            pass
        finally:
            agent.chats.pop(conversation, None)
            self.slots.release()
