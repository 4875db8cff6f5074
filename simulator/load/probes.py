"""The probes of ``webchat-sim check``: one per row of the dialect
(docs/protocol.md, section 3) and per rule of sections 4, 5 and 7 that a
client can see.

A probe is a function of a :class:`~simulator.load.probe_kit.Run`: it drives
the load generator's own sessions (customers, and its own agents: the
backend's autopilot is not relied on) and raises
:class:`~simulator.load.probe_kit.ProbeFailed` with the exact reason when the
backend departs from the dialect. :data:`PROBES` lists them in running order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import (
    ConversationEventRRWeb,
    ErrorCode,
    EventType,
    Frame,
    FrameType,
    RRWebType,
    TransportStatus,
)
from .probe_kit import (
    ProbeFailed,
    Run,
    WatchedAgent,
    WatchedCustomer,
    absent,
    barrier,
    error_code,
    expect,
    expect_at,
    is_error,
    message_frame,
    require,
    take,
)

__all__ = ["PROBES", "Probe"]


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    row: str
    """Where the rule is: a row of section 3 (``3.4``) or a section (``§7``)."""
    doc: str
    run: Callable[[Run], None]
    needs_chat: bool = True
    """Skipped when ``start`` failed (every chat starts that way)."""


def _event(kind: EventType, conversation: str | None = None) -> Callable[[Frame], bool]:
    def match(frame: Frame) -> bool:
        return frame.event_type is kind and frame.error is None and conversation in (None, frame.conversation_uuid)

    return match


def _send(session: WatchedCustomer | WatchedAgent, frame: Frame | bytes) -> None:
    conn = session.conn
    if conn is None:
        raise ProbeFailed(f"{session.role} is not connected")
    conn.send(frame)


def _position(customer: WatchedCustomer, what: str) -> tuple[int, bool | None]:
    """Ask (row 2) and return the answer's position and ``available``."""
    conversation = customer.conversation_uuid or ""
    mark = customer.mark
    _send(customer, customer.dialect.check_queue_position(conversation))
    frame = expect(customer, _event(EventType.QUEUE_POSITION, conversation), f"the queue position ({what})", since=mark)
    payload = frame.event_queue_position
    require(payload is not None and payload.position is not None, f"queue position ({what}) without a position")
    assert payload is not None and payload.position is not None
    return payload.position, payload.available


# -- The probes ---------------------------------------------------------------


def probe_ping(run: Run) -> None:
    barrier(run.customer(start=False))
    barrier(run.agent(status=False))


def probe_agent_connect(run: Run) -> None:
    agent = run.agent()  # waits for the queue status update of its connect
    frame = expect(agent, _event(EventType.QUEUE_STATUS_UPDATE), "the queue status update of its connect")
    status = frame.event_queue_status_update
    require(status is not None, "queue status update without event_queue_status_update")
    assert status is not None
    require(status.queue_name == run.queue, f"queue status update of queue {status.queue_name!r}, not {run.queue!r}")
    require(agent.dialect.resume_token(frame) is not None, "the agent's first queue status update has no resume_token")


def probe_start(run: Run) -> None:
    question = run.faker.question()[1]
    customer = run.customer(question=question)
    conversation = customer.conversation_uuid or ""
    start = expect(customer, customer.dialect.is_new_conversation, "new conversation")
    summary = start.event_new_conversation
    require(summary is not None, "new conversation without event_new_conversation")
    require(customer.resume_token is not None, "new conversation without resume_token")
    require(start.conversation_arn is not None, "new conversation without conversation_arn")
    msg = expect(customer, message_frame(conversation), "the question as a message frame").message
    assert msg is not None
    require(msg.body == question, f"the first message is not the question: {msg.body!r}")
    require(msg.conversation_message_uuid is not None, "the question's message has no conversation_message_uuid")
    require(msg.author_conversation_participant_arn == customer.my_arn, "the question's author is not the customer")
    expect(customer, _event(EventType.QUEUE_POSITION, conversation), "queue position after the start")


def probe_queue_position(run: Run) -> None:
    customers = [run.customer() for _ in range(3)]
    positions = [_position(c, f"customer {n}") for n, c in enumerate(customers, 1)]
    first = positions[0][0]
    require(first >= 1, f"the first waiting customer is at position {first}, expected 1 or more")
    got = [p for p, _ in positions]
    want = [first, first + 1, first + 2]
    require(got == want, f"positions of three customers in a row: {got}, expected {want}")
    second, third = customers[1], customers[2]
    mark = second.mark
    customers[0].close_chat()  # an abandon: the two behind move up
    position, _ = _position(customers[0], "after it closed")
    require(position == -1, f"a closed conversation's queue position is {position}, expected -1")
    expect(
        second,
        lambda f: (
            f.event_type is EventType.QUEUE_POSITION
            and f.event_queue_position is not None
            and f.event_queue_position.position == first
        ),
        f"a pushed queue position {first} once the customer ahead left",
        since=mark,
    )
    got = [_position(second, "second, moved up")[0], _position(third, "third, moved up")[0]]
    require(got == [first, first + 1], f"positions after the first customer left: {got}, expected {[first, first + 1]}")


def probe_available(run: Run) -> None:
    customer = run.customer()
    _, available = _position(customer, "no agent online")
    require(available is False, f"available is {available} with no agent online, expected false")
    mark = customer.mark
    agent = run.agent()
    if run.manual:  # still waiting: the flip is pushed
        expect(
            customer,
            lambda f: (
                f.event_type is EventType.QUEUE_POSITION
                and f.event_queue_position is not None
                and f.event_queue_position.available is True
            ),
            "a pushed queue position with available true once an agent connected",
            since=mark,
        )
    _, available = _position(customer, "an agent online")
    require(available is True, f"available is {available} with an agent online, expected true")
    del agent


def probe_routing(run: Run) -> None:
    agent = run.agent()
    mark = agent.mark
    customer = run.customer()
    conversation = customer.conversation_uuid or ""
    take(agent, conversation)
    dialect = agent.dialect
    new = expect(
        agent,
        lambda f: dialect.is_new_conversation(f) and dialect.conversation_of(f) == conversation,
        "new conversation",
        since=mark,
    )
    require(new.event_new_conversation is not None, "the agent's new conversation has no summary")
    entry = expect(agent, _event(EventType.QUEUE_NEW_MEMBER), "queue new member", since=mark).event_queue_new_member
    require(
        entry is not None and entry.conversation_webchat_queue_uuid is not None,
        "queue new member without conversation_webchat_queue_uuid",
    )
    customer.wait_for_agent()
    join = expect(customer, _event(EventType.PARTICIPANT_JOIN, conversation), "participant join")
    joined = join.event_participant_join_participant
    require(
        joined is not None and joined.conversation_participant_arn in (agent.my_arn, None),
        "the customer's participant join does not name the agent",
    )
    expect(agent, _event(EventType.PARTICIPANT_JOIN, conversation), "its own participant join", since=mark)
    expect(agent, message_frame(conversation), "the stored question, replayed to the joining agent", since=mark)
    position, _ = _position(customer, "engaged")
    require(position == -1, f"an engaged customer's queue position is {position}, expected -1")


def probe_participants(run: Run) -> None:
    agent, customer, conversation = run.pair()
    customer_arn = customer.my_arn
    mark = agent.mark
    customer.disconnect()

    def status_of(f: Frame, status: str) -> bool:
        summary = f.event_participant_update
        if f.event_type is not EventType.PARTICIPANT_UPDATE or summary is None or f.conversation_uuid != conversation:
            return False
        return any(
            p.conversation_participant_arn == customer_arn and p.status == status for p in summary.participants or ()
        )

    expect(agent, lambda f: status_of(f, "disconnected"), "participant update: the customer disconnected", since=mark)
    customer.reconnect()
    expect(agent, lambda f: status_of(f, "active"), "participant update: the customer is back", since=mark)
    mark, customer_mark = agent.mark, customer.mark
    _send(agent, agent.dialect.leave(conversation))
    for session, since in ((agent, mark), (customer, customer_mark)):
        left = expect(session, _event(EventType.PARTICIPANT_LEFT, conversation), "participant left", since=since)
        who = left.event_participant_left_participant
        require(who is not None and who.left_dts is not None, "participant left without the participant's left_dts")
    closed = expect(
        customer,
        _event(EventType.CONVERSATION_CLOSED, conversation),
        "conversation closed once no agent remained",
        since=customer_mark,
    )
    summary = closed.event_conversation_closed
    require(summary is not None and summary.closed is True, "conversation closed without closed: true")


def probe_messages(run: Run) -> None:
    agent, customer, conversation = run.pair()
    mark = agent.mark
    cid = customer.say("Where is my parcel?")
    ack = expect(customer, message_frame(conversation, client_message_id=cid), "the acknowledgement").message
    assert ack is not None
    for field in (
        "conversation_message_uuid",
        "author_conversation_participant_arn",
        "message_dts",
        "message_epoch",
        "transport_statuses",
    ):
        require(getattr(ack, field) is not None, f"the acknowledged message has no {field}")
    require(ack.author_conversation_participant_arn == customer.my_arn, "the message's author is not its sender")
    got = expect(
        agent, message_frame(conversation, uuid=ack.conversation_message_uuid), "the customer's message", since=mark
    ).message
    assert got is not None
    require(got.body == "Where is my parcel?", f"the agent got the body {got.body!r}")
    expect(agent, _event(EventType.NEW_MESSAGE, conversation), "new message (summary) for the agent", since=mark)
    statuses = {s.conversation_participant_arn: s.status for s in ack.transport_statuses or ()}
    require(
        statuses.get(agent.my_arn) == TransportStatus.SENT,
        f"transport status of the connected agent: {statuses.get(agent.my_arn)}, expected sent",
    )
    customer_mark = customer.mark
    reply = agent.reply(conversation, "It ships tomorrow.")
    answer = expect(
        customer, message_frame(conversation, client_message_id=reply), "the agent's reply", since=customer_mark
    ).message
    assert answer is not None
    require(
        answer.message_epoch is not None and ack.message_epoch is not None and answer.message_epoch > ack.message_epoch,
        "message_epoch did not increase from one message to the next",
    )


def probe_resend(run: Run) -> None:
    agent, customer, conversation = run.pair()
    mark, customer_mark = agent.mark, customer.mark
    cid = run.faker.client_message_id()
    frame = customer.dialect.message(conversation, "Sent twice", cid, "en")
    _send(customer, frame)
    first = expect(
        customer, message_frame(conversation, client_message_id=cid), "the acknowledgement", since=customer_mark
    )
    again = customer.mark
    _send(customer, frame)
    second = expect(
        customer, message_frame(conversation, client_message_id=cid), "the answer to the resend", since=again
    )
    uuids = [f.message.conversation_message_uuid for f in (first, second) if f.message is not None]
    require(uuids[0] == uuids[1], "a resend (same client_message_id) was stored as a second message")
    barrier(agent)
    copies = [f for f in agent.log[mark:] if message_frame(conversation, client_message_id=cid)(f)]
    require(len(copies) == 1, f"the agent got {len(copies)} copies of a message sent twice, expected 1")


def probe_typing(run: Run) -> None:
    agent, customer, conversation = run.pair()
    for author, other in ((customer, agent), (agent, customer)):
        mark, own = other.mark, author.mark
        _send(author, author.dialect.typing(conversation, "Hel"))
        got = expect(other, _event(EventType.TYPING, conversation), f"the {author.role}'s typing", since=mark)
        typing = got.event_typing
        require(typing is not None and typing.value == "Hel", f"typing relayed with value {typing and typing.value!r}")
        assert typing is not None
        require(typing.author_conversation_participant_arn == author.my_arn, "typing relayed without its author's ARN")
        absent(
            author,
            _event(EventType.TYPING, conversation),
            f"typing echoed to its author (the {author.role})",
            since=own,
        )


def probe_read_receipt(run: Run) -> None:
    agent, customer, conversation = run.pair()
    mark = agent.mark
    cid = agent.reply(conversation, "Your order is on its way.")
    msg = expect(customer, message_frame(conversation, client_message_id=cid), "the agent's message").message
    assert msg is not None and msg.conversation_message_uuid is not None
    _send(customer, customer.dialect.read(conversation, msg.conversation_message_uuid))
    updated = expect(
        agent,
        lambda f: (
            f.event_type is EventType.UPDATED_MESSAGE
            and f.event_updated_message is not None
            and f.event_updated_message.conversation_message_uuid == msg.conversation_message_uuid
        ),
        "updated message for its author",
        since=mark,
    ).event_updated_message
    assert updated is not None
    statuses = {s.conversation_participant_arn: s.status for s in updated.transport_statuses or ()}
    require(
        statuses.get(customer.my_arn) == TransportStatus.READ,
        f"updated message: the reader's transport status is {statuses.get(customer.my_arn)}, expected read",
    )
    read = expect(agent, _event(EventType.READ_MESSAGE, conversation), "read message", since=mark).event_read_message
    require(read is not None and read.message_epoch is not None, "read message without message_epoch")


def probe_coupon_item(run: Run) -> None:
    agent, customer, conversation = run.pair()
    mark = customer.mark
    _send(agent, agent.dialect.add_coupon(conversation, "CHECK10"))
    coupon = expect(customer, _event(EventType.ADD_COUPON, conversation), "add coupon", since=mark).event_add_coupon
    require(coupon is not None and coupon.coupon_code == "CHECK10", "add coupon relayed without its coupon_code")
    assert coupon is not None
    require(coupon.agent_arn == agent.my_arn, "add coupon without the agent's ARN")
    items = run.faker.cart_items(2)
    _send(agent, agent.dialect.add_items(conversation, items))
    got = expect(customer, _event(EventType.ADD_ITEM, conversation), "add item", since=mark).event_add_item
    require(got is not None and len(got.items or ()) == len(items), "add item relayed with another number of items")
    own = customer.mark
    _send(customer, customer.dialect.add_coupon(conversation, "SELF"))
    refused = expect(customer, is_error(), "the refusal of a customer's add coupon", since=own)
    require(
        error_code(refused) == ErrorCode.FORBIDDEN_FOR_ROLE,
        f"a customer's add coupon answered {error_code(refused)}, expected forbidden_for_role",
    )


def probe_webchat_context(run: Run) -> None:
    agent, customer, conversation = run.pair()
    mark = agent.mark
    context = run.faker.webchat_context()
    _send(customer, customer.dialect.webchat_context(conversation, context))
    got = expect(
        agent, _event(EventType.WEBCHAT_CONTEXT, conversation), "webchat context", since=mark
    ).event_webchat_context
    require(
        got is not None and (got.url, got.cart_id, got.ucacid) == (context.url, context.cart_id, context.ucacid),
        "webchat context relayed with other values",
    )


def probe_rrweb(run: Run) -> None:
    agent, customer, conversation = run.pair()
    mark, own = agent.mark, customer.mark
    chunks = customer.stream_recording(events=3, chunk_size=512)
    barrier(customer)
    errors = [f for f in customer.log[own:] if f.error is not None]
    require(
        not errors,
        f"a valid rrweb part was refused: {errors[0].error and errors[0].error.error_code}" if errors else "",
    )
    since = mark
    for n in range(chunks):
        since = (
            expect_at(agent, _event(EventType.RRWEB, conversation), f"rrweb part {n + 1} of {chunks}", since=since) + 1
        )
    data = "bad"
    bad = ConversationEventRRWeb(
        type=RRWebType.INIT,
        event_index=99,
        data=data,
        data_part=1,
        data_total_parts=1,
        data_sha256="0" * 64,
        data_total_sha256=hashlib.sha256(data.encode()).hexdigest(),
    )
    relayed, own = agent.mark, customer.mark
    _send(customer, customer.dialect.rrweb(conversation, bad))
    refused = expect(customer, is_error(), "the refusal of an rrweb part with a wrong data_sha256", since=own)
    require(
        error_code(refused) == ErrorCode.RRWEB_HASH_MISMATCH,
        f"an rrweb part with a wrong hash answered {error_code(refused)}, expected rrweb_hash_mismatch",
    )
    absent(
        agent,
        lambda f: f.event_rrweb is not None and f.event_rrweb.event_index == 99,
        "an rrweb part with a wrong hash was relayed to the agent",
        since=relayed,
    )


def probe_close(run: Run) -> None:
    for closer in ("customer", "agent"):
        agent, customer, conversation = run.pair()
        marks = {"agent": agent.mark, "customer": customer.mark}
        if closer == "customer":
            customer.close_chat()
        else:
            agent.close_chat(conversation)
        for session in (agent, customer):
            frame = expect(
                session,
                _event(EventType.CONVERSATION_CLOSED, conversation),
                f"conversation closed (closed by the {closer})",
                since=marks[session.role],
            )
            summary = frame.event_conversation_closed
            require(
                summary is not None and summary.closed is True,
                f"conversation closed by the {closer} without closed: true",
            )
        own = customer.mark
        _send(customer, customer.dialect.message(conversation, "Still there?", run.faker.client_message_id(), "en"))
        refused = expect(customer, is_error(), "the refusal of a message into a closed conversation", since=own)
        require(
            error_code(refused) == ErrorCode.CONVERSATION_CLOSED,
            f"a message into a closed conversation answered {error_code(refused)}, expected conversation_closed",
        )


def probe_resume(run: Run) -> None:
    agent, customer, conversation = run.pair()
    customer.say("Before the drop")
    seen = {f.message.conversation_message_uuid for f in customer.log if message_frame(conversation)(f) and f.message}
    since = customer.last_epoch
    customer.disconnect()
    sent = [agent.reply(conversation, f"While you were away ({n})") for n in (1, 2)]
    mark = customer.mark
    customer.reconnect()  # token and since; waits for new conversation, then a ping
    replayed = [f.message for f in customer.log[mark:] if message_frame(conversation)(f) and f.message is not None]
    ids = [m.conversation_message_uuid for m in replayed]
    twice = {i for i in ids if ids.count(i) > 1} | (set(ids) & seen)
    require(not twice, f"{len(twice)} message(s) replayed twice or already seen before since={since}")
    got = {m.client_message_id for m in replayed}
    lost = [cid for cid in sent if cid not in got]
    require(not lost, f"{len(lost)} of the {len(sent)} messages sent during the drop were not replayed")
    older = [m for m in replayed if since is not None and m.message_epoch is not None and m.message_epoch <= since]
    require(not older, f"{len(older)} replayed message(s) not newer than since")


def probe_isolation(run: Run) -> None:
    agent, victim, conversation = run.pair()
    cid = agent.reply(conversation, "Private: your code is 4711")
    secret = expect(victim, message_frame(conversation, client_message_id=cid), "the agent's message").message
    assert secret is not None and secret.conversation_message_uuid is not None
    intruder = run.customer()
    victim_mark, agent_mark, own = victim.mark, agent.mark, intruder.mark
    body = "intruder " + uuid.uuid4().hex
    d = intruder.dialect
    attempts = [
        ("message", d.message(conversation, body, run.faker.client_message_id(), "en")),
        ("typing", d.typing(conversation, body)),
        ("read message", d.read(conversation, secret.conversation_message_uuid)),
        ("check queue position", d.check_queue_position(conversation)),
        ("conversation closed", d.close_chat(conversation)),
    ]
    for what, frame in attempts:
        mark = intruder.mark
        _send(intruder, frame)
        refused = expect(intruder, is_error(), f"the refusal of a {what} into another's conversation", since=mark)
        require(
            error_code(refused) == ErrorCode.NOT_A_PARTICIPANT,
            f"a {what} into another's conversation answered {error_code(refused)}, expected not_a_participant",
        )
    for session, since in ((victim, victim_mark), (agent, agent_mark)):
        absent(
            session,
            lambda f: (
                f.conversation_uuid == conversation
                and f.error is None
                and (body in f.model_dump_json() or f.event_type is EventType.CONVERSATION_CLOSED)
            ),
            f"a frame of another customer leaked into the conversation (seen by the {session.role})",
            since=since,
        )
    leaked = [f for f in intruder.log[own:] if "4711" in f.model_dump_json()]
    require(not leaked, "the intruder received content of another's conversation")


_BAD_INPUTS: tuple[tuple[str, bytes, ErrorCode], ...] = (
    ("text that is not JSON", b"{not json", ErrorCode.INVALID_JSON),
    ("a JSON array", b"[1, 2]", ErrorCode.NOT_OBJECT),
    ("a frame without type", b'{"conversation_uuid": "x"}', ErrorCode.MISSING_FIELD),
    ("an unknown type", b'{"type": "teleport"}', ErrorCode.INVALID_ENUM),
    (
        "a number for a string",
        b'{"type": "message", "conversation_uuid": 5, "message": {"body": "x"}}',
        ErrorCode.INVALID_TYPE,
    ),
    (
        "a string for an integer",
        b'{"type": "event", "event_type": "queue position", "event_queue_position": {"position": "2"}}',
        ErrorCode.INVALID_TYPE,
    ),
)


def probe_bad_input(run: Run) -> None:
    customer = run.customer()
    for what, raw, code in _BAD_INPUTS:
        mark = customer.mark
        _send(customer, raw)
        refused = expect(customer, is_error(), f"the error frame for {what}", since=mark)
        require(error_code(refused) == code, f"{what} answered {error_code(refused)}, expected {code}")
    mark = customer.mark
    foreign = str(uuid.uuid4())
    _send(customer, customer.dialect.message(foreign, "Hello?", run.faker.client_message_id(), "en"))
    refused = expect(customer, is_error(), "the error frame for a message into an unknown conversation", since=mark)
    require(
        error_code(refused) == ErrorCode.NOT_A_PARTICIPANT,
        f"a message into an unknown conversation answered {error_code(refused)}, expected not_a_participant",
    )
    barrier(customer)  # still connected, still answered


def probe_oversized(run: Run) -> None:
    customer = run.customer(start=False)
    mark = customer.mark
    _send(customer, b'{"type": "ping", "padding": "' + b"x" * 256 * 1024 + b'"}')
    conn = customer.conn
    assert conn is not None
    try:
        expect(
            customer,
            lambda f: f.error is not None or f.type is FrameType.PING,
            "an answer to a 256 KiB frame",
            since=mark,
        )
    except ProbeFailed:
        if not conn.closed:
            raise
    if conn.closed:
        require(conn.close_code == 1009, f"a 256 KiB frame closed the connection with {conn.close_code}, expected 1009")
        return
    frame = next(f for f in customer.log[mark:] if f.error is not None or f.type is FrameType.PING)
    require(frame.error is not None, "a 256 KiB frame was accepted (answered as a ping)")


PROBES: tuple[Probe, ...] = (
    Probe("ping", "3.13", "a ping frame is answered with a ping frame", probe_ping, needs_chat=False),
    Probe(
        "agent connect",
        "§4.1",
        "an agent gets its queue status update (with a resume token) on connect",
        probe_agent_connect,
        needs_chat=False,
    ),
    Probe("start", "3.1", "webchat start conversation: new conversation, the question, queue position", probe_start),
    Probe(
        "queue position",
        "3.2",
        "positions 1, 2, 3 in a row; -1 once closed; pushed when one ahead leaves",
        probe_queue_position,
    ),
    Probe("available", "§7", "available is false without agents, true once one is online", probe_available),
    Probe("routing", "3.3", "queue new member; the agent gets the chat; participant join on both sides", probe_routing),
    Probe(
        "participants",
        "3.11-12",
        "participant update on drop and return; participant left closes the chat",
        probe_participants,
    ),
    Probe("messages", "3.4", "a message is stamped and delivered to every participant", probe_messages),
    Probe("resend", "3.4", "a resend with the same client_message_id is not a second message", probe_resend),
    Probe("typing", "3.5", "typing reaches the other side and is never echoed to its author", probe_typing),
    Probe("read receipt", "3.6", "read message gives the author updated message (status read)", probe_read_receipt),
    Probe(
        "coupon and item",
        "3.7",
        "add coupon and add item reach the customer; a customer may not send them",
        probe_coupon_item,
    ),
    Probe("webchat context", "3.8", "webchat context reaches the agent", probe_webchat_context),
    Probe("rrweb", "3.9", "rrweb parts reach the agent; a wrong hash is refused and not relayed", probe_rrweb),
    Probe("close", "3.10", "either side closes; both get conversation closed; later messages are refused", probe_close),
    Probe("resume", "§4.3", "resume with token and since: nothing lost, nothing twice", probe_resume),
    Probe("isolation", "§3", "frames into another's conversation are refused and leak nothing", probe_isolation),
    Probe("bad input", "§5", "bad frames get the documented error frames; the connection stays", probe_bad_input),
    Probe(
        "oversized frame",
        "§4.5",
        "a frame over the limit gets an error frame or close 1009",
        probe_oversized,
        needs_chat=False,
    ),
)
