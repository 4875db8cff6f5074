"""Load-generator sessions and every scenario script, in this (gevent, not
monkey-patched) process against the mock server in another process; bad
backends from tests/_ws_server.py."""

from __future__ import annotations

import pickle
import random
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import pytest

from simulator.fake import ChatFaker
from simulator.load.runner import MockProcess
from simulator.load.scenario import available_scenarios, load_scenario, parse_mix
from simulator.load.sessions import (
    KPI,
    AgentSession,
    Backoff,
    CustomerSession,
    OperationFailed,
    Pacing,
    SessionStateError,
)
from simulator.load.transport import WaitTimeout
from simulator.protocol import ConversationEventQueuePosition, EventType, Frame, FrameType

pytestmark = pytest.mark.timeout(90)

MOCK_ARGS = ["--agents", "4", "--pace", "fast", "--seed", "3", "--rate", "1000", "--burst", "2000",
             "--exchanges", "8-12", "--coupon-probability", "1", "--item-probability", "1",
             "--reconnect-grace", "5"]


@dataclass
class Recorded:
    name: str
    ms: float | None
    exception: BaseException | None


@dataclass
class Recorder:
    rows: list[Recorded] = field(default_factory=list)

    def __call__(self, name: str, response_time: float | None, *, length: int = 0,
                 exception: BaseException | None = None) -> None:
        assert response_time is None or response_time >= 0
        self.rows.append(Recorded(name, response_time, exception))

    def count(self, name: str) -> int:
        return sum(1 for r in self.rows if r.name == name and r.exception is None)

    @property
    def failures(self) -> list[Recorded]:
        return [r for r in self.rows if r.exception is not None]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    server = MockProcess(MOCK_ARGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def manual_mock() -> Iterator[MockProcess]:
    server = MockProcess(["--agents", "0", "--routing", "manual", "--rate", "1000", "--burst", "2000",
                          "--reconnect-grace", "5"])
    try:
        yield server
    finally:
        server.stop()


def customer(host: str, rec: Recorder, seed: int, timeout: float = 10.0) -> CustomerSession:
    return CustomerSession(host, record=rec, faker=ChatFaker(seed), rng=random.Random(seed),
                           pacing=Pacing.of("fast"), timeout=timeout)


def agent(host: str, rec: Recorder, seed: int, **kw: object) -> AgentSession:
    return AgentSession(host, record=rec, faker=ChatFaker(seed), rng=random.Random(seed),
                        pacing=Pacing.of("fast"), timeout=10.0, **kw)  # type: ignore[arg-type]


def engaged_pair(host: str, rec: Recorder, seed: int, *, timeout: float = 10.0,
                 question: str | None = None) -> tuple[AgentSession, CustomerSession, str]:
    """A manual-routing agent that engaged a customer who started a chat."""
    ag = agent(host, rec, seed, manual=True)
    ag.connect()
    cu = customer(host, rec, seed + 1, timeout=timeout)
    cu.connect()
    cu.start_chat(question=question)
    conversation = ag.take_chat()
    return ag, cu, conversation


EXPECTED_KPIS = {
    "happy_path": {KPI.CONNECT, KPI.START_CHAT, KPI.CHECK_QUEUE_POSITION, KPI.QUEUE_WAIT, KPI.FIRST_REPLY,
                   KPI.MESSAGE_ACK, KPI.READ_RECEIPT, KPI.CLOSE},
    "abandon": {KPI.CONNECT, KPI.START_CHAT, KPI.CHECK_QUEUE_POSITION},
    "rush_hour": {KPI.CONNECT, KPI.START_CHAT, KPI.CHECK_QUEUE_POSITION, KPI.QUEUE_WAIT, KPI.MESSAGE_ACK},
    "shopping_assist": {KPI.CONNECT, KPI.START_CHAT, KPI.QUEUE_WAIT, KPI.FIRST_REPLY, KPI.MESSAGE_ACK},
    "rrweb_session": {KPI.CONNECT, KPI.START_CHAT, KPI.QUEUE_WAIT, KPI.RRWEB, KPI.MESSAGE_ACK},
    "reconnect": {KPI.CONNECT, KPI.START_CHAT, KPI.QUEUE_WAIT, KPI.RECONNECT, KPI.PING, KPI.MESSAGE_ACK},
    "long_chat": {KPI.CONNECT, KPI.START_CHAT, KPI.QUEUE_WAIT, KPI.FIRST_REPLY, KPI.MESSAGE_ACK, KPI.READ_RECEIPT},
    "multilingual": {KPI.CONNECT, KPI.START_CHAT, KPI.QUEUE_WAIT, KPI.FIRST_REPLY, KPI.MESSAGE_ACK},
}


def test_every_shipped_scenario_is_covered_and_documented() -> None:
    names = available_scenarios()
    assert set(names) == set(EXPECTED_KPIS)
    for name in names:
        assert len(load_scenario(name).doc) > 80, f"{name} needs a docstring saying what it exercises"


@pytest.fixture(autouse=True)
def _fresh_loop_time() -> None:
    """libev caches the loop's time: after a minute of blocking tests in this
    thread it is stale, and a timeout armed from it would fire at once."""
    gevent.get_hub().loop.update_now()


@pytest.mark.parametrize("name", sorted(EXPECTED_KPIS))
def test_scenario_runs_against_the_mock_with_kpis_and_no_failures(mock: MockProcess, name: str) -> None:
    scenario = load_scenario(name)
    rec = Recorder()
    sessions = [customer(mock.url, rec, seed) for seed in range(4)]
    jobs = [gevent.spawn(scenario.run, s) for s in sessions]
    gevent.joinall(jobs, timeout=60, raise_error=True)
    assert all(j.dead for j in jobs), "scenario did not finish in time"
    for s in sessions:
        s.expire_pending(final=True)
        s.disconnect()
    assert not rec.failures, [(f.name, str(f.exception)) for f in rec.failures]
    for kpi in EXPECTED_KPIS[name]:
        assert rec.count(kpi) > 0, f"{name}: no {kpi}"
    if name == "multilingual":
        assert {s.language for s in sessions} <= {"es", "fr", "de"}
    if name == "shopping_assist":
        assert any(s.pushed for s in sessions), "the agents pushed no coupon or item"


def test_mix_parsing_and_errors() -> None:
    mix = parse_mix("happy_path:3, abandon")
    assert [(s.name, s.weight) for s in mix] == [("happy_path", 3), ("abandon", 1)]
    with pytest.raises(Exception, match="unknown scenario"):
        parse_mix("nope")
    with pytest.raises(Exception, match="positive weight"):
        parse_mix("happy_path:0")


def test_agent_session_with_manual_routing_and_message_delivery(manual_mock: MockProcess) -> None:
    rec = Recorder()
    ag, cu, conversation = engaged_pair(manual_mock.url, rec, 1)
    assert conversation == cu.conversation_uuid
    assert cu.wait_for_agent()
    first = ag.wait_for_customer_message(conversation)  # the question
    assert first is not None and first.message is not None
    cu.say("Is anybody there?")
    msg = ag.wait_for_customer_message(conversation)
    assert msg is not None and msg.message is not None and msg.message.body == "Is anybody there?"
    ag.read(conversation, msg)
    ag.reply(conversation, "Yes, hello!")
    reply = cu.wait_for_reply()
    assert reply is not None and reply.message is not None and reply.message.body == "Yes, hello!"
    cu.read(message=reply)
    ag.push_coupon(conversation)
    ag.close_chat(conversation)
    cu.wait_for_close()
    gevent.sleep(0.05)  # let the last read receipt travel (pacing of the check, not a wait for an event)
    assert rec.count(KPI.MESSAGE_DELIVERY) >= 1
    assert rec.count(KPI.TAKE_CHAT) == 1
    assert rec.count(KPI.FIRST_REPLY) == 1
    assert rec.count(KPI.READ_RECEIPT) >= 1
    assert any(f.event_add_coupon is not None for f in cu.pushed)
    assert not rec.failures, [(f.name, str(f.exception)) for f in rec.failures]
    ag.disconnect()
    cu.disconnect()


def test_reconnect_replays_what_was_sent_while_away(manual_mock: MockProcess) -> None:
    rec = Recorder()
    ag, cu, conversation = engaged_pair(manual_mock.url, rec, 5)
    cu.wait_for_agent()
    cu.say("before the drop")
    seen_before = set(cu.messages)
    cu.disconnect()
    ag.reply(conversation, "sent while you were away 1")
    ag.reply(conversation, "sent while you were away 2")
    replayed = cu.reconnect()
    bodies = {f.message.body for f in replayed if f.message is not None}
    assert {"sent while you were away 1", "sent while you were away 2"} <= bodies
    assert not (set(cu.messages) - seen_before) - {f.message.conversation_message_uuid for f in replayed
                                                    if f.message is not None}
    cu.say("after the resume")
    got = ag.wait_for_customer_message(conversation)
    while got is not None and got.message is not None and got.message.body != "after the resume":
        got = ag.wait_for_customer_message(conversation)
    assert got is not None
    assert not rec.failures, [(f.name, str(f.exception)) for f in rec.failures]
    ag.disconnect()
    cu.disconnect()


def test_an_agent_reconnecting_within_the_grace_presents_its_secret_and_keeps_its_chat(
    manual_mock: MockProcess,
) -> None:
    rec = Recorder()
    ag, cu, conversation = engaged_pair(manual_mock.url, rec, 9)
    cu.wait_for_agent()
    assert ag.resume_token  # from the first frames of its connection
    ag.disconnect()
    ag.connect()  # within the reconnect grace: the name is still held, the secret resumes it
    cu.say("are you back?")
    got = ag.wait_for_customer_message(conversation)
    while got is not None and got.message is not None and got.message.body != "are you back?":
        got = ag.wait_for_customer_message(conversation)  # the chat's earlier messages, replayed first
    assert got is not None
    assert not rec.failures, [(f.name, str(f.exception)) for f in rec.failures]
    intruder_rec = Recorder()
    intruder = agent(manual_mock.url, intruder_rec, 10, name=ag.name, manual=True)
    intruder.connect()  # the name without its secret: refused
    refusal = intruder._wait(KPI.CONNECT, lambda f: f.error is not None, 5.0, "the refusal")
    assert refusal.error is not None and refusal.error.error_code == "identity_in_use"
    assert intruder.connect_ok is False  # the Locust user backs off before trying again
    assert [f.name for f in intruder_rec.failures] == [KPI.SERVER_ERROR]
    intruder.disconnect()
    ag.disconnect()
    cu.disconnect()


def test_a_reply_that_arrived_just_before_a_drop_is_still_waited_for_after_the_resume(
    manual_mock: MockProcess,
) -> None:
    rec = Recorder()
    ag, cu, conversation = engaged_pair(manual_mock.url, rec, 15)  # its own seed: a held agent name is refused
    cu.wait_for_agent()
    cu.say("anyone there?")
    ag.reply(conversation, "just before the drop")  # acknowledged: the server has sent it to the customer too
    cu.ping()  # answered after the reply on the same connection: the reply is in, nobody took it yet
    cu.disconnect()
    cu.reconnect()  # since: the reply's epoch, so the server does not send it again
    reply = cu.wait_for_reply(timeout=2.0)
    assert reply is not None and reply.message is not None and reply.message.body == "just before the drop"
    assert not rec.failures, [(f.name, str(f.exception)) for f in rec.failures]
    ag.disconnect()
    cu.disconnect()


# Bad backends ------------------------------------------------------------------

SERVER_SCRIPT = Path(__file__).with_name("_ws_server.py")


@pytest.fixture(scope="module")
def bad_backend() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), "--lifetime", "120"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the test server did not start"
        words = proc.stdout.readline().split()
        yield f"ws://127.0.0.1:{words[1]}"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_a_server_that_never_answers_gives_a_clear_failure_not_a_hang(bad_backend: str) -> None:
    rec = Recorder()
    cu = customer(bad_backend + "/silent", rec, 1, timeout=0.5)
    cu.connect()
    with gevent.Timeout(5), pytest.raises(OperationFailed, match="new conversation"):
        cu.start_chat()
    (failure,) = rec.failures
    assert failure.name == KPI.START_CHAT
    assert "timed out after 0.5 s waiting for new conversation" in str(failure.exception)
    assert failure.ms is not None and failure.ms >= 500
    cu.disconnect()


def test_an_invalid_frame_is_a_failure_with_its_reason_and_the_session_goes_on(bad_backend: str) -> None:
    rec = Recorder()
    cu = customer(bad_backend + "/chat", rec, 1, timeout=5)
    cu.connect()
    cu.conversation_uuid = "c-1"
    with gevent.Timeout(10):
        cu.say("bad")  # the scripted server sends an invalid frame, then the acknowledgement
    invalid = [f for f in rec.failures if f.name == KPI.INVALID_FRAME]
    assert len(invalid) == 1
    assert 'event_queue_position.position: expected integer, got string "2"' in str(invalid[0].exception)
    assert rec.count(KPI.MESSAGE_ACK) == 1
    cu.disconnect()


def test_a_server_closing_mid_wait_fails_promptly(bad_backend: str) -> None:
    rec = Recorder()
    cu = customer(bad_backend + "/chat", rec, 1, timeout=30)
    cu.connect()
    cu.conversation_uuid = "c-1"
    with gevent.Timeout(5), pytest.raises(OperationFailed, match="1011"):
        cu.say("close 1011 going down")
    assert rec.failures[0].name == KPI.MESSAGE_ACK
    cu.disconnect()


def test_replies_are_matched_to_the_message_they_answer(manual_mock: MockProcess) -> None:
    rec = Recorder()
    ag, cu, conversation = engaged_pair(manual_mock.url, rec, 11, question="Where is my parcel?")
    cu.wait_for_agent()
    ag.reply(conversation, "answer to the question")  # written before the customer's next message
    cu.say("and my refund?")
    ag.wait_for_customer_message(conversation)
    ag.reply(conversation, "answer to the refund")
    reply = cu.wait_for_reply()
    assert reply is not None and reply.message is not None
    assert reply.message.body == "answer to the refund"
    # first reply is timed from the question (the first customer message)
    (first,) = [r for r in rec.rows if r.name == KPI.FIRST_REPLY]
    assert first.ms is not None and first.exception is None
    ag.disconnect()
    cu.disconnect()


def test_a_refused_message_fails_at_once_with_the_servers_reason(manual_mock: MockProcess) -> None:
    rec = Recorder()
    cu = customer(manual_mock.url, rec, 13, timeout=20)
    cu.connect()
    cu.start_chat()
    with gevent.Timeout(5), pytest.raises(OperationFailed, match="message_too_long"):
        cu.say("x" * 20_000)
    failures = [f for f in rec.failures if f.name == KPI.MESSAGE_ACK]
    assert len(failures) == 1
    assert "message_too_long" in str(failures[0].exception)
    cu.expire_pending(final=True)
    assert len(rec.failures) == 1  # not counted twice
    cu.disconnect()


def test_a_chat_closed_by_the_agent_mid_exchange_ends_the_exchange_at_once(manual_mock: MockProcess) -> None:
    rec = Recorder()
    ag, cu, conversation = engaged_pair(manual_mock.url, rec, 21, timeout=20)
    cu.wait_for_agent()
    ag.close_chat(conversation)
    with gevent.Timeout(3):  # not the 20 s wait timeout
        cu.say("are you still there?")  # refused (closed) or acked before the close arrived
        assert cu.wait_for_reply() is None
        assert cu.exchange() is None
    assert cu.closed
    assert not rec.failures, [(f.name, str(f.exception)) for f in rec.failures]
    ag.disconnect()
    cu.disconnect()


# Connect backoff, failure reasons that group ------------------------------------


@pytest.mark.timeout(10)
def test_backoff_doubles_with_equal_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 10.0, random.Random(1))
    steps = [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    delays = [backoff.next_delay() for _ in steps]
    for delay, step in zip(delays, steps, strict=True):
        assert step / 2 <= delay <= step  # half fixed, half jitter: never zero, never above the step
    assert backoff.failures == len(steps)
    backoff.reset()
    assert backoff.failures == 0
    assert 0.25 <= backoff.next_delay() <= 0.5  # after a success the first wait is short again
    # the same seed gives the same waits; another seed other waits
    again = Backoff(0.5, 10.0, random.Random(1))
    assert [again.next_delay() for _ in steps] == delays
    other = Backoff(0.5, 10.0, random.Random(2))
    assert [other.next_delay() for _ in steps] != delays


@pytest.mark.timeout(10)
def test_backoff_stays_at_its_cap_after_very_many_failures_and_checks_its_arguments() -> None:
    backoff = Backoff(0.5, 10.0, random.Random(3))
    backoff.failures = 10_000  # 2.0 ** 10_000 would overflow
    assert 5.0 <= backoff.next_delay() <= 10.0
    for base, cap, factor in ((0.0, 1.0, 2.0), (2.0, 1.0, 2.0), (0.5, 10.0, 0.5)):
        with pytest.raises(ValueError, match=r"base|factor"):
            Backoff(base, cap, factor=factor)


@pytest.mark.timeout(10)
def test_operation_failed_shows_its_reason_alone_to_locust() -> None:
    # Locust shows repr(exception) (StatsError.parse_error): the failures CSV, table and web UI
    # (not imported here: importing locust monkey-patches this process)
    error = OperationFailed(KPI.CONNECT, "nothing answered at ws://127.0.0.1:9/ws (connection refused)")
    assert repr(error) == "nothing answered at ws://127.0.0.1:9/ws (connection refused)"
    assert str(error) == "connect: nothing answered at ws://127.0.0.1:9/ws (connection refused)"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.name, copy.reason) == (error.name, error.reason)
    scrubbed = OperationFailed(KPI.SERVER_ERROR, "no customer 1b4e28ba-2fa1-11d2-883f-0016d3cca427 for ann@example.com")
    assert repr(scrubbed) == "no customer <uuid> for <email>"


@pytest.mark.timeout(30)
def test_a_failed_connect_names_the_url_without_the_customers_name_or_email() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rec = Recorder()
    cu = customer(f"ws://127.0.0.1:{port}", rec, 1)
    assert cu.connect_ok is None
    with pytest.raises(OperationFailed):
        cu.connect()
    assert cu.connect_ok is False
    (failure,) = rec.failures
    assert failure.name == KPI.CONNECT
    assert isinstance(failure.exception, OperationFailed)
    assert repr(failure.exception) == f"nothing answered at ws://127.0.0.1:{port}/ws (connection refused)"
    assert cu.persona.email not in str(failure.exception)


class ScriptedConnection:
    """Just enough of a Connection for one verb: ``send`` makes the scripted
    answer arrive (through the session's receive hook), ``wait_for`` finds it."""

    def __init__(self, session: CustomerSession, answer: Frame) -> None:
        self.session = session
        self.answer = answer
        self.arrived: list[Frame] = []
        self.closed = False

    def send(self, frame: Frame) -> None:
        if self.session._on_frame(self.answer, time.perf_counter()):
            self.arrived.append(self.answer)

    def wait_for(self, predicate: Callable[[Frame], bool], timeout: float, *, description: str = "") -> Frame:
        for frame in self.arrived:
            if predicate(frame):
                return frame
        raise WaitTimeout(description, timeout)

    def close(self) -> None:
        self.closed = True


@pytest.mark.timeout(10)
def test_a_queue_position_answer_without_a_position_is_a_failure_not_an_assertion() -> None:
    rec = Recorder()
    cu = customer("ws://127.0.0.1:9", rec, 1)
    cu.conversation_uuid = "c-1"
    answer = Frame(type=FrameType.EVENT, event_type=EventType.QUEUE_POSITION, conversation_uuid="c-1",
                   event_queue_position=ConversationEventQueuePosition(available=True))
    cu.conn = ScriptedConnection(cu, answer)  # type: ignore[assignment]
    with pytest.raises(OperationFailed, match="queue position answer without a position"):
        cu.check_queue_position()
    assert [f.name for f in rec.failures] == [KPI.CHECK_QUEUE_POSITION]



@pytest.mark.timeout(10)
def test_verbs_called_out_of_order_raise_a_clear_error_and_report_nothing() -> None:
    rec = Recorder()
    cu = customer("ws://127.0.0.1:9", rec, 1)
    with pytest.raises(SessionStateError, match=r"connect\(\) first"):
        cu.start_chat()
    with pytest.raises(SessionStateError, match=r"connect\(\) first"):
        cu.ping()
    cu.conn = ScriptedConnection(cu, Frame(type=FrameType.PING))  # type: ignore[assignment]
    for verb in (cu.say, cu.check_queue_position, cu.close_chat, cu.send_context, cu.stream_recording):
        with pytest.raises(SessionStateError, match=r"start_chat\(\) first"):
            verb()
    with pytest.raises(TypeError, match="message="):
        cu.read()
    with pytest.raises(ValueError, match="chat message frame"):
        cu.read(message=Frame(type=FrameType.PING))
    ag = agent("ws://127.0.0.1:9", rec, 2)
    for call in (ag.take_chat, lambda: ag.push_coupon("c-1"), lambda: ag.close_chat("c-1")):
        with pytest.raises(SessionStateError, match="not connected"):
            call()
    assert issubclass(SessionStateError, RuntimeError)
    assert rec.rows == []  # a scenario's mistake is not a measurement


# A queue that cannot drain ---------------------------------------------------------


@pytest.fixture(scope="module")
def idle_mock() -> Iterator[MockProcess]:
    """Manual routing, nobody engages on their own; ``quiet`` never has an agent."""
    server = MockProcess(["--agents", "0", "--routing", "manual", "--queues", "support,quiet",
                          "--position-interval", "0.05", "--rate", "1000", "--burst", "2000"])
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(30)
def test_a_queue_without_agents_is_reported_as_such(idle_mock: MockProcess) -> None:
    rec = Recorder()
    cu = customer(idle_mock.url, rec, 31)
    cu.connect()
    cu.start_chat(queue="quiet")
    assert cu.check_queue_position() >= 1
    assert cu.agents_available is False
    with pytest.raises(OperationFailed):
        cu.wait_for_agent(timeout=0.3)
    (failure,) = rec.failures
    assert failure.name == KPI.QUEUE_WAIT
    assert repr(failure.exception) == "no agent available in queue quiet after 0.3 s"
    assert failure.ms is not None and failure.ms >= 300
    cu.disconnect()


@pytest.mark.timeout(30)
def test_a_queue_that_does_not_move_or_moves_slowly_is_reported_as_such(idle_mock: MockProcess) -> None:
    rec = Recorder()
    ag = agent(idle_mock.url, rec, 40, manual=True)  # logged in, so agents are available; engages only when told
    ag.connect()
    waiting = [customer(idle_mock.url, rec, 41 + n) for n in range(3)]
    for cu in waiting:
        cu.connect()
        cu.start_chat()
    first, second, third = waiting
    assert second.check_queue_position() == 2 and second.agents_available is True
    with pytest.raises(OperationFailed):
        second.wait_for_agent(timeout=0.3)
    assert [repr(f.exception) for f in rec.failures] == [
        "still queued in support after 0.3 s, position never went down (queue not draining)"
    ]
    rec.rows.clear()
    assert third.check_queue_position() == 3
    assert ag.take_chat() == first.conversation_uuid  # the queue moves by one: the third is second now
    first.wait_for_agent()
    with pytest.raises(OperationFailed):
        third.wait_for_agent(timeout=1.0)  # the push of its new position arrives meanwhile
    assert third.position == 2
    assert [repr(f.exception) for f in rec.failures] == [
        "still queued in support after 1 s, not at the front yet (queue draining slowly)"
    ]
    for cu in waiting:
        cu.disconnect()
    ag.disconnect()
