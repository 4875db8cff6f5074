"""The conversation engine without sockets: every row of docs/protocol.md,
section 3, the accept rules, errors, statistics, resume and grace periods.

Every frame the engine emits goes through :class:`Chat.deliver`, which checks
it against UltraCart's SDK models and our own codec, and that error frames go
to one connection only.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from typing import Any

import pytest

from simulator.errors import FrameError
from simulator.mock.conversation import State
from simulator.mock.engine import ERROR_CODES, Close, Engine, EngineConfig, Identity, Role, Routing
from simulator.mock.rules import RULES, STATE_REFUSALS
from simulator.protocol import (
    CONVERSATION_EVENTS,
    AgentStatus,
    ErrorCode,
    EventType,
    FrameType,
    Medium,
    MessageType,
    TransportStatus,
    decode,
    dts,
    encode,
)
from tests.engine_harness import (
    A1,
    A2,
    A3,
    C1,
    C2,
    C3,
    MS0,
    T0,
    Chat,
    engaged_pair,
    error_of,
    event,
    kinds,
    of,
    only,
    queue_uuid_of,
    resume_token,
    start_frame,
)
from tests.sdk import sdk_validate


def test_start_creates_conversation_enqueues_and_tells_the_queue() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.agent(A1)
    chat.connect(C1)
    chat.connect(C2)  # a bystander
    chat.send(
        C1,
        start_frame(
            conversation_participant_name="Ada",
            email="ada@example.com",
            question="Where is my order?",
            queue_name="support",
            participant_language_iso_code="fr",
        ),
    )
    frames = chat.take(C1)
    assert kinds(frames) == ["new conversation", "message", "queue position"]
    new, question, position = frames
    summary = new.event_new_conversation
    assert summary is not None
    assert new.model_extra is not None
    assert isinstance(new.model_extra["resume_token"], str)
    assert len(new.model_extra["resume_token"]) >= 32
    assert b'"resume_token"' in encode(new)
    assert summary.medium is Medium.WEBSOCKET
    assert summary.closed is False
    assert summary.visible is True
    assert summary.conversation_uuid == new.conversation_uuid
    assert summary.merchant_id == "DEMO"
    assert summary.conversation_arn == new.conversation_arn
    assert summary.conversation_arn is not None
    assert summary.conversation_arn.startswith("arn:aws:connect:")
    assert summary.start_dts == dts(MS0)
    assert summary.message_count == 1
    assert summary.last_conversation_message_body == "Where is my order?"
    assert summary.customer_first_message_unresponded_to_dts == dts(MS0)
    assert summary.participants is not None
    assert len(summary.participants) == 1
    (customer,) = summary.participants
    assert customer.conversation_participant_name == "Ada"
    assert customer.email == "ada@example.com"
    assert customer.language_iso_code == "fr"
    assert customer.status == "active"
    assert question.message is not None
    assert question.message.body == "Where is my order?"
    assert question.message.author_conversation_participant_arn == customer.conversation_participant_arn
    assert position.event_queue_position is not None
    assert position.event_queue_position.position == 1
    assert position.event_queue_position.available is True
    member = only(chat.take(A1), EventType.QUEUE_NEW_MEMBER).event_queue_new_member
    assert member is not None
    assert member.queue_name == "support"
    assert member.question == "Where is my order?"
    assert member.join_dts == dts(MS0)
    assert member.conversation_webchat_queue_uuid
    assert member.conversation_participant_arn == customer.conversation_participant_arn
    assert member.participant_language_iso_code == "fr"
    assert member.email == "ada@example.com"
    assert chat.take(C2) == []
    (update,) = chat.tick()
    assert update.recipients == (A1,)
    assert update.frame.event_queue_status_update is not None
    assert update.frame.event_queue_status_update.customer_waiting_count == 1


def test_start_in_a_named_queue_only_tells_that_queues_agents() -> None:
    chat = Chat(routing=Routing.MANUAL, queues=("support", "sales"))
    chat.agent(A1, queues=("support",))
    chat.agent(A2, queues=("sales",))
    chat.start(C1, queue_name="sales")
    assert chat.take(A1) == []
    assert of(chat.take(A2), EventType.QUEUE_NEW_MEMBER)


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (start_frame(queue_name="nope"), "unknown_queue"),
        ({"type": "event", "event_type": "webchat start conversation"}, "missing_field"),
        (start_frame(question="x" * 10_001), "message_too_long"),
    ],
)
def test_start_errors(wire: dict[str, Any], code: str) -> None:
    chat = Chat()
    chat.agent(A1)
    chat.connect(C1)
    chat.send(C1, wire)
    assert error_of(chat.take(C1)) == code
    assert chat.take(A1) == []
    assert chat.engine.status()["conversations"]["open"] == 0


def test_unknown_queue_error_names_the_queue() -> None:
    chat = Chat()
    chat.connect(C1)
    chat.send(C1, start_frame(queue_name="billing"))
    (frame,) = chat.take(C1)
    assert frame.error is not None
    assert frame.error.object_id == "billing"
    assert frame.error.developer_message is not None
    assert "billing" in frame.error.developer_message


def test_customer_open_conversation_limit() -> None:
    chat = Chat(max_open_conversations_per_customer=2, routing=Routing.MANUAL)
    chat.start(C1)
    chat.start(C1)
    chat.clear()
    chat.send(C1, start_frame(question="third"))
    assert error_of(chat.take(C1)) == "too_many_conversations"


# ---------------------------------------------------------------------------
# Row 2: queue position


def test_check_queue_position_counts_from_one_and_minus_one_when_not_queued() -> None:
    chat = Chat(routing=Routing.MANUAL)
    convs = [chat.start(c).conversation_uuid for c in (C1, C2, C3)]
    chat.clear()
    for conn, conv, expected in zip((C1, C2, C3), convs, (1, 2, 3), strict=True):
        chat.send(conn, {"type": "check queue position", "conversation_uuid": conv})
        position = only(chat.take(conn), EventType.QUEUE_POSITION).event_queue_position
        assert position is not None
        assert position.position == expected
        assert position.available is False
    chat.agent(A1)
    chat.engage(A1, queue_uuid_of(chat, C1))
    chat.clear()
    chat.send(C1, {"type": "check queue position", "conversation_uuid": convs[0]})
    position = only(chat.take(C1), EventType.QUEUE_POSITION).event_queue_position
    assert position is not None
    assert position.position == -1
    assert position.available is True
    chat.send(C3, {"type": "check queue position", "conversation_uuid": convs[2]})
    position = only(chat.take(C3), EventType.QUEUE_POSITION).event_queue_position
    assert position is not None
    assert position.position == 2
    assert position.available is True


def test_check_queue_position_of_someone_elses_conversation_is_refused() -> None:
    chat = Chat(routing=Routing.MANUAL)
    conv = chat.start(C1).conversation_uuid
    chat.connect(C2)
    chat.clear()
    chat.send(C2, {"type": "check queue position", "conversation_uuid": conv})
    assert error_of(chat.take(C2)) == "not_a_participant"
    chat.send(C2, {"type": "check queue position", "conversation_uuid": "no-such-conversation"})
    assert error_of(chat.take(C2)) == "not_a_participant"
    assert chat.take(C1) == []


def test_positions_are_pushed_when_customers_move_up() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.agent(A1)
    for conn in (C1, C2, C3):
        chat.start(conn)
    chat.tick(5)
    chat.clear()
    chat.engage(A1, queue_uuid_of(chat, C1))
    assert chat.take(C2) == []
    assert chat.take(C3) == []
    chat.tick()
    for conn, expected in ((C2, 1), (C3, 2)):
        position = only(chat.take(conn), EventType.QUEUE_POSITION).event_queue_position
        assert position is not None
        assert position.position == expected


def test_available_flag_is_pushed_when_the_first_agent_logs_in() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.start(C1)
    chat.tick(5)
    chat.clear()
    chat.agent(A1)
    chat.tick()
    position = only(chat.take(C1), EventType.QUEUE_POSITION).event_queue_position
    assert position is not None
    assert position.position == 1
    assert position.available is True


# ---------------------------------------------------------------------------
# Row 3: routing


def test_round_robin_assigns_agents_in_turn_and_skips_full_ones() -> None:
    chat = Chat(max_chats_per_agent=2)
    chat.agent(A1)
    chat.agent(A2)
    chat.clear()
    assigned = []
    for conn in (1, 2, 3, 4):
        chat.start(conn)
        join = only(chat.take(conn), EventType.PARTICIPANT_JOIN)
        agent = join.event_participant_join_participant
        assert agent is not None
        assigned.append(agent.conversation_participant_name)
    assert assigned == ["agent-11", "agent-12", "agent-11", "agent-12"]
    chat.clear()
    convs5 = chat.start(5).conversation_uuid  # everyone is full: waits
    assert not of(chat.take(5), EventType.PARTICIPANT_JOIN)
    frames = chat.agent(A3)  # a new agent takes the waiting customer at once
    assert of(chat.take(5), EventType.PARTICIPANT_JOIN)
    new = only(frames, EventType.NEW_CONVERSATION)
    assert new.conversation_uuid == convs5


def test_round_robin_assigns_the_next_waiting_customer_when_capacity_frees() -> None:
    chat = Chat(max_chats_per_agent=1)
    chat.agent(A1)
    first = chat.start(C1).conversation_uuid
    assert first is not None
    second = chat.start(C2).conversation_uuid
    chat.clear()
    chat.close(A1, first)
    assert only(chat.take(A1), EventType.NEW_CONVERSATION).conversation_uuid == second
    assert of(chat.take(C2), EventType.PARTICIPANT_JOIN)


def test_status_marks_exactly_the_next_round_robin_agent() -> None:
    chat = Chat(max_chats_per_agent=1)
    for conn in (A1, A2, A3):
        chat.agent(conn)
    chat.start(C1)  # goes to A1: A2 is next
    chat.clear()
    chat.tick(5)
    status = only(chat.take(A1), EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert status.agents is not None
    flags = {a.conversation_participant_name: a.next_round_robin for a in status.agents}
    assert flags == {"agent-11": False, "agent-12": True, "agent-13": False}
    statuses = {a.conversation_participant_name: a.agent_status for a in status.agents}
    assert statuses["agent-11"] is AgentStatus.BUSY
    assert statuses["agent-12"] is AgentStatus.AVAILABLE


def test_manual_status_marks_no_round_robin_agent() -> None:
    chat = Chat(routing=Routing.MANUAL)
    frames = chat.agent(A1)
    status = only(frames, EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert status.agents is not None
    assert [a.next_round_robin for a in status.agents] == [False]


def test_manual_engage_first_wins_and_everyone_is_told() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.agent(A1)
    chat.agent(A2)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    chat.send(C1, event("webchat context", conv, event_webchat_context={"cart_id": "cart-1", "url": "https://x.test/"}))
    queue_uuid = queue_uuid_of(chat, C1)
    chat.clear()
    chat.engage(A1, queue_uuid)
    agent_frames = chat.take(A1)
    assert kinds(agent_frames) == ["new conversation", "participant join", "message", "webchat context"]
    new = agent_frames[0].event_new_conversation
    assert new is not None
    assert new.participants is not None
    assert len(new.participants) == 2
    customer_frames = chat.take(C1)
    join = only(customer_frames, EventType.PARTICIPANT_JOIN)
    assert join.event_participant_join is not None
    assert join.event_participant_join_participant is not None
    assert join.event_participant_join_participant.conversation_participant_name == "agent-11"
    assert agent_frames[3].event_webchat_context is not None
    assert agent_frames[3].event_webchat_context.cart_id == "cart-1"
    chat.engage(A2, queue_uuid)
    assert error_of(chat.take(A2)) == "already_engaged"
    assert chat.take(A1) == []
    assert chat.take(C1) == []
    chat.tick()
    status = only(chat.take(A2), EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert status.customer_waiting_count == 0
    assert status.customer_active_count == 1


@pytest.mark.parametrize("case", ["unknown", "not_in_queue", "capacity", "customer"])
def test_engage_errors(case: str) -> None:
    chat = Chat(routing=Routing.MANUAL, queues=("support", "sales"), max_chats_per_agent=1)
    chat.agent(A1, queues=("support",))
    chat.agent(A2, queues=("sales",))
    chat.start(C1)
    chat.start(C2)
    queue_uuid = queue_uuid_of(chat, C1)
    chat.clear()
    if case == "unknown":
        chat.engage(A1, "00000000-0000-4000-8000-000000000000")
        assert error_of(chat.take(A1)) == "queue_entry_not_found"
    elif case == "not_in_queue":
        chat.engage(A2, queue_uuid)
        assert error_of(chat.take(A2)) == "not_in_queue"
    elif case == "capacity":
        chat.engage(A1, queue_uuid_of(chat, C2))
        chat.clear()
        chat.engage(A1, queue_uuid)
        assert error_of(chat.take(A1)) == "agent_at_capacity"
    else:
        chat.engage(C2, queue_uuid)
        assert error_of(chat.take(C2)) == "forbidden_for_role"
    assert chat.take(C1) == []


def test_agent_joining_late_gets_history_context_and_rrweb() -> None:
    chat = Chat(routing=Routing.MANUAL)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    chat.say(C1, conv, "hello?")
    init = rrweb_parts("snapshot", parts=2, kind="init", index=0)
    for part in init:
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    chat.send(C1, event("webchat context", conv, event_webchat_context={"url": "https://shop.test/cart"}))
    chat.clear()
    chat.agent(A1)
    chat.engage(A1, queue_uuid_of(chat, C1))
    frames = chat.take(A1)
    assert kinds(frames) == [
        "new conversation",
        "participant join",
        "message",
        "message",
        "webchat context",
        "rrweb",
        "rrweb",
    ]
    bodies = [f.message.body for f in of(frames, FrameType.MESSAGE) if f.message is not None]
    assert bodies == ["Where is my order?", "hello?"]


def test_a_closed_conversation_lets_go_of_its_recording_and_context() -> None:
    chat = Chat(routing=Routing.MANUAL)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    for part in rrweb_parts("snapshot" * 1000, parts=2, kind="init", index=0):
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    chat.send(C1, event("webchat context", conv, event_webchat_context={"url": "https://shop.test/cart"}))
    chat.say(C1, conv, "hello?", client_id="c-1")
    stored = chat.engine._conversations[conv]
    assert stored.rrweb.held and stored.context is not None and stored.by_client_id
    chat.close(C1, conv)
    assert not stored.rrweb.held and stored.rrweb.held_bytes == 0
    assert stored.context is None and not stored.by_client_id
    assert stored.messages[-1].model.body == "hello?"  # what a resume replays stays


# ---------------------------------------------------------------------------
# Row 4: messages


def test_message_goes_to_everyone_and_agents_get_new_message() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.now += 2
    deliveries = chat.say(C1, conv, "Any news?", client_id="c-1")
    message_delivery = next(d for d in deliveries if d.frame.type is FrameType.MESSAGE)
    assert set(message_delivery.recipients) == {C1, A1}  # built once, sent to both
    customer_copy = only(chat.take(C1), FrameType.MESSAGE).message
    agent_frames = chat.take(A1)
    assert kinds(agent_frames) == ["message", "new message"]
    message = agent_frames[0].message
    assert message is not None
    assert message == customer_copy
    assert message.client_message_id == "c-1"
    assert message.body == "Any news?"
    assert message.type is MessageType.MESSAGE
    assert message.merchant_id == "DEMO"
    assert message.conversation_message_uuid
    assert message.author_conversation_participant_name == "Customer 1"
    assert message.message_epoch == MS0 + 2000
    assert message.message_dts == dts(MS0 + 2000)
    assert message.transport_statuses is not None
    assert [s.status for s in message.transport_statuses] == [TransportStatus.SENT]
    summary = agent_frames[1].event_new_message
    assert summary is not None
    assert summary.message_count == 2
    assert summary.last_conversation_message_body == "Any news?"
    assert summary.last_conversation_participant_name == "Customer 1"
    assert summary.last_message_dts == dts(MS0 + 2000) == summary.last_interactive_message_dts
    assert summary.customer_first_message_unresponded_to_dts == dts(MS0)  # the question, still unanswered
    assert summary.unread_messages is True
    agent_view = {p.conversation_participant_name: p.unread_messages for p in summary.participants or ()}
    assert agent_view == {"Customer 1": 0, "agent-11": 2}
    chat.now += 1
    chat.say(A1, conv, "Shipped today.")
    summary = only(chat.take(A1), EventType.NEW_MESSAGE).event_new_message
    assert summary is not None
    assert summary.customer_first_message_unresponded_to_dts is None
    assert summary.last_conversation_participant_name == "agent-11"
    assert not of(chat.take(C1), EventType.NEW_MESSAGE)  # customers get the message only


def test_repeated_client_message_id_is_stored_once_and_resent_to_the_sender() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(C1, conv, "once", client_id="same")
    first = only(chat.take(C1), FrameType.MESSAGE).message
    chat.take(A1)
    chat.now += 5
    deliveries = chat.say(C1, conv, "once", client_id="same")
    assert [d.recipients for d in deliveries] == [(C1,)]
    again = only(chat.take(C1), FrameType.MESSAGE).message
    assert again == first
    assert chat.take(A1) == []
    chat.say(C1, conv, "next", client_id="other")
    summary = only(chat.take(A1), EventType.NEW_MESSAGE).event_new_message
    assert summary is not None
    assert summary.message_count == 3


def test_a_client_message_id_is_a_resend_only_from_the_same_sender() -> None:
    """An agent reusing an id the customer used is a new message (it once was
    taken for a resend: not stored, and the agent got the customer's message)."""
    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(C1, conv, "where is it?", client_id="m1")
    customers = only(chat.take(C1), FrameType.MESSAGE).message
    chat.take(A1)
    deliveries = chat.say(A1, conv, "on its way", client_id="m1")
    assert {r for d in deliveries for r in d.recipients} == {C1, A1}
    agents = only(chat.take(C1), FrameType.MESSAGE).message
    assert agents is not None and customers is not None
    assert agents.body == "on its way"
    assert agents.author_conversation_participant_name == "agent-11"
    assert agents.conversation_message_uuid != customers.conversation_message_uuid
    summary = only(chat.take(A1), EventType.NEW_MESSAGE).event_new_message
    assert summary is not None
    assert summary.message_count == 3  # the question, the customer's, the agent's
    for conn, original in ((C1, customers), (A1, agents)):  # each sender's resend is still recognised
        deliveries = chat.say(conn, conv, "again", client_id="m1")
        assert [d.recipients for d in deliveries] == [(conn,)]
        assert only(chat.take(conn), FrameType.MESSAGE).message == original
    chat.say(C1, conv, "thanks")
    summary = only(chat.take(A1), EventType.NEW_MESSAGE).event_new_message
    assert summary is not None
    assert summary.message_count == 4


def test_message_epochs_are_strictly_increasing() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    for body in ("a", "b", "c"):
        chat.say(C1, conv, body)
    epochs = [f.message.message_epoch for f in of(chat.take(C1), FrameType.MESSAGE) if f.message]
    assert epochs == [MS0 + 1, MS0 + 2, MS0 + 3]  # the question took MS0


def test_customer_may_write_while_queued() -> None:
    chat = Chat(routing=Routing.MANUAL)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    chat.clear()
    chat.say(C1, conv, "still there?")
    message = only(chat.take(C1), FrameType.MESSAGE).message
    assert message is not None
    assert message.transport_statuses == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"body": ""}, "empty_message"),
        ({"client_message_id": "x"}, "empty_message"),
        ({"body": "x" * 10_001}, "message_too_long"),
        ({"body": "x", "media_urls": [f"https://m.test/{i}" for i in range(11)]}, "too_many_media_urls"),
    ],
)
def test_message_errors(message: dict[str, Any], code: str) -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(C1, {"type": "message", "conversation_uuid": conv, "message": message})
    frames = chat.take(C1)
    assert error_of(frames) == code
    assert frames[0].conversation_uuid == conv
    assert chat.take(A1) == []


def test_media_only_message_is_accepted() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(C1, {"type": "message", "conversation_uuid": conv, "message": {"media_urls": ["https://m.test/1"]}})
    message = only(chat.take(A1), FrameType.MESSAGE).message
    assert message is not None
    assert message.media_urls == ["https://m.test/1"]


def test_conversation_message_limit() -> None:
    chat = Chat(max_messages_per_conversation=2)
    conv = engaged_pair(chat)  # the question is message 1
    chat.say(C1, conv, "two")
    chat.clear()
    chat.say(C1, conv, "three")
    assert error_of(chat.take(C1)) == "conversation_full"


def test_outsiders_cannot_touch_a_conversation() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.agent(A2)
    chat.connect(C2)
    chat.clear()
    frames = [
        {"type": "message", "conversation_uuid": conv, "message": {"body": "hi"}},
        event("typing", conv, event_typing={"value": "h"}),
        event("conversation closed", conv),
        event("read message", conv, event_read_message={"conversation_message_uuid": "x"}),
    ]
    for wire in frames:
        for conn in (C2, A2):
            chat.send(conn, wire)
            assert error_of(chat.take(conn)) == "not_a_participant"
    assert chat.take(C1) == []
    assert chat.take(A1) == []


# ---------------------------------------------------------------------------
# Rows 5-9: typing, read receipts, coupons, items, context, rrweb


def test_typing_goes_to_the_others_only_stamped() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(C1, event("typing", conv, event_typing={"value": "wher", "author_conversation_participant_name": "X"}))
    assert chat.take(C1) == []
    typing = only(chat.take(A1), EventType.TYPING).event_typing
    assert typing is not None
    assert typing.value == "wher"
    assert typing.author_conversation_participant_name == "Customer 1"
    assert typing.author_conversation_participant_arn is not None
    assert "/participant/" in typing.author_conversation_participant_arn


def test_read_receipt_and_updated_message() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.now += 3
    chat.say(C1, conv, "hello")
    message = only(chat.take(A1), FrameType.MESSAGE).message
    assert message is not None
    assert message.conversation_message_uuid is not None
    chat.clear()
    chat.now += 1
    read = event(
        "read message", conv, event_read_message={"conversation_message_uuid": message.conversation_message_uuid}
    )
    chat.send(A1, read)
    assert chat.take(A1) == []
    frames = chat.take(C1)
    assert kinds(frames) == ["read message", "updated message"]
    receipt = frames[0].event_read_message
    assert receipt is not None
    assert receipt.conversation_message_uuid == message.conversation_message_uuid
    assert receipt.message_epoch == message.message_epoch
    assert receipt.message_dts == message.message_dts
    updated = frames[1].event_updated_message
    assert updated is not None
    assert updated.transport_statuses is not None
    assert [s.status for s in updated.transport_statuses] == [TransportStatus.READ]
    assert updated.body == "hello"
    assert updated.conversation_message_uuid == message.conversation_message_uuid
    chat.send(A1, read)  # again: nothing changes, nobody is told
    assert chat.take(C1) == []
    assert chat.take(A1) == []
    chat.say(A1, conv, "hi")  # the agent's unread count is back to zero
    summary = only(chat.take(A1), EventType.NEW_MESSAGE).event_new_message
    assert summary is not None
    unread = {p.conversation_participant_name: p.unread_messages for p in summary.participants or ()}
    assert unread == {"Customer 1": 1, "agent-11": 0}


def test_read_receipt_errors_and_own_messages() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(A1, event("read message", conv, event_read_message={"conversation_message_uuid": "nope"}))
    frames = chat.take(A1)
    assert error_of(frames) == "message_not_found"
    assert frames[0].error is not None
    assert frames[0].error.object_id == "nope"
    chat.send(A1, event("read message", conv, event_read_message={}))
    assert error_of(chat.take(A1)) == "missing_field"
    chat.say(C1, conv, "mine")
    own = only(chat.take(C1), FrameType.MESSAGE).message
    assert own is not None
    chat.clear()
    chat.send(
        C1, event("read message", conv, event_read_message={"conversation_message_uuid": own.conversation_message_uuid})
    )
    assert chat.take(C1) == []
    assert chat.take(A1) == []


def test_coupon_and_item_go_to_the_customer_stamped_with_the_agent() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(A1, event("add coupon", conv, event_add_coupon={"coupon_code": "SAVE10", "agent_name": "forged"}))
    coupon = only(chat.take(C1), EventType.ADD_COUPON).event_add_coupon
    assert coupon is not None
    assert coupon.coupon_code == "SAVE10"
    assert coupon.agent_name == "agent-11"
    assert coupon.agent_arn is not None
    assert "/agent/" in coupon.agent_arn
    item = {"item_id": "SKU-1", "quantity": 2, "unit_cost": {"value": 9.5, "currency_code": "USD"}}
    chat.send(A1, event("add item", conv, event_add_item={"items": [item]}))
    added = only(chat.take(C1), EventType.ADD_ITEM).event_add_item
    assert added is not None
    assert added.items is not None
    assert added.items[0].item_id == "SKU-1"
    assert added.agent_name == "agent-11"
    assert chat.take(A1) == []
    chat.send(A1, event("add item", conv, event_add_item={"items": []}))
    assert error_of(chat.take(A1)) == "missing_field"
    chat.send(A1, event("add coupon", conv, event_add_coupon={}))
    assert error_of(chat.take(A1)) == "missing_field"


@pytest.mark.parametrize(
    ("sender", "wire_event", "payload"),
    [
        (C1, "add coupon", {"event_add_coupon": {"coupon_code": "X"}}),
        (C1, "add item", {"event_add_item": {"items": [{"item_id": "X"}]}}),
        (A1, "webchat context", {"event_webchat_context": {"url": "https://x.test/"}}),
        (A1, "rrweb", {"event_rrweb": {"data": "x"}}),
        (A1, "webchat start conversation", {"event_engage_customer": {}}),
    ],
)
def test_role_rules(sender: int, wire_event: str, payload: dict[str, Any]) -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(sender, event(wire_event, conv, **payload))
    assert error_of(chat.take(sender)) == "forbidden_for_role"
    other = A1 if sender == C1 else C1
    assert chat.take(other) == []


def test_a_read_receipt_after_the_close_is_still_recorded_and_relayed() -> None:
    """The customer reads the agent's goodbye as (or after) the chat closes:
    the receipt races the close and must not be refused."""
    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(A1, conv, "Goodbye!")
    goodbye = only(chat.take(C1), FrameType.MESSAGE).message
    assert goodbye is not None
    chat.close(A1, conv)
    chat.clear()
    chat.send(
        C1,
        event(
            "read message", conv, event_read_message={"conversation_message_uuid": goodbye.conversation_message_uuid}
        ),
    )
    assert not [f for f in chat.take(C1) if f.error]
    assert kinds(chat.take(A1)) == ["read message", "updated message"]


def test_a_frame_refused_by_its_conversation_state_names_frame_role_and_state() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.close(C1, conv)
    chat.clear()
    chat.send(A1, event("typing", conv, event_typing={"value": "h"}))
    (frame,) = chat.take(A1)
    assert frame.error is not None
    assert frame.error.error_code == "conversation_closed"
    assert frame.error.object_id == conv
    assert frame.error.developer_message == (
        f'event "typing" is not accepted from an agent in a closed conversation (conversation {conv} is closed)'
    )
    assert chat.take(C1) == []


def test_forbidden_and_unsupported_frames_say_what_and_from_whom() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(C1, event("add coupon", conv, event_add_coupon={"coupon_code": "X"}))
    (frame,) = chat.take(C1)
    assert frame.error is not None
    assert frame.error.developer_message == 'event "add coupon" is not accepted from a customer'
    chat.send(C1, {"type": "event", "error": {"error_code": "x"}})
    (frame,) = chat.take(C1)
    assert frame.error is not None
    assert frame.error.developer_message == "an event without event_type is not accepted from clients"


def test_webchat_context_goes_to_agents() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(
        C1,
        event("webchat context", conv, event_webchat_context={"cart_id": "c", "ucacid": "u", "url": "https://s.test/"}),
    )
    context = only(chat.take(A1), EventType.WEBCHAT_CONTEXT).event_webchat_context
    assert context is not None
    assert (context.cart_id, context.ucacid, context.url) == ("c", "u", "https://s.test/")
    assert chat.take(C1) == []


def rrweb_parts(text: str, *, parts: int, kind: str = "events", index: int = 1) -> list[dict[str, Any]]:
    size = -(-len(text) // parts)
    chunks = [text[i * size : (i + 1) * size] for i in range(parts)]
    total = hashlib.sha256(text.encode()).hexdigest()
    return [
        {
            "type": kind,
            "event_index": index,
            "data": chunk,
            "data_part": number,
            "data_total_parts": parts,
            "data_sha256": hashlib.sha256(chunk.encode()).hexdigest(),
            "data_total_sha256": total,
        }
        for number, chunk in enumerate(chunks, 1)
    ]


def test_rrweb_chunks_are_verified_and_relayed_to_agents() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    for part in rrweb_parts('[{"type":2,"data":{}}]' * 10, parts=3, kind="init", index=0):
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    relayed = of(chat.take(A1), EventType.RRWEB)
    assert [f.event_rrweb.data_part for f in relayed if f.event_rrweb] == [1, 2, 3]
    assert "".join(f.event_rrweb.data or "" for f in relayed if f.event_rrweb) == '[{"type":2,"data":{}}]' * 10
    assert chat.take(C1) == []


@pytest.mark.parametrize("defect", ["part_hash", "total_hash", "out_of_order", "missing", "too_many_parts"])
def test_rrweb_defects_are_refused_and_not_relayed(defect: str) -> None:
    chat = Chat(max_rrweb_parts=5)
    conv = engaged_pair(chat)
    parts = rrweb_parts("abcdefghij", parts=2)
    if defect == "part_hash":
        parts[0]["data_sha256"] = hashlib.sha256(b"other").hexdigest()
        send, code, relayed = parts[:1], "rrweb_hash_mismatch", 0
    elif defect == "total_hash":
        parts[1]["data_total_sha256"] = hashlib.sha256(b"other").hexdigest()
        send, code, relayed = parts, "rrweb_hash_mismatch", 1
    elif defect == "out_of_order":
        send, code, relayed = parts[1:], "rrweb_out_of_order", 0
    elif defect == "missing":
        del parts[0]["data_sha256"]
        send, code, relayed = parts[:1], "invalid_rrweb", 0
    else:
        parts[0]["data_total_parts"] = 6
        send, code, relayed = parts[:1], "invalid_rrweb", 0
    for part in send:
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    errors = [f for f in chat.take(C1) if f.error is not None]
    assert [e.error.error_code for e in errors if e.error] == [code]
    assert len(of(chat.take(A1), EventType.RRWEB)) == relayed


def test_rrweb_payload_size_is_bounded() -> None:
    chat = Chat(max_rrweb_bytes=15)
    conv = engaged_pair(chat)
    for part in rrweb_parts("x" * 30, parts=3):
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    codes = [f.error.error_code for f in chat.take(C1) if f.error]
    assert codes[0] == "rrweb_too_large"
    assert len(of(chat.take(A1), EventType.RRWEB)) == 1


# ---------------------------------------------------------------------------
# Rows 10-13: close, leave, participant update, ping


def test_agent_closes_and_everyone_is_told() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.close(A1, conv)
    for conn in (C1, A1):
        closed = only(chat.take(conn), EventType.CONVERSATION_CLOSED)
        assert closed.event_conversation_closed is not None
        assert closed.event_conversation_closed.closed is True
    chat.say(C1, conv, "wait")
    assert error_of(chat.take(C1)) == "conversation_closed"
    chat.close(A1, conv)
    assert error_of(chat.take(A1)) == "conversation_closed"
    chat.send(C1, {"type": "check queue position", "conversation_uuid": conv})
    position = only(chat.take(C1), EventType.QUEUE_POSITION).event_queue_position
    assert position is not None
    assert position.position == -1
    assert chat.engine.status()["conversations"] == {"open": 0, "closed": 1}


def test_customer_closing_while_queued_abandons() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    assert conv is not None
    chat.start(C2)
    chat.tick(5)
    chat.clear()
    chat.now += 7
    chat.close(C1, conv)
    assert of(chat.take(C1), EventType.CONVERSATION_CLOSED)
    chat.tick()
    position = only(chat.take(C2), EventType.QUEUE_POSITION).event_queue_position
    assert position is not None
    assert position.position == 1
    status = only(chat.take(A1), EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert (status.customer_abandon_count, status.customer_average_abandon_time_seconds) == (1, 12)
    assert chat.engine.status()["queues"]["support"]["abandoned"] == 1  # what /healthz shows
    assert status.customer_waiting_count == 1


def test_explicit_leave_sends_participant_left_and_closes() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.now += 4
    chat.send(C1, event("participant left", conv, event_participant_left={}, event_participant_left_participant={}))
    left = only(chat.take(C1), EventType.PARTICIPANT_LEFT)
    agent_frames = chat.take(A1)
    assert kinds(agent_frames) == ["participant left", "conversation closed"]
    participant = agent_frames[0].event_participant_left_participant
    assert participant is not None
    assert participant.left_dts == dts(MS0 + 4000)
    assert participant.conversation_participant_name == "Customer 1"
    assert participant.status == "left"
    assert left.event_participant_left is not None
    chat.say(C1, conv, "back")
    assert error_of(chat.take(C1)) == "not_a_participant"


def test_participant_update_on_language_change() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.send(
        C1, {"type": "message", "conversation_uuid": conv, "message": {"body": "hola", "language_iso_code": "es"}}
    )
    for conn in (C1, A1):
        update = only(chat.take(conn), EventType.PARTICIPANT_UPDATE).event_participant_update
        assert update is not None
        assert update.participants is not None
        languages = {p.conversation_participant_name: p.language_iso_code for p in update.participants}
        assert languages["Customer 1"] == "es"
    chat.send(C1, {"type": "message", "conversation_uuid": conv, "message": {"body": "si", "language_iso_code": "es"}})
    assert not of(chat.take(A1), EventType.PARTICIPANT_UPDATE)


def test_ping() -> None:
    chat = Chat()
    chat.connect(C1)
    deliveries = chat.send(C1, {"type": "ping"})
    assert [d.recipients for d in deliveries] == [(C1,)]
    assert encode(deliveries[0].frame) == b'{"type":"ping"}'


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "event", "event_type": "new conversation", "event_new_conversation": {}},
        {"type": "event", "event_type": "queue position", "event_queue_position": {}},
        {"type": "event", "event_type": "queue status update", "event_queue_status_update": {}},
        {"type": "event", "error": {"error_code": "x"}},
    ],
)
def test_server_only_frames_are_unsupported(wire: dict[str, Any]) -> None:
    chat = Chat()
    chat.connect(C1)
    chat.send(C1, wire)
    assert error_of(chat.take(C1)) == "unsupported_frame"


def test_the_rules_table_binds_every_handler_once_with_its_signature() -> None:
    engine = Engine(EngineConfig(), rng=random.Random(1))
    handlers = sorted(name for name in dir(Engine) if name.startswith("_on_"))
    assert sorted(rule.handler for rule in RULES.values()) == handlers
    for kind, rule in RULES.items():
        parameters = list(inspect.signature(getattr(engine, rule.handler)).parameters)
        expected = ["client", "frame", "now"] if rule.states is None else ["conv", "member", "frame", "now"]
        assert parameters == expected, kind
        assert rule.roles, kind
        if rule.states is not None:
            assert set(State) - rule.states <= STATE_REFUSALS.keys(), kind
    # Conversation frames are exactly those the codec requires a conversation_uuid for
    named = {event for (_, event), rule in RULES.items() if event is not None and rule.states is not None}
    assert named == {event for event in CONVERSATION_EVENTS if (FrameType.EVENT, event) in RULES}


def test_error_codes_are_keyed_by_error_code() -> None:
    assert all(isinstance(code, ErrorCode) for code in ERROR_CODES)
    assert all(text for text in ERROR_CODES.values())


def test_frames_from_unknown_connections_are_refused() -> None:
    chat = Chat()
    chat.send(99, {"type": "ping"})
    assert error_of(chat.take(99)) == "not_connected"


def test_error_frame_for_undecodable_input() -> None:
    chat = Chat()
    try:
        decode(b'{"type": "nonsense"}')
    except FrameError as exc:
        frame = chat.engine.error_frame(exc, conversation_uuid="abc")
    else:  # pragma: no cover
        raise AssertionError("decoded nonsense")
    raw = encode(frame)
    sdk_validate(raw)
    assert decode(raw).conversation_uuid == "abc"
    assert frame.error is not None
    assert frame.error.error_code == "invalid_enum"
    assert frame.error.developer_message is not None
    assert frame.error.developer_message.startswith("type:")


# ---------------------------------------------------------------------------
# Statistics


def test_queue_statistics_from_controlled_time() -> None:
    chat = Chat(routing=Routing.MANUAL, max_chats_per_agent=1)
    chat.agent(A1)
    a = chat.start(1).conversation_uuid  # t=0
    chat.now += 10
    b = chat.start(2).conversation_uuid  # t=10
    chat.now += 10
    chat.engage(A1, queue_uuid_of(chat, 1))  # t=20: hold 20
    chat.now += 10
    chat.close(2, b or "")  # t=30: abandon after 20
    chat.now += 10
    chat.start(3)  # t=40
    chat.now += 10
    chat.close(A1, a or "")  # t=50: chat of 30
    chat.now += 20
    chat.engage(A1, queue_uuid_of(chat, 3))  # t=70: hold 30
    chat.now += 10
    chat.start(4)  # t=80: waiting
    chat.agent(A2)
    chat.agent(A3)
    chat.disconnect(A3)  # within grace: unavailable
    chat.clear()
    chat.tick(1)
    status = only(chat.take(A1), EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert status.customer_chat_count == 2
    assert status.customer_active_count == 1
    assert status.customer_abandon_count == 1
    assert status.customer_average_abandon_time_seconds == 20
    assert status.customer_average_hold_time_seconds == 25
    assert status.customer_average_chat_time_seconds == 30
    assert status.customer_waiting_count == 1
    assert status.customer_waiting_join_dts == dts(MS0 + 80_000)
    assert status.queue_name == "support"
    assert (status.agent_count, status.agent_available_count, status.agent_busy_count) == (3, 1, 1)
    assert status.agent_unavailable_count == 1
    agents = {a.conversation_participant_name: a for a in status.agents or ()}
    assert agents["agent-11"].agent_status is AgentStatus.BUSY
    assert agents["agent-11"].last_chat_dts == dts(MS0 + 70_000)
    assert agents["agent-12"].agent_status is AgentStatus.AVAILABLE
    assert agents["agent-12"].last_chat_dts is None
    assert agents["agent-13"].agent_status is AgentStatus.UNAVAILABLE
    assert [e.conversation_participant_name for e in status.queue_entries or ()] == ["Customer 4"]
    status_json = chat.engine.status()
    held = status_json.pop("held")
    assert status_json == {
        "connections": 6,
        "queues": {"support": {"waiting": 1, "agents": 3, "chatting": 1, "abandoned": 1}},
        "conversations": {"open": 2, "closed": 2},
    }
    assert (held["conversations_open"], held["conversations_closed"], held["evicted_conversations"]) == (2, 2, 0)


def test_status_updates_are_coalesced_per_queue() -> None:
    chat = Chat(routing=Routing.MANUAL, queues=("support", "sales"))
    chat.agent(A1)
    chat.tick()
    chat.now += 5
    chat.clear()
    for conn in range(101, 121):
        chat.start(conn, queue_name="support" if conn % 2 else "sales")
    assert not of(chat.take(A1), EventType.QUEUE_STATUS_UPDATE)
    assert chat.engine.next_deadline() == chat.now  # due at once: the last update was long ago
    updates = [d for d in chat.tick() if d.frame.event_type is EventType.QUEUE_STATUS_UPDATE]
    assert len(updates) == 2
    names = {u.frame.event_queue_status_update.queue_name for u in updates if u.frame.event_queue_status_update}
    assert names == {"support", "sales"}
    chat.clear()
    chat.now += 0.2
    chat.start(30)
    assert chat.engine.next_deadline() == pytest.approx(chat.now + 0.8)
    assert not [d for d in chat.tick() if d.frame.event_type is EventType.QUEUE_STATUS_UPDATE]
    assert len([d for d in chat.tick(0.8) if d.frame.event_type is EventType.QUEUE_STATUS_UPDATE]) == 1
    assert chat.engine.next_deadline() is None


def test_status_lists_at_most_the_entries_limit_but_counts_everyone() -> None:
    chat = Chat(routing=Routing.MANUAL, status_entries_limit=3)
    for conn in range(1, 8):
        chat.start(conn)
    chat.clear()
    frames = chat.agent(A1)
    status = only(frames, EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert status.customer_waiting_count == 7
    assert [e.conversation_participant_name for e in status.queue_entries or ()] == [
        "Customer 1",
        "Customer 2",
        "Customer 3",
    ]


# ---------------------------------------------------------------------------
# Disconnects, resume, grace


def test_customer_resumes_without_losing_a_message() -> None:
    chat = Chat()
    chat.agent(A1)
    new = chat.start(C1)
    conv, token = new.conversation_uuid or "", resume_token(new)
    chat.say(C1, conv, "first")
    seen = [f.message.message_epoch for f in of(chat.take(C1), FrameType.MESSAGE) if f.message]
    chat.clear()
    chat.now += 1
    chat.disconnect(C1)
    update = only(chat.take(A1), EventType.PARTICIPANT_UPDATE).event_participant_update
    assert update is not None
    assert {p.conversation_participant_name: p.status for p in update.participants or ()}[
        "Customer 1"
    ] == "disconnected"
    chat.say(A1, conv, "are you there?")
    chat.say(A1, conv, "hello?")
    agent_copy = of(chat.take(A1), FrameType.MESSAGE)[0].message
    assert agent_copy is not None
    assert agent_copy.transport_statuses is not None
    assert agent_copy.transport_statuses[0].status is TransportStatus.QUEUED
    chat.now += 5
    frames = chat.connect(C2, resume_token=token, resume_since=max(e for e in seen if e is not None))
    assert kinds(frames) == ["new conversation", "message", "message"]
    assert resume_token(frames[0]) == token
    assert [f.message.body for f in frames[1:] if f.message] == ["are you there?", "hello?"]
    agent_frames = chat.take(A1)
    assert kinds(agent_frames) == ["participant update"]  # back, and no 'participant left'
    chat.tick(60)
    assert not of(chat.take(A1), EventType.PARTICIPANT_LEFT)
    chat.say(C2, conv, "yes!")
    assert of(chat.take(A1), FrameType.MESSAGE)


def read_frame(conv: str, message_uuid: str | None) -> dict[str, Any]:
    return event("read message", conv, event_read_message={"conversation_message_uuid": message_uuid})


def test_a_read_receipt_made_while_the_author_was_away_is_replayed_on_resume() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.now += 1
    chat.say(C1, conv, "my order is late")
    mine = only(chat.take(C1), FrameType.MESSAGE).message
    assert mine is not None and mine.message_epoch is not None
    since = mine.message_epoch  # the last message the customer saw
    chat.disconnect(C1)
    chat.send(A1, read_frame(conv, mine.conversation_message_uuid))  # in the same millisecond, while it is away
    agent_arn = chat.engine._conns[A1].arn
    chat.clear()
    frames = chat.connect(C2, resume_token=chat.tokens[C1], resume_since=since)
    assert kinds(frames) == ["new conversation", "updated message"]
    updated = frames[1].event_updated_message
    assert updated is not None and updated.conversation_message_uuid == mine.conversation_message_uuid
    assert [(s.conversation_participant_arn, s.status) for s in updated.transport_statuses or ()] == [
        (agent_arn, TransportStatus.READ)
    ]
    # Seen after the receipt (a later message): not replayed again; the agent, not its author, gets none.
    chat.now += 1
    chat.say(A1, conv, "looking into it")
    later = only(chat.take(C2), FrameType.MESSAGE).message
    assert later is not None and later.message_epoch is not None
    chat.disconnect(C2)
    frames = chat.connect(C3, resume_token=chat.tokens[C1], resume_since=later.message_epoch)
    assert kinds(frames) == ["new conversation"]
    chat.disconnect(A1)
    frames = chat.agent(A2, name="agent-11", resume_token=chat.tokens[A1], resume_since=since - 1)
    assert kinds(frames) == ["new conversation", "message", "message", "queue status update"]


def test_resume_without_since_replays_everything_and_the_queue_position() -> None:
    chat = Chat(routing=Routing.MANUAL)
    chat.start(C3)
    token = resume_token(chat.start(C1))
    chat.disconnect(C1)
    frames = chat.connect(C2, resume_token=token)
    assert kinds(frames) == ["new conversation", "message", "queue position"]
    position = frames[2].event_queue_position
    assert position is not None
    assert position.position == 2


def test_resume_with_a_bad_token_fails_and_starts_afresh() -> None:
    chat = Chat()
    frames = chat.connect(C1, resume_token="f" * 32)
    assert error_of(frames) == "resume_failed"
    chat.start(C1)
    assert of(chat.take(C1), EventType.QUEUE_POSITION)


def test_grace_expiry_sends_participant_left_and_closes() -> None:
    chat = Chat(reconnect_grace=10)
    conv = engaged_pair(chat)
    assert chat.engine._conversations[conv].state.value == "engaged"
    chat.tick()
    token = chat.tokens[C1]
    chat.disconnect(C1)
    chat.clear()
    assert chat.engine.next_deadline() == pytest.approx(T0 + 10)
    chat.tick(9.9)
    assert chat.take(A1) == []
    chat.tick(0.1)
    frames = chat.take(A1)
    assert kinds(frames)[:2] == ["participant left", "conversation closed"]
    participant = frames[0].event_participant_left_participant
    assert participant is not None
    assert participant.left_dts == dts(MS0 + 10_000)
    frames = chat.connect(C2, resume_token=token)
    assert error_of(frames) == "resume_failed"


def test_queued_customer_grace_expiry_is_an_abandon() -> None:
    chat = Chat(routing=Routing.MANUAL, reconnect_grace=5)
    chat.agent(A1)
    chat.start(C1)
    chat.start(C2)
    chat.tick(2)
    chat.disconnect(C1)
    chat.clear()
    chat.tick(5)
    position = only(chat.take(C2), EventType.QUEUE_POSITION).event_queue_position
    assert position is not None
    assert position.position == 1
    status = only(chat.take(A1), EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert status.customer_abandon_count == 1
    assert status.customer_average_abandon_time_seconds == 7


def test_customer_told_of_a_close_that_happened_while_away() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    token = chat.tokens[C1]
    chat.disconnect(C1)
    chat.close(A1, conv)
    chat.clear()
    frames = chat.connect(C2, resume_token=token)
    assert kinds(frames) == ["new conversation", "message", "conversation closed"]
    assert frames[0].event_new_conversation is not None
    assert frames[0].event_new_conversation.closed is True


def test_agent_reconnects_within_grace_and_keeps_its_chats() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.now += 1
    chat.disconnect(A1)
    since = int(chat.now * 1000)
    chat.now += 1
    chat.say(C1, conv, "still there?")
    chat.clear()
    frames = chat.agent(A2, name="agent-11", resume_token=chat.tokens[A1], resume_since=since)
    assert kinds(frames) == ["new conversation", "message", "queue status update"]
    assert frames[0].conversation_uuid == conv
    assert frames[1].message is not None
    assert frames[1].message.body == "still there?"
    assert kinds(chat.take(C1)) == ["participant update"]
    chat.tick(60)
    assert not of(chat.take(C1), EventType.PARTICIPANT_LEFT)
    chat.say(A2, conv, "yes")
    assert of(chat.take(C1), FrameType.MESSAGE)
    chat.say(A1, conv, "old connection")
    assert error_of(chat.take(A1)) == "not_connected"


def test_second_login_takes_the_session_over() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    frames = chat.agent(A2, name="agent-11", resume_token=chat.tokens[A1])
    assert error_of(chat.take(A1)) == "session_replaced"
    assert of(frames, EventType.NEW_CONVERSATION)
    assert chat.take(C1) == []  # no status change to announce
    chat.disconnect(A1)  # the old socket closing later changes nothing
    chat.say(C1, conv, "hi")
    assert of(chat.take(A2), FrameType.MESSAGE)


def test_a_takeover_tells_the_shell_to_close_the_old_connection_once() -> None:
    chat = Chat()
    engaged_pair(chat)
    assert chat.closes == []
    assert chat.engine.take_closes() == ()
    chat.agent(A2, name="agent-11", resume_token=chat.tokens[A1])
    assert chat.closes == [Close(A1, 1000, "session replaced by a new connection")]
    assert chat.engine.take_closes() == ()  # taken once
    chat.connect(C2, resume_token=chat.tokens[C1])
    assert chat.closes[1:] == [Close(C1, 1000, "session replaced by a new connection")]


def test_closes_wait_until_taken() -> None:
    engine = Engine(EngineConfig(), rng=random.Random(1))
    (status,) = engine.connect(A1, Identity(role=Role.AGENT, name="Ann"), T0)
    ann = Identity(role=Role.AGENT, name="Ann", resume_token=resume_token(status.frame))
    engine.connect(A2, ann, T0)
    engine.tick(T0 + 5)  # other calls do not drop them
    engine.connect(A3, ann, T0)
    assert [c.conn for c in engine.take_closes()] == [A1, A2]
    assert engine.take_closes() == ()


def test_customer_resume_while_still_connected_takes_over() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    frames = chat.connect(C2, resume_token=chat.tokens[C1])
    assert kinds(frames)[:1] == ["new conversation"]
    assert error_of(chat.take(C1)) == "session_replaced"
    assert chat.take(A1) == []  # the customer never looked disconnected
    chat.say(A1, conv, "hi")
    assert of(chat.take(C2), FrameType.MESSAGE)
    assert chat.take(C1) == []
    assert chat.disconnect(C1) == []  # the replaced socket closing later changes nothing


IN_USE = Close(A2, 1008, "agent name held by another session")


def test_an_agent_name_held_by_a_session_is_refused_without_its_secret() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.say(C1, conv, "my password reset code is 314159")
    chat.clear()
    guesses: list[dict[str, Any]] = [{}, {"resume_token": "f" * 43}, {"resume_token": chat.tokens[C1]}]
    for guess in guesses:  # nothing, a guess, a customer's token: refused, and shown nothing
        frames = chat.agent(A2, name="agent-11", **guess)
        assert error_of(frames) == "identity_in_use"
        assert b"314159" not in b"".join(encode(f) for f in frames)
        assert chat.closes[-1] == IN_USE
        assert chat.disconnect(A2) == []  # its socket closing changes nothing
    assert chat.take(A1) == [] and chat.take(C1) == []  # the real agent was not replaced
    chat.say(A1, conv, "still me")
    assert of(chat.take(C1), FrameType.MESSAGE)
    # Within the reconnect grace the name is held as well.
    chat.disconnect(A1)
    chat.clear()
    assert error_of(chat.agent(A2, name="agent-11")) == "identity_in_use"
    chat.disconnect(A2)
    chat.tick(60)  # the grace ends: the name is free, a newcomer is a new agent with no chats
    frames = chat.agent(A2, name="agent-11")
    assert not of(frames, EventType.NEW_CONVERSATION)
    assert chat.tokens[A2] != chat.tokens[A1]


def test_an_agent_resumes_with_its_secret_or_a_token_vouching_for_its_name() -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    first = chat.tokens[A1]
    frames = chat.agent(A2, name="agent-11", resume_token=first)  # a takeover
    assert of(frames, EventType.NEW_CONVERSATION)
    assert resume_token(of(frames, EventType.NEW_CONVERSATION)[0]) == first
    assert error_of(chat.take(A1)) == "session_replaced"
    chat.disconnect(A2)
    frames = chat.agent(A3, name="agent-11", authenticated=True)  # a JWT naming it: a resume
    assert of(frames, EventType.NEW_CONVERSATION)
    assert chat.tokens[A3] == first  # one secret per agent, kept across its connections
    chat.say(C1, conv, "hello again")
    assert of(chat.take(A3), FrameType.MESSAGE)


def test_agent_grace_expiry_closes_its_chats_and_leaves_the_queue() -> None:
    chat = Chat(reconnect_grace=3)
    conv = engaged_pair(chat)
    chat.agent(A2)
    chat.disconnect(A1)
    chat.clear()
    chat.tick(3)
    frames = chat.take(C1)
    assert kinds(frames)[:2] == ["participant left", "conversation closed"]
    assert frames[1].conversation_uuid == conv
    status = only(chat.take(A2), EventType.QUEUE_STATUS_UPDATE).event_queue_status_update
    assert status is not None
    assert [a.conversation_participant_name for a in status.agents or ()] == ["agent-12"]
    assert status.customer_active_count == 0


def test_disconnect_of_a_customer_without_chats_is_forgotten_at_once() -> None:
    chat = Chat()
    chat.connect(C1)
    assert chat.disconnect(C1) == []
    assert chat.engine.next_deadline() is None
    assert chat.engine.status()["connections"] == 0


def test_agent_with_unknown_queue_is_told_and_logged_in_to_the_rest() -> None:
    chat = Chat(queues=("support", "sales"))
    frames = chat.agent(A1, queues=("sales", "billing"))
    assert error_of([f for f in frames if f.error is not None]) == "unknown_queue"
    statuses = of(frames, EventType.QUEUE_STATUS_UPDATE)
    assert [s.event_queue_status_update.queue_name for s in statuses if s.event_queue_status_update] == ["sales"]


# ---------------------------------------------------------------------------
# Determinism


def run_script(seed: int) -> list[bytes]:
    chat = Chat(seed=seed, validate=False)
    conv = engaged_pair(chat)
    chat.say(C1, conv, "a", client_id="1")
    chat.say(A1, conv, "b")
    chat.start(C2)
    chat.tick(1)
    chat.close(A1, conv)
    chat.tick(1)
    return chat.log


def test_same_seed_same_frames() -> None:
    assert run_script(7) == run_script(7)
    assert run_script(7) != run_script(8)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="queues"):
        EngineConfig(queues=())
    with pytest.raises(ValueError, match="max_chats_per_agent"):
        EngineConfig(max_chats_per_agent=0)
    with pytest.raises(ValueError, match="reconnect_grace"):
        EngineConfig(reconnect_grace=-1)


def test_uuids_are_version_4_uuids_of_the_rng() -> None:
    import uuid

    engine, twin = Engine(EngineConfig(), rng=random.Random(5)), random.Random(5)
    for _ in range(2000):
        assert engine._uuid() == str(uuid.UUID(int=twin.getrandbits(128), version=4))
