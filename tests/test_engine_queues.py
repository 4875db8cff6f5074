"""Queues at scale and under random operations: the building blocks, coalescing
with 10,000 waiting customers, queue positions against a list model, routing
invariants, and random valid frames that must never break the engine."""

from __future__ import annotations

import random
import typing
from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pydantic import BaseModel

from simulator.errors import FrameError
from simulator.mock.engine import Engine, EngineConfig, Identity, Role, Routing
from simulator.mock.queues import PositionPushes, RoundRobin, WaitingLine
from simulator.protocol import (
    EVENT_PAYLOADS,
    ConversationMessage,
    ConversationWebsocketMessage,
    EventType,
    FrameType,
    decode,
    encode,
)
from tests.engine_harness import A1, A2, C1, C2, T0, Chat, engage_frame, engaged_pair, start_frame
from tests.sdk import sdk_validate
from tests.strategies import wire_dicts

# ---------------------------------------------------------------------------
# Building blocks


def test_waiting_line_ranks_and_orders() -> None:
    line: WaitingLine[str] = WaitingLine()
    for seq, name in ((3, "a"), (7, "b"), (9, "c"), (12, "d")):
        line.push(seq, name)
    assert [line.rank(s) for s in (3, 7, 9, 12)] == [0, 1, 2, 3]
    assert line.remove(7) == "b"
    assert (line.rank(9), line.rank(12), len(line)) == (1, 2, 3)
    assert line.head() == (3, "a")
    assert line.first(2) == ["a", "c"]
    assert list(line.ranked_from(8)) == [(1, 9, "c"), (2, 12, "d")]
    assert line.get(7) is None
    assert 9 in line
    assert 7 not in line
    with pytest.raises(KeyError):
        line.rank(7)
    with pytest.raises(ValueError, match="already"):
        line.push(3, "again")


def test_round_robin_wraps_and_skips_absent_agents() -> None:
    ring: RoundRobin[str] = RoundRobin()
    assert ring.peek() is None
    for key, name in ((1, "a"), (2, "b"), (3, "c")):
        ring.add(key, name)
    served = []
    for _ in range(4):
        turn = ring.peek()
        assert turn is not None
        ring.served(turn[0])
        served.append(turn[1])
    assert served == ["a", "b", "c", "a"]
    ring.discard(2)  # b is full: skipped
    turn = ring.peek()
    assert turn == (3, "c")
    ring.served(3)
    assert ring.peek() == (1, "a")


def test_position_pushes_coalesce_to_one_flush_per_interval() -> None:
    pushes = PositionPushes(1.0)
    pushes.changed_from(10, now=100.0)
    pushes.changed_from(5, now=100.2)
    assert pushes.due == 100.0
    assert pushes.take(100.3) == (5, set())
    pushes.changed_from(8, now=100.4)
    assert pushes.due == pytest.approx(101.3)
    pushes.defer(42, now=100.5)
    assert pushes.take(101.3) == (8, {42})
    assert pushes.due is None


# ---------------------------------------------------------------------------
# 10,000 waiting customers


def test_ten_thousand_waiting_cost_constant_work_per_event_and_one_push_each() -> None:
    # Driven on the engine directly (no inbox) to keep 10,000 customers fast.
    engine = Engine(EngineConfig(routing=Routing.MANUAL), rng=random.Random(5))
    now = T0
    engine.connect(A1, Identity(role=Role.AGENT, name="ann"), now)
    n, base = 10_000, 1000
    start = decode(orjson.dumps(start_frame(conversation_participant_name="c")))
    most = 0
    for conn in range(base, base + n):
        engine.connect(conn, Identity(role=Role.CUSTOMER), now)
        most = max(most, len(engine.receive(conn, start, now)))
    assert most <= 3  # new conversation, queue position, queue new member
    out = engine.tick(now)
    assert [d.frame.event_type for d in out] == [EventType.QUEUE_STATUS_UPDATE]  # one for 10,000 joins
    status = out[0].frame.event_queue_status_update
    assert status is not None
    assert status.customer_waiting_count == n
    assert len(status.queue_entries or ()) == 50
    sdk_validate(encode(out[0].frame))

    # An engage at the head: O(1) deliveries now, one push per customer who moved at tick.
    now += 5
    head_uuid = (status.queue_entries or [])[0].conversation_webchat_queue_uuid
    assert head_uuid is not None
    immediate = engine.receive(A1, decode(orjson.dumps(engage_frame(head_uuid))), now)
    assert 1 <= len(immediate) <= 3
    assert {r for d in immediate for r in d.recipients} == {A1, base}
    out = engine.tick(now)
    positions = [d for d in out if d.frame.event_type is EventType.QUEUE_POSITION]
    assert len(positions) == n - 1
    told = {}
    for d in positions:
        (conn,) = d.recipients
        assert d.frame.event_queue_position is not None
        told[conn] = d.frame.event_queue_position.position
    assert told == {base + i: i for i in range(1, n)}  # one each, and right
    assert sum(d.frame.event_type is EventType.QUEUE_STATUS_UPDATE for d in out) == 1
    for d in positions[:: n // 10]:
        sdk_validate(encode(d.frame))

    # An abandon in the middle, 0.1 s later: nothing until the interval has passed.
    now += 0.1
    middle = base + 500
    (conv_uuid,) = engine._conns[middle].conversations
    close = {"type": "event", "event_type": "conversation closed", "conversation_uuid": conv_uuid}
    immediate = engine.receive(middle, decode(orjson.dumps(close)), now)
    assert [d.recipients for d in immediate] == [(middle,)]
    assert not [d for d in engine.tick(now) if d.frame.event_type is EventType.QUEUE_POSITION]
    deadline = engine.next_deadline()
    assert deadline == pytest.approx(now + 0.9)
    out = engine.tick(now + 0.9)
    per_conn = Counter(r for d in out if d.frame.event_type is EventType.QUEUE_POSITION for r in d.recipients)
    assert len(per_conn) == n - 1 - 500  # only those behind the one who left
    assert max(per_conn.values()) == 1
    assert min(per_conn) == middle + 1


# ---------------------------------------------------------------------------
# Queue positions against a list model


class QueueModel(RuleBasedStateMachine):
    """Joins, engages, abandons and disconnects in any order; after every
    flush each waiting customer's last pushed position is its place in a list."""

    def __init__(self) -> None:
        super().__init__()
        self.chat = Chat(routing=Routing.MANUAL, reconnect_grace=0, max_chats_per_agent=1000)
        self.waiting: list[int] = []
        self.convs: dict[int, str] = {}
        self.next_conn = 100

    @initialize()
    def agent_logs_in(self) -> None:
        self.chat.agent(A1)

    def _waiting_conn(self, index: int) -> int:
        return self.waiting[index % len(self.waiting)]

    @rule()
    def join(self) -> None:
        conn = self.next_conn
        self.next_conn += 1
        new = self.chat.start(conn, question=None)
        assert new.conversation_uuid is not None
        self.convs[conn] = new.conversation_uuid
        self.waiting.append(conn)

    @precondition(lambda self: self.waiting)
    @rule(index=st.integers(min_value=0, max_value=50))
    def engage(self, index: int) -> None:
        conn = self._waiting_conn(index)
        entry = self.chat.engine._conversations[self.convs[conn]].queue_uuid
        self.chat.engage(A1, entry)
        self.waiting.remove(conn)

    @precondition(lambda self: self.waiting)
    @rule(index=st.integers(min_value=0, max_value=50))
    def abandon(self, index: int) -> None:
        conn = self._waiting_conn(index)
        self.chat.close(conn, self.convs[conn])
        self.waiting.remove(conn)

    @precondition(lambda self: self.waiting)
    @rule(index=st.integers(min_value=0, max_value=50))
    def vanish(self, index: int) -> None:
        conn = self._waiting_conn(index)
        self.chat.disconnect(conn)
        self.waiting.remove(conn)

    @rule()
    def flush(self) -> None:
        out = self.chat.tick(1.0)
        pushed = Counter(r for d in out if d.frame.event_type is EventType.QUEUE_POSITION for r in d.recipients)
        assert all(count == 1 for count in pushed.values())
        for place, conn in enumerate(self.waiting, 1):
            frames = [f for f in self.chat.inbox[conn] if f.event_type is EventType.QUEUE_POSITION]
            last = frames[-1].event_queue_position
            assert last is not None
            assert last.position == place, f"customer {conn} was told {last.position}, is {place}"

    @precondition(lambda self: self.waiting)
    @rule(index=st.integers(min_value=0, max_value=50))
    def check(self, index: int) -> None:
        conn = self._waiting_conn(index)
        self.chat.send(conn, {"type": "check queue position", "conversation_uuid": self.convs[conn]})
        reply = self.chat.inbox[conn][-1].event_queue_position
        assert reply is not None
        assert reply.position == self.waiting.index(conn) + 1

    @invariant()
    def counts_agree(self) -> None:
        assert self.chat.engine.status()["queues"]["support"]["waiting"] == len(self.waiting)


QueueModel.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_queue_positions_match_a_list_model = QueueModel.TestCase


# ---------------------------------------------------------------------------
# Round-robin invariants under random traffic


@pytest.mark.parametrize("seed", range(4))
def test_round_robin_never_leaves_a_customer_waiting_next_to_a_free_agent(seed: int) -> None:
    rng = random.Random(seed)
    chat = Chat(validate=False, seed=seed, queues=("support", "sales"), max_chats_per_agent=2, reconnect_grace=0)
    engine = chat.engine
    agents: list[int] = []
    customers: dict[int, str] = {}
    next_conn = 100
    for _ in range(250):
        action = rng.random()
        if action < 0.15 or not agents:
            next_conn += 1
            queues = rng.choice([(), ("support",), ("sales",)])
            chat.agent(next_conn, queues=queues)
            agents.append(next_conn)
        elif action < 0.25:
            chat.disconnect(agents.pop(rng.randrange(len(agents))))
        elif action < 0.65:
            next_conn += 1
            new = chat.start(next_conn, question=None, queue_name=rng.choice(["support", "sales"]))
            assert new.conversation_uuid is not None
            customers[next_conn] = new.conversation_uuid
        elif customers:
            conn = rng.choice(list(customers))
            client = engine._conns.get(conn)
            if client is not None and customers[conn] in client.conversations:
                closer = conn
                if rng.random() < 0.5:
                    others = [m.client.conn for m in client.conversations[customers[conn]].present()]
                    closer = next((c for c in others if c != conn and c is not None), conn)
                chat.close(closer, customers.pop(conn))
        chat.tick(rng.random())
        for queue in engine._queues.values():
            assert not (len(queue.line) and len(queue.ring)), "a customer waits while an agent is free"
            assert queue.stats.active >= 0
        for agent in {engine._conns[a] for a in agents}:
            assert 0 <= agent.chats <= 2
            assert agent.chats == sum(1 for c in agent.conversations.values() if c.state.value == "engaged")
    open_count = sum(1 for c in engine._conversations.values() if c.state.value != "closed")
    assert engine.status()["conversations"]["open"] == open_count


# ---------------------------------------------------------------------------
# Random valid frames never break the engine

_HINTS = typing.get_type_hints(ConversationWebsocketMessage)


def _payload_model(key: str) -> type[BaseModel]:
    (model,) = [a for a in typing.get_args(_HINTS[key]) if isinstance(a, type) and issubclass(a, BaseModel)]
    return model


@st.composite
def client_frames(draw: st.DrawFn, conv: str) -> dict[str, Any]:
    """Frames a client could send, of every type and event, aimed at ``conv``
    or elsewhere; payloads drawn from the models (cheaper than a whole envelope)."""
    kind = draw(st.sampled_from(list(FrameType)))
    wire: dict[str, Any] = {"type": kind.value}
    target = draw(st.sampled_from([conv, conv, "0b7c9a52-3f7e-4d0a-9d2e-4a8f6c1e2b3d", None]))
    if target is not None:
        wire["conversation_uuid"] = target
    if kind is FrameType.MESSAGE:
        wire["message"] = message = draw(wire_dicts(ConversationMessage))
        if draw(st.booleans()):
            message["body"] = draw(st.text(min_size=1, max_size=20))
    elif kind is FrameType.EVENT:
        event = draw(st.sampled_from(_CLIENT_EVENTS * 3 + list(EventType)))
        wire["event_type"] = event.value
        for key in EVENT_PAYLOADS[event]:
            if draw(st.integers(0, 9)):  # now and then leave a payload out
                wire[key] = draw(wire_dicts(_payload_model(key)))
        entry = wire.get("event_engage_customer")
        if entry is not None and draw(st.booleans()):
            entry["queue_name"] = "support"
    return wire


_CLIENT_EVENTS = [
    EventType.WEBCHAT_START_CONVERSATION,
    EventType.ENGAGE_CUSTOMER,
    EventType.TYPING,
    EventType.READ_MESSAGE,
    EventType.ADD_COUPON,
    EventType.ADD_ITEM,
    EventType.WEBCHAT_CONTEXT,
    EventType.RRWEB,
    EventType.CONVERSATION_CLOSED,
    EventType.PARTICIPANT_LEFT,
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_frames_never_raise_and_replies_stay_valid(data: st.DataObject) -> None:
    chat = Chat()
    conv = engaged_pair(chat)
    chat.connect(C2)
    chat.agent(A2)
    steps = data.draw(st.lists(st.tuples(st.sampled_from([C1, C1, A1, A1, C2, A2]), client_frames(conv)), max_size=8))
    for conn, wire in steps:
        try:
            frame = decode(orjson.dumps(wire))
        except FrameError:
            continue
        replies = chat.deliver(chat.engine.receive(conn, frame, chat.now), sender=conn)
        if frame.type is FrameType.PING:
            assert [d.recipients for d in replies] == [(conn,)]
        chat.tick(0.7)
