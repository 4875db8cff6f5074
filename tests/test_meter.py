"""The sans-I/O KPI meter: fed frames and times, no sockets, no gevent, no clock.

Times are plain numbers (seconds, as the sessions' ``perf_counter()`` readings);
measurements come back through the recorder in milliseconds."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from simulator.load.meter import KPI, Arrival, DeliveryBoard, Meter, OperationFailed
from simulator.load.runner import UNTIMED
from simulator.load.sessions import KPI as SESSIONS_KPI
from simulator.protocol import (
    ConversationEventQueuePosition,
    ConversationMessage,
    ConversationMessageTransportStatus,
    Error,
    ErrorCode,
    EventType,
    Frame,
    FrameType,
    TransportStatus,
)

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    name: str
    ms: float | None
    length: int
    exception: BaseException | None


@dataclass
class Recorder:
    rows: list[Row] = field(default_factory=list)

    def __call__(self, name: str, response_time: float | None, *, length: int = 0,
                 exception: BaseException | None = None) -> None:
        self.rows.append(Row(name, response_time, length, exception))

    def named(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.name == name]

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.exception is not None]


def meter(role: str = "customer", *, timeout: float = 30.0,
          board: DeliveryBoard | None = None) -> tuple[Meter, Recorder]:
    rec = Recorder()
    return Meter(rec, role=role, timeout=timeout, board=board or DeliveryBoard()), rec


def message(cid: str | None = None, *, uuid: str | None = None, author: str | None = "arn:me",
            body: str = "hello") -> Frame:
    return Frame(type=FrameType.MESSAGE, conversation_uuid="c-1",
                 message=ConversationMessage(client_message_id=cid, conversation_message_uuid=uuid,
                                             author_conversation_participant_arn=author, body=body))


def updated(uuid: str, *statuses: TransportStatus) -> Frame:
    return Frame(type=FrameType.EVENT, event_type=EventType.UPDATED_MESSAGE, conversation_uuid="c-1",
                 event_updated_message=ConversationMessage(
                     conversation_message_uuid=uuid,
                     transport_statuses=[ConversationMessageTransportStatus(status=s) for s in statuses]))


def position(n: int) -> Frame:
    return Frame(type=FrameType.EVENT, event_type=EventType.QUEUE_POSITION, conversation_uuid="c-1",
                 event_queue_position=ConversationEventQueuePosition(position=n, available=True))


def error(code: str | None, *, object_id: str | None = None, text: str = "refused") -> Frame:
    return Frame(type=FrameType.EVENT, error=Error(error_code=code, object_id=object_id, user_message=text))


# Acknowledgements and read receipts ------------------------------------------------


def test_an_ack_is_timed_on_arrival_from_when_the_message_was_sent() -> None:
    m, rec = meter()
    m.sent(KPI.MESSAGE_ACK, "m1", 10.0)
    assert m.awaiting(KPI.MESSAGE_ACK, "m1")
    assert m.received(message("m1", uuid="u1", body="four"), 10.25) is Arrival.ACK
    (row,) = rec.rows
    assert (row.name, row.ms, row.length, row.exception) == (KPI.MESSAGE_ACK, pytest.approx(250.0), 4, None)
    assert not m.awaiting(KPI.MESSAGE_ACK, "m1")
    # the same message again (e.g. replayed) is not a second ack
    assert m.received(message("m1", uuid="u1"), 11.0) is Arrival.OTHER
    assert len(rec.rows) == 1


def test_messages_that_are_not_ours_are_not_acks() -> None:
    m, rec = meter()
    m.sent(KPI.MESSAGE_ACK, "m1", 1.0)
    assert m.received(message("other", author="arn:agent"), 1.1) is Arrival.OTHER
    assert m.received(message(None, author="arn:agent"), 1.2) is Arrival.OTHER
    assert rec.rows == []
    assert m.awaiting(KPI.MESSAGE_ACK, "m1")


def test_a_read_receipt_is_timed_from_the_send_of_the_message_read() -> None:
    m, rec = meter()
    m.sent(KPI.MESSAGE_ACK, "m1", 5.0)
    m.received(message("m1", uuid="u1"), 5.1)
    assert m.awaiting(KPI.READ_RECEIPT, "u1")
    assert m.received(updated("u1", TransportStatus.SENT), 5.2) is Arrival.OTHER  # sent is not read
    assert m.received(updated("nope", TransportStatus.READ), 5.3) is Arrival.OTHER  # not one of ours
    assert m.received(updated("u1", TransportStatus.SENT, TransportStatus.READ), 6.5) is Arrival.RECEIPT
    (receipt,) = rec.named(KPI.READ_RECEIPT)
    assert receipt.ms == pytest.approx(1500.0) and receipt.exception is None
    assert m.received(updated("u1", TransportStatus.READ), 7.0) is Arrival.OTHER  # counted once
    assert len(rec.named(KPI.READ_RECEIPT)) == 1


def test_a_refused_message_is_an_ack_failure_with_the_servers_reason() -> None:
    m, rec = meter()
    m.sent(KPI.MESSAGE_ACK, "m1", 2.0)
    frame = error(ErrorCode.MESSAGE_TOO_LONG, object_id="m1", text="message is too long")
    assert m.received(frame, 2.5) is Arrival.REFUSED
    (failure,) = rec.failures
    assert failure.name == KPI.MESSAGE_ACK and failure.ms == pytest.approx(500.0)
    assert isinstance(failure.exception, OperationFailed)
    assert repr(failure.exception) == "message_too_long: message is too long"
    m.expire(100.0, final=True)  # reported once, not again as missing
    assert len(rec.failures) == 1


def test_any_other_server_error_is_an_untimed_failure_that_groups() -> None:
    m, rec = meter()
    frame = error(ErrorCode.NOT_A_PARTICIPANT, text="not in 1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert m.received(frame, 1.0) is Arrival.ERROR
    (failure,) = rec.failures
    assert failure.name == KPI.SERVER_ERROR and failure.ms is None
    assert repr(failure.exception) == "not_a_participant: not in <uuid>"


def test_races_and_closed_chats_are_not_failures() -> None:
    m, rec = meter("agent")
    m.sent(KPI.MESSAGE_ACK, "m1", 1.0)
    assert m.received(error(ErrorCode.ALREADY_ENGAGED, object_id="q-1"), 1.1) is Arrival.RACE
    assert m.received(error(ErrorCode.QUEUE_ENTRY_NOT_FOUND, object_id="q-2"), 1.2) is Arrival.RACE
    assert m.received(error("already_engaged"), 1.3) is Arrival.RACE  # the code as the server sends it: a string
    # refused because the peer closed the chat meanwhile: a race with the peer, even for a pending message
    assert m.received(error(ErrorCode.CONVERSATION_CLOSED, object_id="m1"), 1.4) is Arrival.CLOSED
    assert rec.rows == []
    assert m.awaiting(KPI.MESSAGE_ACK, "m1")  # the session decides: it cancels them when the chat is closed
    m.cancel(KPI.MESSAGE_ACK)
    m.expire(100.0, final=True)
    assert rec.rows == []


# Expiry ---------------------------------------------------------------------------------


def test_an_ack_that_does_not_come_within_the_timeout_expires_as_a_failure() -> None:
    m, rec = meter(timeout=5.0)
    m.sent(KPI.MESSAGE_ACK, "old", 0.0)
    m.sent(KPI.MESSAGE_ACK, "new", 3.0)
    m.expire(4.0)
    assert rec.rows == []  # nothing is late yet
    m.expire(6.0)
    (failure,) = rec.failures
    assert failure.name == KPI.MESSAGE_ACK and failure.ms == pytest.approx(6000.0)
    assert repr(failure.exception) == "no acknowledgement of a message within 5 s"
    assert not m.awaiting(KPI.MESSAGE_ACK, "old") and m.awaiting(KPI.MESSAGE_ACK, "new")
    # an ack that comes after its expiry is not counted as well
    assert m.received(message("old"), 6.5) is Arrival.OTHER
    assert len(rec.rows) == 1
    m.expire(6.5)
    assert len(rec.rows) == 1  # "new" is not late yet either


def test_the_final_expiry_reports_every_pending_ack_and_forgets_read_receipts() -> None:
    m, rec = meter(timeout=30.0)
    m.sent(KPI.MESSAGE_ACK, "m1", 1.0)
    m.received(message("m1", uuid="u1"), 1.1)  # a read receipt pending: not owed
    m.sent(KPI.MESSAGE_ACK, "m2", 2.0)
    m.expire(2.5, final=True)
    (failure,) = rec.failures
    assert failure.ms == pytest.approx(500.0)
    assert repr(failure.exception) == "no acknowledgement of a message before the session ended"
    assert not m.awaiting(KPI.READ_RECEIPT, "u1")
    assert m.received(updated("u1", TransportStatus.READ), 3.0) is Arrival.OTHER
    assert len(rec.rows) == 2  # the ack of m1 and the failure of m2


def test_read_receipts_are_forgotten_after_the_timeout_without_a_failure() -> None:
    m, rec = meter(timeout=5.0)
    m.sent(KPI.MESSAGE_ACK, "m1", 0.0)
    m.received(message("m1", uuid="u1"), 0.1)
    m.expire(10.0)
    assert not m.awaiting(KPI.READ_RECEIPT, "u1")
    assert rec.failures == []


def test_cancelled_acks_are_not_reported() -> None:
    m, rec = meter(timeout=1.0)
    m.sent(KPI.MESSAGE_ACK, "m1", 0.0)
    m.sent(KPI.MESSAGE_ACK, "m2", 0.0)
    m.cancel(KPI.MESSAGE_ACK, "m1")
    m.cancel(KPI.MESSAGE_ACK, "never sent")
    m.expire(5.0)
    assert [repr(f.exception) for f in rec.failures] == ["no acknowledgement of a message within 1 s"]


# Queue, first reply, delivery --------------------------------------------------------------


def test_queue_wait_is_timed_from_the_start_of_the_chat_to_the_agent_joining() -> None:
    m, rec = meter()
    m.joined(1.0)  # no chat started: nothing to time
    assert rec.rows == []
    m.sent(KPI.QUEUE_WAIT, None, 10.0)
    m.joined(12.0)
    (row,) = rec.rows
    assert (row.name, row.ms, row.exception) == (KPI.QUEUE_WAIT, pytest.approx(2000.0), None)


def test_an_abandon_is_timed_from_the_start_of_the_chat() -> None:
    m, rec = meter()
    m.abandoned(1.0)
    assert rec.rows == []
    m.sent(KPI.QUEUE_WAIT, None, 3.0)
    m.abandoned(3.75)
    (row,) = rec.rows
    assert (row.name, row.ms) == (KPI.ABANDON, pytest.approx(750.0))


def test_position_checks_are_answered_in_order_and_pushes_are_not_answers() -> None:
    m, rec = meter()
    assert m.received(position(3), 1.0) is Arrival.OTHER  # a push nobody asked for
    m.sent(KPI.CHECK_QUEUE_POSITION, None, 2.0)
    m.sent(KPI.CHECK_QUEUE_POSITION, None, 2.5)
    assert m.received(position(2), 2.1) is Arrival.ANSWER
    assert m.received(position(2), 2.7) is Arrival.ANSWER
    assert m.received(position(1), 3.0) is Arrival.OTHER
    assert [r.ms for r in rec.named(KPI.CHECK_QUEUE_POSITION)] == [pytest.approx(100.0), pytest.approx(200.0)]


def test_the_first_reply_is_timed_from_the_question_once() -> None:
    m, rec = meter()
    m.replied(0.5)  # nothing asked yet
    m.sent(KPI.FIRST_REPLY, None, 1.0)  # the question, with the start of the chat
    m.sent(KPI.MESSAGE_ACK, "m1", 2.0)  # a later message does not move the clock
    m.replied(4.0)
    m.replied(5.0)
    (row,) = rec.named(KPI.FIRST_REPLY)
    assert row.ms == pytest.approx(3000.0)


def test_without_a_question_the_first_customer_message_starts_the_first_reply_clock() -> None:
    m, rec = meter()
    m.sent(KPI.MESSAGE_ACK, "m1", 2.0)
    m.sent(KPI.MESSAGE_ACK, "m2", 3.0)
    m.replied(2.5)
    (row,) = rec.named(KPI.FIRST_REPLY)
    assert row.ms == pytest.approx(500.0)


def test_an_agents_messages_start_no_first_reply_clock() -> None:
    m, rec = meter("agent")
    m.sent(KPI.MESSAGE_ACK, "a1", 1.0)
    m.replied(2.0)
    assert rec.named(KPI.FIRST_REPLY) == []


def test_message_delivery_is_timed_across_sessions_through_the_board() -> None:
    board = DeliveryBoard()
    customer, customer_rec = meter("customer", board=board)
    agent, agent_rec = meter("agent", board=board)
    customer.sent(KPI.MESSAGE_ACK, "m1", 1.0)
    # the agent's own message is an ack, not a delivery
    agent.sent(KPI.MESSAGE_ACK, "a1", 1.1)
    assert agent.received(message("a1", author="arn:agent"), 1.2) is Arrival.ACK
    assert agent.received(message("m1", author="arn:customer"), 1.3) is Arrival.DELIVERY
    assert agent.received(message("m1", author="arn:customer"), 1.4) is Arrival.OTHER  # once
    (delivery,) = agent_rec.named(KPI.MESSAGE_DELIVERY)
    assert delivery.ms == pytest.approx(300.0)
    # a customer does not time deliveries (what it receives was not sent by a customer)
    board.sent("x", 1.0)
    assert customer.received(message("x", author="arn:agent"), 2.0) is Arrival.OTHER
    assert customer_rec.rows == []


# Operations the session times, argument checks ------------------------------------------------


def test_verbs_timed_by_the_session_and_failures_it_reports() -> None:
    m, rec = meter()
    m.timed(KPI.CONNECT, 1.0, 1.08)
    m.counted(KPI.RRWEB, length=4096)
    m.invalid("event_queue_position.position: expected integer", 57)
    error_timed = m.failed(KPI.START_CHAT, "timed out after 0.5 s waiting for new conversation", 2.0, 2.5)
    error_untimed = m.failed(KPI.QUEUE_POSITION, "position went up while waiting")
    assert [(r.name, r.ms, r.length) for r in rec.rows] == [
        (KPI.CONNECT, pytest.approx(80.0), 0),
        (KPI.RRWEB, None, 4096),
        (KPI.INVALID_FRAME, None, 57),
        (KPI.START_CHAT, pytest.approx(500.0), 0),
        (KPI.QUEUE_POSITION, None, 0),
    ]
    assert rec.rows[3].exception is error_timed and rec.rows[4].exception is error_untimed
    assert str(error_untimed) == "queue position: position went up while waiting"
    with pytest.raises(ValueError, match="ended"):
        m.failed(KPI.PING, "lost", 1.0)


def test_the_meter_refuses_what_it_cannot_time() -> None:
    m, _ = meter()
    with pytest.raises(ValueError, match="client_message_id"):
        m.sent(KPI.MESSAGE_ACK, None, 1.0)
    with pytest.raises(ValueError, match="connect"):
        m.sent(KPI.CONNECT, None, 1.0)
    with pytest.raises(ValueError, match="not keyed"):
        m.awaiting(KPI.QUEUE_WAIT, None)
    with pytest.raises(ValueError, match="cannot be cancelled"):
        m.cancel(KPI.READ_RECEIPT)


# One enum --------------------------------------------------------------------------------------


def test_one_kpi_enum_names_every_row_the_scenarios_and_the_summary_use() -> None:
    assert SESSIONS_KPI is KPI
    assert (KPI.MESSAGE_LOST, KPI.QUEUE_POSITION, KPI.REPLY_LANGUAGE) == (
        "message lost", "queue position", "reply language")
    assert all(isinstance(name, KPI) for name in UNTIMED)
    scenarios = "".join(p.read_text() for p in (ROOT / "scenarios").glob("*.py"))
    assert "report_failure(KPI." in scenarios and 'report_failure("' not in scenarios


def test_the_meter_is_sans_io() -> None:
    code = ("import sys, simulator.load.meter\n"
            "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('gevent', 'websockets', 'locust')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          check=True)
    assert proc.stdout.strip() == ""


def test_a_message_whose_send_failed_owes_no_acknowledgement() -> None:
    """A message the connection could not send (it broke first) is the broken
    connection's failure, reported once as such: not also a missing ack when the
    session ends (seen as a flaky ``no acknowledgement … before the session ended``
    beside the 1006 failures of ``load --fault disconnect``)."""
    import random

    from simulator.fake import ChatFaker
    from simulator.load.sessions import CustomerSession, Pacing
    from simulator.load.transport import ConnectionClosedError

    class BrokenConnection:
        closed = True

        def send(self, frame: object) -> None:
            raise ConnectionClosedError(1006, "")

    rec = Recorder()
    customer = CustomerSession(
        "ws://127.0.0.1:9/ws", record=rec, faker=ChatFaker(1), rng=random.Random(1), pacing=Pacing.of("none")
    )
    customer.conn = BrokenConnection()  # type: ignore[assignment]
    customer.conversation_uuid = "c-1"
    with pytest.raises(ConnectionClosedError):
        customer.say("hello", wait_ack=False)
    assert not customer.meter.acks_pending()
    customer.expire_pending(final=True)
    assert rec.failures == []
