"""The Locust users' behaviour: :class:`WebchatCustomer` and :class:`WebchatAgent`.

Both are abstract, so importing them into a locustfile runs nothing by
itself: the packaged locustfile (:mod:`simulator.load.locustfile`) makes the
concrete ``CustomerUser`` and ``AgentUser``, and a custom locustfile
subclasses these two with its own dialect, and only its subclasses run.

Each logical chat operation fires exactly one ``events.request`` with request
type ``WS``, a low-cardinality name (see :class:`~simulator.load.sessions.KPI`) and
milliseconds measured with ``perf_counter``; events that are counted but not
timed (rrweb chunks, invalid frames, server errors) fire with
``response_time=None``. Options are added to Locust's command line (and
environment variables ``WEBCHAT_*``); each user gets a Faker seeded from
``--seed``, the worker index and its own number, so a run is reproducible and
workers of ``--processes`` differ.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import random
import sys
import time
from typing import Any, ClassVar

import gevent
from gevent.lock import BoundedSemaphore
from gevent.pool import Group
from locust import User, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.stats import StatsCSVFileWriter
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from ..brain import Action, Agenda, AgentStyle, ChatBrain, Close, PushCoupon, PushItems, Read, Send, Typing
from ..fake import ChatFaker, parse_languages
from ..pace import (
    DEFAULT_COUPON_PROBABILITY,
    DEFAULT_EXCHANGES,
    DEFAULT_ITEM_PROBABILITY,
    DEFAULT_LOAD_PACE,
    DEFAULT_MAX_CHATS,
    chat_pacing_wait,
)
from ..protocol import Frame
from . import record_locust  # noqa: F401 - registers --record (load --record)
from .chaos import ChaosMonkey, parse_chaos
from .dialect import AuthSettings, Dialect
from .looplag import install as install_loop_lag
from .scenario import ScenarioError, ScenarioMix, parse_mix
from .sessions import KPI, AgentSession, Backoff, CustomerSession, OperationFailed, Pacing
from .transport import TransportError

__all__ = ["ChatUser", "WebchatAgent", "WebchatCustomer"]

log = logging.getLogger("webchat_sim.users")
REQUEST_TYPE = "WS"
_counter = itertools.count()
_agent_counter = itertools.count()
_EARLY = 0.001
"""Seconds: an agent's action this close to due is due (timers may fire a hair early)."""


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
        default=DEFAULT_LOAD_PACE.value,
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
        default=DEFAULT_MAX_CHATS,
        help="chats an AgentUser handles at once",
    )
    group.add_argument(
        "--auth",
        choices=["query", "rest"],
        env_var="WEBCHAT_AUTH",
        default="query",
        help="query: identities in the websocket query string (the mock's development mode); "
        "rest: a JWT from UltraCart's REST auth before every connect",
    )
    group.add_argument(
        "--api-key",
        type=str,
        env_var="WEBCHAT_API_KEY",
        default="",
        help="API key sent as x-ultracart-simple-key with --auth rest (comma-separated: AgentUsers take them in turn)",
    )
    group.add_argument(
        "--languages",
        type=str,
        env_var="WEBCHAT_LANGUAGES",
        default="",
        help="comma-separated languages customers write in, e.g. en,fr (default: every phrasebook: en, fr, de, es)",
    )
    group.add_argument(
        "--chat-pacing",
        type=float,
        env_var="WEBCHAT_CHAT_PACING",
        default=0.0,
        help="a customer starts a chat at most every this many seconds (0: back to back); "
        "N customers then arrive at N / pacing chats a second",
    )
    group.add_argument(
        "--rest-url",
        type=str,
        env_var="WEBCHAT_REST_URL",
        default="",
        help="REST base URL for --auth rest (default: from --host, ws://H:P/ws -> http://H:P+1/rest/v2)",
    )
    group.add_argument(
        "--chaos",
        type=str,
        env_var="WEBCHAT_CHAOS",
        default="",
        help="faults of the customers, e.g. disconnect=0.01: before each verb mid-chat, drop the connection "
        "abruptly with that probability and resume the chat (counted as `chaos drop`)",
    )


def _on_init(environment: Environment, **_: Any) -> None:
    """Check the options before any user starts: a bad scenario mix is one line
    on stderr and exit status 2, not a traceback per chat for the whole run."""
    options = environment.parsed_options
    if options is None:
        return
    try:
        WebchatCustomer.set_mix(str(getattr(options, "scenario", "happy_path")))
    except ScenarioError as exc:
        sys.stderr.write(f"webchat-sim: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
    rest_url = str(getattr(options, "rest_url", "") or "")
    if rest_url and not rest_url.startswith(("http://", "https://")):
        sys.stderr.write(
            f'webchat-sim: --rest-url must be an http(s) URL such as http://127.0.0.1:8766/rest/v2 (got "{rest_url}")\n'
        )
        sys.stderr.flush()
        raise SystemExit(2)
    for name, check in (("--languages", languages_of), ("--chaos", chaos_of)):
        try:
            check(options)
        except ValueError as exc:
            sys.stderr.write(f"webchat-sim: {name}: {exc}\n")
            sys.stderr.flush()
            raise SystemExit(2) from None
    count = int(getattr(options, "agent_users", 0) or 0)
    if count > 0:
        for user_class in environment.user_classes:
            if issubclass(user_class, WebchatAgent):
                user_class.fixed_count = count


def languages_of(options: Any) -> tuple[str, ...]:
    """``--languages`` as a tuple (empty option: every phrasebook); ``ValueError`` for unknown ones."""
    return parse_languages(str(getattr(options, "languages", "") or ""))


def chaos_of(options: Any) -> ChaosMonkey | None:
    """``--chaos`` (``None``: none); ``ValueError`` for a bad one. Each user draws from its own random."""
    chaos = parse_chaos(str(getattr(options, "chaos", "") or ""))
    return ChaosMonkey(chaos, random.Random()) if chaos else None


def _close_with_final_rows(writer: StatsCSVFileWriter) -> None:
    """Locust rewrites its ``--csv`` files once a second and not at exit, so
    they missed up to the last second of a run (and everything stopping users
    reported): write the final statistics, the same Locust prints, before the
    files are closed."""
    now = time.time()
    for handle, write in (
        (writer.requests_csv_filehandle, writer.requests_csv),
        (writer.failures_csv_filehandle, writer.failures_csv),
        (writer.exceptions_csv_filehandle, writer.exceptions_csv),
    ):
        if not handle.closed:
            handle.seek(0)
            handle.truncate()
            write(csv.writer(handle))
    if not writer.stats_history_csv_filehandle.closed:
        with contextlib.suppress(Exception):  # a history row is a nicety; the totals above are what counts
            writer._stats_history_data_rows(writer.stats_history_csv_writer, now)
    _original_close_files(writer)


_worker_requests: dict[str, int] = {}
"""On a master: the requests each worker reported, by its id."""


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    entries = data.get("stats") or ()
    count = sum(int(e.get("num_requests", 0) or 0) for e in entries if isinstance(e, dict))
    _worker_requests[client_id] = _worker_requests.get(client_id, 0) + count


def _on_quitting(environment: Environment, **_: Any) -> None:
    """On a master, one log line per worker: what it reported (``webchat-sim load --master`` shows it)."""
    for client_id, count in sorted(_worker_requests.items()):
        log.info("webchat-sim: worker %s reported %d request(s)", client_id, count)


_original_close_files = StatsCSVFileWriter.close_files
StatsCSVFileWriter.close_files = _close_with_final_rows  # type: ignore[method-assign,assignment]
events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.worker_report.add_listener(_on_worker_report)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
install_loop_lag(events)  # the generator's own event-loop lag, in the KPI summary


class ChatUser(User):
    """Shared set-up: options, seeding, the recorder that feeds Locust stats."""

    abstract = True
    dialect_class: ClassVar[type[Dialect]] = Dialect
    backoff_base: ClassVar[float] = 0.5
    """Seconds of the first wait after a failed connect (half fixed, half random)."""
    backoff_cap: ClassVar[float] = 10.0
    """The longest wait between two connect attempts."""

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
        self.faker = ChatFaker(self.seed, languages=languages_of(options))
        self.dialect = self.dialect_class()
        self.pacing = Pacing.of(
            getattr(options, "pace", DEFAULT_LOAD_PACE.value),
            chars_per_second=getattr(options, "chars_per_second", 0.0) or None,
        )
        self.timeout = float(getattr(options, "chat_timeout", 60.0))
        self.queues = tuple(q for q in str(getattr(options, "queues", "support")).split(",") if q) or ("support",)
        # its own seeded random: failed connects leave the scenario choices of the user's rng as they were
        self.backoff = Backoff(self.backoff_base, self.backoff_cap, random.Random(f"backoff {self.seed}"))
        self.api_keys = tuple(k.strip() for k in str(getattr(options, "api_key", "") or "").split(",") if k.strip())
        self.auth = self.auth_settings(self.api_keys[0] if self.api_keys else None)
        self.chaos = chaos_of(options)
        if self.chaos is not None:
            self.chaos.rng.seed(f"chaos {self.seed}")

    def auth_settings(self, api_key: str | None) -> AuthSettings | None:
        """The REST auth of this user's sessions (``--auth rest``), ``None`` otherwise."""
        if str(getattr(self.options, "auth", "query") or "query") != "rest":
            return None
        return AuthSettings(api_key=api_key, rest_url=str(getattr(self.options, "rest_url", "") or "") or None)

    def back_off(self) -> None:
        """After a failed connect: wait before the next attempt (capped
        exponential backoff with equal jitter: :attr:`backoff_base` doubling
        up to :attr:`backoff_cap` seconds), so a dead or wrong
        ``--host`` is not hammered. The user counts as waiting meanwhile, as in
        Locust's own ``wait()``: stopping the test ends the wait at once, even
        with ``--stop-timeout``."""
        delay = self.backoff.next_delay()  # a failed REST auth counts as a failed connect
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser
        self._state = LOCUST_STATE_WAITING
        gevent.sleep(delay)
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser
        self._state = LOCUST_STATE_RUNNING

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
            "auth": self.auth,
        }


class WebchatCustomer(ChatUser):
    """A webchat visitor running scenario scripts, one chat per iteration."""

    abstract = True

    weight = 10
    _mix: ClassVar[ScenarioMix | None] = None
    _mix_spec: ClassVar[str | None] = None

    @classmethod
    def set_mix(cls, spec: str) -> ScenarioMix:
        """Load the scenario mix ``spec`` (raises :class:`ScenarioError`)."""
        if cls._mix is None or cls._mix_spec != spec:
            cls._mix = ScenarioMix(parse_mix(spec))
            cls._mix_spec = spec
        return cls._mix

    def mix(self) -> ScenarioMix:
        return type(self).set_mix(str(getattr(self.options, "scenario", "happy_path")))

    _chat_started: float | None = None

    def wait_time(self) -> float:
        """``--chat-pacing``: see :func:`~simulator.pace.chat_pacing_wait`."""
        pacing = float(getattr(self.options, "chat_pacing", 0.0) or 0.0)
        return chat_pacing_wait(pacing, self._chat_started, time.time())

    @task
    def chat(self) -> None:
        self._chat_started = time.time()
        scenario = self.mix().pick(self.rng)
        customer = CustomerSession(self.host or "ws://127.0.0.1:8765", **self.session_kwargs())
        customer.queue = self.rng.choice(self.queues)
        customer.chaos = self.chaos
        finished = False
        try:
            scenario.run(customer)
            finished = True
        except OperationFailed:
            finished = True  # already reported with its reason
        except TransportError as exc:  # the connection broke between two verbs' waits
            finished = True
            customer.report_failure(KPI.CONNECTION_LOST, str(exc))
        finally:
            if finished:
                customer.expire_pending(final=True)
            else:  # stopped by Locust mid-chat: what was still on its way is not lost
                customer.meter.cancel(KPI.MESSAGE_ACK)
            customer.disconnect()
        if customer.connect_ok is False:  # refused, unreachable, rejected: wait before the next chat connects
            self.back_off()
        elif customer.connect_ok:
            self.backoff.reset()


class WebchatAgent(ChatUser):
    """A support agent for backends without built-in agents: logs in to the
    queues, takes chats (round-robin assignment or ``--manual-routing``), and
    runs each chat in its own greenlet up to ``--agent-max-chats`` at once.

    What it says and when is decided by a :class:`~simulator.brain.ChatBrain`
    per chat, the brain of the mock's autopilot agents, at the agent timings of
    ``--pace`` (:attr:`Pacing.agent <simulator.pace.Pacing.agent>`): it reads,
    answers in the customer's language with the order number, e-mail or
    product the customer gave, pushes a coupon or cart items on coupon and
    product topics, and says goodbye then closes when the customer says
    goodbye or writes again after :attr:`exchanges` answers. This class only
    carries the brain's actions out with the :class:`AgentSession` verbs and
    gevent waits, listening for customer messages meanwhile.
    """

    abstract = True
    weight = 1
    fixed_count = 0
    exchanges: ClassVar[tuple[int, int]] = DEFAULT_EXCHANGES
    """The agent closes after this many answers (drawn per chat)."""
    coupon_probability: ClassVar[float] = DEFAULT_COUPON_PROBABILITY
    item_probability: ClassVar[float] = DEFAULT_ITEM_PROBABILITY

    def on_start(self) -> None:
        if self.api_keys:  # several keys, several agent accounts: agent users take them in turn
            worker = int(getattr(self.environment.runner, "worker_index", 0) or 0)
            self.auth = self.auth_settings(self.api_keys[(next(_agent_counter) + worker) % len(self.api_keys)])
        self.agent = AgentSession(
            self.host or "ws://127.0.0.1:8765",
            queues=self.queues,
            manual=bool(getattr(self.options, "manual_routing", False)),
            **self.session_kwargs(),
        )
        self.style = AgentStyle(
            agent_name=self.agent.persona.first_name,
            timing=self.pacing.agent,
            exchanges=self.exchanges,
            coupon_probability=self.coupon_probability,
            item_probability=self.item_probability,
        )
        self.slots = BoundedSemaphore(int(getattr(self.options, "agent_max_chats", DEFAULT_MAX_CHATS)))
        self.chat_greenlets = Group()
        self._connect()  # at once; a failure is reported and work() tries again after a backoff

    def _connect(self) -> bool:
        try:
            self.agent.connect()
        except OperationFailed:
            return False
        self.backoff.reset()
        return True

    def on_stop(self) -> None:
        # the chats first: a chat waiting for its customer when the connection
        # closes under it would report the agent's own stop as a failure
        self.chat_greenlets.kill()
        self.agent.disconnect()

    @task
    def work(self) -> None:
        if not self.agent.connected:  # not yet, or lost: try again, at once unless the last attempt failed
            if self.agent.connect_ok is False:
                self.back_off()
            if not self._connect():
                return
        self.agent.expire_pending()  # acks that never came are failures; forget unread receipts
        self.slots.acquire()
        try:
            conversation = self.agent.take_chat(required=False)  # an idle queue is not a failure
        except OperationFailed:
            conversation = None
        if conversation is None:
            self.slots.release()  # a lost connection is opened again by the next work()
            return
        self.chat_greenlets.spawn(self._handle, conversation)

    def _handle(self, conversation: str) -> None:
        """One chat: the brain's actions when they are due, customer messages as they come."""
        agent = self.agent
        brain = ChatBrain(self.style, faker=self.faker, rng=self.rng, language=agent.chats.get(conversation))
        agenda = Agenda()
        unread: dict[str, Frame] = {}  # customer messages to mark read, by uuid
        try:
            self._plan(agenda, brain.assigned(time.monotonic()))
            while not brain.over and not agent.is_closed(conversation):
                ended, frame = self._next_message(conversation, agenda.next_deadline())
                if ended:
                    brain.end()
                elif frame is not None and frame.message is not None:
                    message = frame.message
                    if message.conversation_message_uuid is not None:
                        unread[message.conversation_message_uuid] = frame
                    actions = brain.customer_message(
                        message.body or "",
                        time.monotonic(),
                        message_id=message.conversation_message_uuid,
                        language=message.language_iso_code,
                    )
                    self._plan(agenda, actions)
                elif (action := agenda.pop_due(time.monotonic() + _EARLY)) is not None:
                    self._act(conversation, action, unread)
                    self._plan(agenda, brain.done(action, time.monotonic()))
        except OperationFailed:
            pass
        finally:
            agent.chats.pop(conversation, None)
            self.slots.release()

    def _plan(self, agenda: Agenda, actions: list[Action]) -> None:
        """File the brain's actions. ``typing`` frames are the session's
        (``reply`` types at the customers' pace before it sends), so a reply
        starts that long before the brain's moment, once the brain began typing."""
        for action in actions:
            if isinstance(action, Typing):
                continue
            if isinstance(action, Send):
                lead = self.agent.pacing.typing_time(action.text)
                agenda.add(action, at=max(action.typing_from, action.at - lead))
            else:
                agenda.add(action)

    def _next_message(self, conversation: str, until: float | None) -> tuple[bool, Frame | None]:
        """Wait for the chat's next customer message, until ``until`` (a
        ``time.monotonic()``; ``None``: as long as a wait may take, a silent
        customer is then a failure). ``(True, None)`` once the chat is closed,
        ``(False, None)`` when ``until`` came first."""
        if until is None:
            frame = self.agent.wait_for_customer_message(conversation)
            return frame is None, frame
        remaining = until - time.monotonic()
        if remaining <= _EARLY:
            return False, None
        with gevent.Timeout(remaining, False):  # the session's own timeout would be a failure: it comes later
            frame = self.agent.wait_for_customer_message(conversation, timeout=remaining + 1.0)
            return frame is None, frame
        return False, None

    def _act(self, conversation: str, action: Action, unread: dict[str, Frame]) -> None:
        agent = self.agent
        if isinstance(action, Read):
            frame = unread.pop(action.message_id, None)
            if frame is not None:
                agent.read(conversation, frame)
        elif isinstance(action, Send):
            agent.reply(conversation, action.text)
        elif isinstance(action, PushCoupon | PushItems):
            # the coupon (the items) the brain chose: its answers may name that code
            conn = agent.conn
            if conn is not None:
                if isinstance(action, PushCoupon):
                    conn.send(agent.dialect.add_coupon(conversation, action.code))
                else:
                    conn.send(agent.dialect.add_items(conversation, action.items))
        elif isinstance(action, Close) and not agent.is_closed(conversation):
            agent.close_chat(conversation)
