"""Storage (simulator/mock/store, journal, restore) without sockets: an
engine's journal written to a database, read back into a new engine."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from simulator.errors import StoreError
from simulator.mock.engine import Engine, EngineConfig, Routing
from simulator.mock.store import SCHEMA_VERSION, Database, Rows
from simulator.mock.store.migrations import MIGRATIONS
from simulator.protocol import EventType, Frame, FrameType
from tests.engine_harness import A1, C1, C2, C3, Chat, event, of, queue_uuid_of
from tests.test_engine import rrweb_parts


def storing(chat: Chat) -> Rows:
    chat.engine.journal = []
    engine = chat.engine
    return Rows(engine._queues, engine._agents_by_name, engine._customers_by_uuid)


def commit(chat: Chat, rows: Rows, db: Database) -> int:
    journal = chat.engine.journal
    assert journal is not None
    records, chat.engine.journal = journal, []
    db.write(rows.batch(records))
    return len(records)


def restored(db: Database, now: float, **config: object) -> Chat:
    """A new engine (as after a restart) restored from ``db``."""
    chat = Chat(seed=99, **config)  # type: ignore[arg-type]
    chat.now = now
    chat.engine.restore(db.load(closed_limit=100), now)
    return chat


def test_a_restart_brings_back_queue_positions_history_context_and_a_half_streamed_recording(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat(routing=Routing.MANUAL)
    rows = storing(chat)
    first = chat.start(C1).conversation_uuid
    second = chat.start(C2).conversation_uuid
    third = chat.start(C3).conversation_uuid
    assert first and second and third
    chat.agent(A1)
    chat.engage(A1, queue_uuid_of(chat, C1))
    chat.say(C1, first, "my parcel is late", client_id="c-1")
    chat.say(A1, first, "let me look")
    agent_copy = of(chat.take(A1), FrameType.MESSAGE)
    read_uuid = agent_copy[-2].message.conversation_message_uuid  # type: ignore[union-attr]
    chat.send(A1, event("read message", first, event_read_message={"conversation_message_uuid": read_uuid}))
    chat.send(C2, event("webchat context", second, event_webchat_context={"url": "https://shop.test/cart"}))
    init = rrweb_parts("snapshot-" * 50, parts=3, kind="init", index=0)
    for part in init[:2]:  # half of it: part 3 never came
        chat.send(C2, event("rrweb", second, event_rrweb=part))
    before = {uuid: [m.model for m in conv.messages] for uuid, conv in chat.engine._conversations.items()}
    stats = chat.engine._queues["support"].stats
    assert commit(chat, rows, db) > 0
    db.close()

    db = Database(tmp_path / "chat.db")
    after = restored(db, chat.now + 5, routing=Routing.MANUAL)
    engine = after.engine
    assert {uuid: [m.model for m in conv.messages] for uuid, conv in engine._conversations.items()} == before
    assert engine._queues["support"].stats == stats
    # Customers resume: their queue positions are as they were (C2 first, C3 second)
    for conn, conv, position in ((C2, second, 1), (C3, third, 2)):
        frames = after.connect(conn, resume_token=chat.tokens[conn])
        assert of(frames, EventType.NEW_CONVERSATION)[0].conversation_uuid == conv
        assert only_position(frames) == position
    # The customer in the engaged chat gets what it missed since its first message
    since = before[first][1].message_epoch
    frames = after.connect(C1, resume_token=chat.tokens[C1], resume_since=since)
    assert [f.message.body for f in of(frames, FrameType.MESSAGE) if f.message] == ["let me look"]
    # The agent resumes with its token; the read state came back
    frames = after.agent(A1, name="agent-11", resume_token=chat.tokens[A1])
    assert of(frames, EventType.NEW_CONVERSATION)
    conv = engine._conversations[first]
    assert conv.by_uuid[read_uuid].readers == {engine._agents_by_name["agent-11"].arn}
    assert conv.members[engine._agents_by_name["agent-11"]].unread(conv.message_count) == 0
    # A new message is stored after the restored ones, with a fresh uuid
    after.say(C1, first, "thanks")
    assert [m.seq for m in conv.messages] == [1, 2, 3, 4]
    assert len({m.model.conversation_message_uuid for m in conv.messages}) == 4
    # An agent who takes the second customer gets its context and the half-streamed recording
    after.clear()
    after.engage(A1, queue_uuid_of(after, C2))
    frames = after.take(A1)
    context = of(frames, EventType.WEBCHAT_CONTEXT)
    assert context and context[0].event_webchat_context.url == "https://shop.test/cart"  # type: ignore[union-attr]
    assert [f.event_rrweb.data_part for f in of(frames, EventType.RRWEB)] == [1, 2]  # type: ignore[union-attr]
    db.close()


def only_position(frames: list[Frame]) -> int:
    positions = of(frames, EventType.QUEUE_POSITION)
    assert positions, [f.event_type for f in frames]
    payload = positions[-1].event_queue_position
    assert payload is not None and payload.position is not None
    return payload.position


def test_participants_who_do_not_come_back_leave_as_after_any_disconnect(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat()
    rows = storing(chat)
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    commit(chat, rows, db)
    after = restored(db, chat.now, reconnect_grace=10.0)
    assert after.engine._conversations[conv].state.value == "engaged"
    after.tick(11.0)
    assert after.engine._conversations[conv].state.value == "closed"
    assert after.engine._agents_by_name == {}


def test_closed_conversations_and_expired_tokens_stay_closed_and_void(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat()
    rows = storing(chat)
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    assert conv
    chat.close(C1, conv)
    chat.disconnect(C1)  # nothing open: its session ends, the token is void
    commit(chat, rows, db)
    info = db.info()
    assert info["conversations_by_state"]["closed"] == 1
    after = restored(db, chat.now)
    assert after.engine._conversations[conv].state.value == "closed"
    assert after.engine._closed_count == 1
    frames = after.connect(C1, resume_token=chat.tokens[C1])
    assert frames[0].error is not None and frames[0].error.error_code == "resume_failed"


def test_a_seeded_engine_hands_out_no_uuid_twice_across_a_restart(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat()
    rows = storing(chat)
    chat.agent(A1)
    conv = chat.start(C1).conversation_uuid
    commit(chat, rows, db)
    after = Engine(EngineConfig(), rng=random.Random(1234))  # the same seed as the first run
    after.restore(db.load(closed_limit=10), chat.now)
    first_run = {m.model.conversation_message_uuid for m in chat.engine._conversations[conv].messages}
    assert after._uuid() not in {conv, *first_run}


def test_migration_from_an_empty_file_and_from_version_1(tmp_path: Path) -> None:
    fresh = Database(tmp_path / "fresh.db")
    assert (fresh.migrated_from, fresh.version) == (0, SCHEMA_VERSION)
    fresh.close()
    # A file at version 1 (the schema of the first release), with a conversation in it
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO participants (uuid, role, arn, name, resume_token, queues, flags) "
        "VALUES ('p1', 'customer', 'arn:p1', 'Ann', 'tok', '[]', 0)"
    )
    conn.execute(
        "INSERT INTO conversations VALUES ('c1', 'arn:c1', 'support', 'q1', 1, 1764079525000, 1764079525.0, 'p1', "
        '\'{"queue_name": "support", "conversation_participant_name": "Ann"}\', \'queued\', NULL, NULL)'
    )
    conn.execute("INSERT INTO members VALUES ('c1', 'p1', 1764079525000, NULL, NULL, 0)")
    conn.commit()
    conn.close()
    old = Database(path)
    assert (old.migrated_from, old.version) == (1, SCHEMA_VERSION)
    snapshot = old.load(closed_limit=10)
    assert [c.uuid for c in snapshot.conversations] == ["c1"]
    chat = Chat()
    chat.engine.restore(snapshot, 1764079526.0)
    frames = chat.connect(C1, resume_token="tok")
    assert only_position(frames) == 1


def test_a_file_that_cannot_be_a_database_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a webchat-sim database"):
        Database(junk)
    with pytest.raises(StoreError, match="does not exist"):
        Database(tmp_path / "missing" / "x.db")
    with pytest.raises(StoreError, match="is a directory"):
        Database(tmp_path)
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer webchat-sim"):
        Database(newer)


def test_prune_deletes_old_closed_conversations_only_within_its_limit(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat()
    rows = storing(chat)
    chat.agent(A1)
    closed = []
    for conn in range(100, 105):
        conv = chat.start(conn).conversation_uuid
        assert conv
        chat.close(conn, conv)
        closed.append(conv)
        chat.now += 60
    open_conv = chat.start(C1).conversation_uuid
    commit(chat, rows, db)
    cutoff = round((chat.now - 150) * 1000)  # the first three closed before it
    assert db.prune(cutoff, 2) == 2
    assert db.prune(cutoff, 2) == 1
    assert db.prune(cutoff, 2) == 0
    left = {c["conversation_uuid"] for c in db.conversations()}
    assert left == {*closed[3:], open_conv}
    assert db.info()["counts"]["participants"] == 1 + 2 + 1  # the agent, two closed chats' customers, C1


def test_what_memory_evicts_stays_stored_and_a_restart_holds_what_memory_allows(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat(closed_conversations_kept=1)
    rows = storing(chat)
    chat.agent(A1)
    closed = []
    for conn in (C1, C2, C3):
        conv = chat.start(conn).conversation_uuid
        assert conv
        chat.say(conn, conv, f"from {conn}")
        chat.close(conn, conv)
        closed.append(conv)
    commit(chat, rows, db)
    assert [c for c in closed if c in chat.engine._conversations] == closed[-1:]  # memory kept the latest only
    assert [c["conversation_uuid"] for c in db.conversations()] == closed  # storage all three
    after = Chat(closed_conversations_kept=1)
    after.engine.restore(db.load(closed_limit=1), chat.now)
    assert [c for c in closed if c in after.engine._conversations] == closed[-1:]
    assert after.engine._closed_count == 3


def test_a_new_rrweb_init_replaces_the_stored_recording_and_a_close_clears_it(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat(routing=Routing.MANUAL)
    rows = storing(chat)
    conv = chat.start(C1).conversation_uuid
    assert conv
    for part in rrweb_parts("first-" * 30, parts=3, kind="init", index=0):
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    commit(chat, rows, db)
    assert db.info()["counts"]["rrweb_frames"] == 3
    for part in rrweb_parts("events-" * 10, parts=2, kind="events", index=1):
        chat.send(C1, event("rrweb", conv, event_rrweb=part))
    commit(chat, rows, db)
    assert db.info()["counts"]["rrweb_frames"] == 5  # appended, not rewritten
    second = rrweb_parts("second-" * 30, parts=2, kind="init", index=2)
    chat.send(C1, event("rrweb", conv, event_rrweb=second[0]))
    commit(chat, rows, db)
    assert db.info()["counts"]["rrweb_frames"] == 1  # a new recording started
    frames = db.load(closed_limit=10).rrweb[conv]
    assert [f.event_rrweb.data for f in frames if f.event_rrweb] == [second[0]["data"]]
    chat.close(C1, conv)
    commit(chat, rows, db)
    assert db.info()["counts"]["rrweb_frames"] == 0


def test_closed_conversations_restored_in_parts_make_the_same_state_as_at_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    chat = Chat()
    rows = storing(chat)
    chat.agent(A1)
    for conn in range(100, 107):
        conv = chat.start(conn).conversation_uuid
        assert conv
        chat.say(conn, conv, f"from {conn}")
        if conn != 106:
            chat.close(conn, conv)
        chat.now += 1
    commit(chat, rows, db)
    whole = Chat(seed=5)
    whole.engine.restore(db.load(closed_limit=100), chat.now)
    parts = Chat(seed=5)
    parts.engine.restore(db.load_open(), chat.now)
    assert len(parts.engine._conversations) == 1
    pending = db.closed_to_load(100)
    assert len(pending) == 6
    for i in range(0, 6, 4):
        parts.engine.restore_closed(db.load_closed(pending[i : i + 4]))
    parts.engine.restore_finished()

    def view(engine: Engine) -> list[tuple[str, str, list[object]]]:
        return [(u, c.state.value, [m.model for m in c.messages]) for u, c in engine._conversations.items()]

    assert sorted(view(parts.engine)) == sorted(view(whole.engine))
    assert list(parts.engine._retention._closed) == list(whole.engine._retention._closed) == pending
    # The agent is one participant in both its open and its closed chats
    agent = parts.engine._agents_by_name["agent-11"]
    assert all(agent in c.members for c in parts.engine._conversations.values())


def test_db_commands_leave_an_empty_file_or_a_directory_alone(tmp_path: Path) -> None:
    empty = tmp_path / "notes.txt"
    empty.touch()
    with pytest.raises(StoreError, match="an empty file, not a webchat-sim database"):
        Database(empty, create=False)
    assert empty.stat().st_size == 0
    assert not (tmp_path / "notes.txt-wal").exists()
    with pytest.raises(StoreError, match="is a directory"):
        Database(tmp_path, create=False)
