"""``serve --db``: real server processes killed and restarted (127.0.0.1, random
ports, bounded in time): nothing a client saw acknowledged is lost, nothing
comes back twice; waiting customers, open chats and recordings come back."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from simulator.load.mockproc import MockProcess
from simulator.mock.store import Database
from tests.cli import run_cli
from tests.test_engine import rrweb_parts

SERVE = ["--agents", "0", "--rate", "5000", "--burst", "5000", "--max-chats-per-agent", "20", "--reconnect-grace", "60"]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health(mock: MockProcess) -> dict[str, Any]:
    with _NO_PROXY.open(mock.http + "/healthz", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


@asynccontextmanager
async def ws(url: str, query: str) -> AsyncIterator[ClientConnection]:
    async with connect(f"{url}?{query}", open_timeout=10, close_timeout=1, max_size=None) as conn:
        yield conn


async def frames_until(conn: ClientConnection, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Frames received until (and with) the first one ``predicate`` accepts."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = orjson.loads(await conn.recv())
            got.append(frame)
            if predicate(frame):
                return got


def start_frame(name: str, question: str | None = None) -> str:
    entry: dict[str, Any] = {"conversation_participant_name": name}
    if question:
        entry["question"] = question
    frame = {"type": "event", "event_type": "webchat start conversation", "event_engage_customer": entry}
    return orjson.dumps(frame).decode()


def message_frame(conv: str, client_id: str, body: str) -> str:
    return orjson.dumps(
        {"type": "message", "conversation_uuid": conv, "message": {"body": body, "client_message_id": client_id}}
    ).decode()


def is_kind(kind: str) -> Any:
    return lambda f: f.get("event_type") == kind or (kind == "ping" and f.get("type") == "ping")


async def replay(url: str, query: str) -> list[dict[str, Any]]:
    """Resume with ``query`` and return everything replayed (up to a ping's answer)."""
    async with ws(url, query) as conn:
        await conn.send('{"type": "ping"}')
        return await frames_until(conn, is_kind("ping"))


@dataclass
class Customer:
    name: str
    conv: str = ""
    token: str = ""
    acked: dict[str, str] = field(default_factory=dict)  # client_message_id -> conversation_message_uuid


async def load_until_killed(
    mock: MockProcess, customers: int, agents: int, acks_before_kill: int
) -> tuple[list[Customer], dict[str, str]]:
    """Customers and agents chatting as fast as acknowledgements come back;
    the server is killed with SIGKILL in the middle. Returns what each saw acknowledged."""
    url = mock.url
    agent_acks: dict[str, str] = {}  # agent's client_message_id -> conversation_message_uuid
    people = [Customer(f"Customer {i}") for i in range(customers)]
    total = 0
    killed = asyncio.Event()

    def count() -> None:
        nonlocal total
        total += 1
        if total >= acks_before_kill and not killed.is_set():
            mock.proc.send_signal(signal.SIGKILL)
            killed.set()

    async def agent(k: int) -> None:
        sent = 0
        async with ws(url, f"role=agent&name=agent-{k}&queues=support") as conn:
            await conn.send('{"type": "ping"}')
            await frames_until(conn, is_kind("ping"))
            ready.release()
            try:
                async for raw in conn:
                    frame = orjson.loads(raw)
                    message = frame.get("message")
                    if frame.get("type") != "message" or not message:
                        continue
                    client_id = message.get("client_message_id") or ""
                    if client_id.startswith(f"a{k}-"):
                        agent_acks[client_id] = message["conversation_message_uuid"]
                        count()
                    elif client_id.startswith("c"):
                        sent += 1
                        await conn.send(message_frame(frame["conversation_uuid"], f"a{k}-{sent}", "on it"))
            except (ConnectionClosed, TimeoutError):
                pass

    async def customer(person: Customer) -> None:
        async with ws(url, f"role=customer&name={person.name.replace(' ', '+')}") as conn:
            await conn.send(start_frame(person.name))
            new = (await frames_until(conn, is_kind("new conversation")))[-1]
            person.conv, person.token = new["conversation_uuid"], new["resume_token"]
            await frames_until(conn, is_kind("participant join"))
            n = 0
            try:
                while not killed.is_set():
                    n += 1
                    client_id = f"c-{person.name}-{n}"
                    await conn.send(message_frame(person.conv, client_id, f"message {n}"))
                    while True:  # one in flight: wait for its acknowledgement
                        frame = orjson.loads(await asyncio.wait_for(conn.recv(), 10))
                        message = frame.get("message") or {}
                        if frame.get("type") == "message" and message.get("client_message_id") == client_id:
                            person.acked[client_id] = message["conversation_message_uuid"]
                            count()
                            break
            except (ConnectionClosed, TimeoutError):
                pass

    ready = asyncio.Semaphore(0)
    async with asyncio.timeout(60):
        agent_tasks = [asyncio.create_task(agent(k)) for k in range(agents)]
        for _ in range(agents):
            await ready.acquire()
        await asyncio.gather(*(customer(p) for p in people))
        await asyncio.gather(*agent_tasks)
    assert killed.is_set(), f"only {total} acknowledgements before the run ended"
    return people, agent_acks


def test_kill_9_in_the_middle_of_a_load_run_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = MockProcess(["--db", str(db), *SERVE])
    try:
        people, agent_acks = asyncio.run(load_until_killed(first, customers=8, agents=2, acks_before_kill=400))
        assert first.proc.wait(10) == -signal.SIGKILL
    finally:
        first.stop()
    assert sum(len(p.acked) for p in people) > 100 and len(agent_acks) > 100
    second = MockProcess(["--db", str(db), *SERVE])
    try:
        restored = health(second)["store"]["restored"]
        assert restored["open"] == 8

        async def read_back() -> dict[str, list[dict[str, Any]]]:
            found = {}
            for p in people:
                frames = await replay(second.url, f"role=customer&token={p.token}")
                found[p.name] = [f["message"] for f in frames if f.get("type") == "message"]
            return found

        found = asyncio.run(read_back())
    finally:
        second.stop()
    seen_agent_ids: dict[str, int] = {}
    for p in people:
        messages = found[p.name]
        uuids = [m["conversation_message_uuid"] for m in messages]
        assert len(uuids) == len(set(uuids)), f"{p.name}: a message replayed twice"
        by_client_id = {m["client_message_id"]: m["conversation_message_uuid"] for m in messages}
        assert len(by_client_id) == len(messages), f"{p.name}: a client_message_id stored twice"
        missing = {cid for cid, uuid in p.acked.items() if by_client_id.get(cid) != uuid}
        assert not missing, f"{p.name}: acknowledged, then lost: {sorted(missing)[:5]}"
        for cid in by_client_id:
            if cid.startswith("a"):
                seen_agent_ids[cid] = seen_agent_ids.get(cid, 0) + 1
    lost = {cid for cid in agent_acks if cid not in seen_agent_ids}
    assert not lost, f"agents' messages acknowledged, then lost: {sorted(lost)[:5]}"


def test_a_restart_brings_back_waiting_customers_open_chats_and_a_half_streamed_recording(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    args = ["--db", str(db), *SERVE[:-4], "--max-chats-per-agent", "1", "--reconnect-grace", "60"]

    async def before(url: str) -> dict[str, Any]:
        state: dict[str, Any] = {}
        async with ws(url, "role=agent&name=Alice&queues=support") as alice:
            first = await frames_until(alice, lambda f: "resume_token" in f)
            state["alice"] = first[-1]["resume_token"]
            customers = []
            for i in range(3):
                conn = await connect(f"{url}?role=customer&name=C{i}", open_timeout=10, close_timeout=1)
                await conn.send(start_frame(f"C{i}", question=f"question {i}"))
                new = (await frames_until(conn, is_kind("new conversation")))[-1]
                customers.append((conn, new["conversation_uuid"], new["resume_token"]))
            state["customers"] = [(conv, token) for _, conv, token in customers]
            chat_conn, chat_conv, _ = customers[0]  # engaged with Alice (round-robin, one chat each)
            await chat_conn.send(message_frame(chat_conv, "c0-1", "hello Alice"))
            await frames_until(chat_conn, lambda f: (f.get("message") or {}).get("client_message_id") == "c0-1")
            rec_conn, rec_conv, _ = customers[1]  # waiting, streaming a recording
            parts = rrweb_parts("snapshot-" * 40, parts=3, kind="init", index=0)
            for part in parts[:2]:
                payload = {"type": "event", "event_type": "rrweb", "conversation_uuid": rec_conv, "event_rrweb": part}
                await rec_conn.send(orjson.dumps(payload).decode())
            await rec_conn.send('{"type": "ping"}')
            await frames_until(rec_conn, is_kind("ping"))  # both parts were handled (and committed)
            await chat_conn.send('{"type": "ping"}')
            await frames_until(chat_conn, is_kind("ping"))
            for conn, _, _ in customers:
                await conn.close()
        return state

    first = MockProcess(args)
    try:
        state = asyncio.run(before(first.url))
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    second = MockProcess(args)
    try:

        async def after(url: str) -> None:
            (chat_conv, chat_token), (rec_conv, rec_token), (last_conv, last_token) = state["customers"]
            for conv, token, position in ((rec_conv, rec_token, 1), (last_conv, last_token, 2)):
                frames = await replay(url, f"role=customer&token={token}")
                assert frames[0]["conversation_uuid"] == conv
                positions = [f["event_queue_position"]["position"] for f in frames if is_kind("queue position")(f)]
                assert positions == [position]
            frames = await replay(url, f"role=customer&token={chat_token}")
            bodies = [f["message"]["body"] for f in frames if f.get("type") == "message"]
            assert bodies == ["question 0", "hello Alice"]
            # Alice resumes with her token and closes her chat: the next customer is hers, with the recording
            async with ws(url, f"role=agent&name=Alice&queues=support&token={state['alice']}") as alice:
                resumed = await frames_until(alice, lambda f: "resume_token" in f)
                assert [f["conversation_uuid"] for f in resumed if is_kind("new conversation")(f)] == [chat_conv]
                close = {"type": "event", "event_type": "conversation closed", "conversation_uuid": chat_conv}
                await alice.send(orjson.dumps(close).decode())
                frames = await frames_until(alice, lambda f: is_kind("rrweb")(f) and f["event_rrweb"]["data_part"] == 2)
                joined = [f for f in frames if is_kind("new conversation")(f)]
                assert joined[-1]["conversation_uuid"] == rec_conv
                assert [f["event_rrweb"]["data_part"] for f in frames if is_kind("rrweb")(f)] == [1, 2]

        asyncio.run(after(second.url))
    finally:
        assert second.stop() == 0  # SIGTERM: a clean stop


def test_sigterm_flushes_and_the_database_is_closed_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    mock = MockProcess(["--db", str(db), *SERVE])

    async def chat(url: str) -> str:
        async with ws(url, "role=customer&name=Ann") as conn:
            await conn.send(start_frame("Ann", question="anyone there?"))
            new = (await frames_until(conn, is_kind("new conversation")))[-1]
            return str(new["conversation_uuid"])

    try:
        conv = asyncio.run(chat(mock.url))
    finally:
        assert mock.stop() == 0
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0  # checkpointed on close
    stored = Database(db, create=False)
    try:
        (only,) = list(stored.conversations())
        assert only["conversation_uuid"] == conv
        assert [m["body"] for m in only["messages"]] == ["anyone there?"]
    finally:
        stored.close()


def test_closed_conversations_come_back_after_the_open_ones_once_serving(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"

    async def chats(url: str, count: int) -> None:
        for i in range(count):
            async with ws(url, f"role=customer&name=C{i}") as conn:
                await conn.send(start_frame(f"C{i}", question=f"question {i}"))
                conv = (await frames_until(conn, is_kind("new conversation")))[-1]["conversation_uuid"]
                if i:  # the first one stays open (waiting)
                    close = {"type": "event", "event_type": "conversation closed", "conversation_uuid": conv}
                    await conn.send(orjson.dumps(close).decode())
                    await frames_until(conn, is_kind("conversation closed"))

    first = MockProcess(["--db", str(db), *SERVE])
    try:
        asyncio.run(chats(first.url, 4))
    finally:
        first.stop()
    second = MockProcess(["--db", str(db), *SERVE])
    try:
        deadline = time.monotonic() + 20
        while (status := health(second))["store"]["restored"]["closed_pending"]:  # another process: polled
            assert time.monotonic() < deadline, status["store"]
            time.sleep(0.05)
        assert status["store"]["restored"]["open"] == 1
        assert status["store"]["restored"]["closed"] == 3
        assert status["held"]["conversations_closed"] == 3 and status["conversations"] == {"open": 1, "closed": 3}
    finally:
        second.stop()


@pytest.mark.parametrize("path", ["{tmp}/missing/dir/x.db", "{tmp}", "{tmp}/junk.db"])
def test_a_bad_db_path_is_one_line_and_exit_status_2(tmp_path: Path, path: str) -> None:
    (tmp_path / "junk.db").write_bytes(b"junk" * 1000)
    proc = run_cli("serve", "--port", "0", "--agents", "0", "--db", path.format(tmp=tmp_path), timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("webchat-sim serve: error: --db "), proc.stderr


def test_db_info_vacuum_and_export(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    mock = MockProcess(["--db", str(db), *SERVE])

    async def chats(url: str) -> None:
        for i in range(3):
            async with ws(url, f"role=customer&name=C{i}") as conn:
                await conn.send(start_frame(f"C{i}", question=f"question {i}"))
                await frames_until(conn, is_kind("new conversation"))

    try:
        asyncio.run(chats(mock.url))
    finally:
        mock.stop()
    info = run_cli("db", "info", str(db), "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["schema_version"] >= 2
    assert data["counts"]["conversations"] == 3 and data["counts"]["messages"] == 3
    text = run_cli("db", "info", str(db))
    assert "conversations: 3 (3 waiting, 0 chatting, 0 closed)" in text.stdout
    vacuum = run_cli("db", "vacuum", str(db))
    assert vacuum.returncode == 0 and " bytes -> " in vacuum.stdout
    exported = run_cli("db", "export", str(db))
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [c["messages"][0]["body"] for c in lines] == ["question 0", "question 1", "question 2"]
    out = tmp_path / "out.jsonl"
    assert run_cli("db", "export", str(db), "-o", str(out)).returncode == 0
    assert len(out.read_text().splitlines()) == 3
    missing = run_cli("db", "info", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such database file" in missing.stderr


def test_retain_prunes_closed_conversations_and_keeps_open_ones(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    mock = MockProcess(["--db", str(db), "--retain", "1s", *SERVE])

    async def chats(url: str) -> tuple[str, str]:
        async with ws(url, "role=customer&name=Gone") as gone, ws(url, "role=customer&name=Stays") as stays:
            await gone.send(start_frame("Gone", question="bye"))
            closed = (await frames_until(gone, is_kind("new conversation")))[-1]["conversation_uuid"]
            close = {"type": "event", "event_type": "conversation closed", "conversation_uuid": closed}
            await gone.send(orjson.dumps(close).decode())
            await frames_until(gone, is_kind("conversation closed"))
            await stays.send(start_frame("Stays", question="still here"))
            kept = (await frames_until(stays, is_kind("new conversation")))[-1]["conversation_uuid"]
        return closed, kept

    try:
        closed, kept = asyncio.run(chats(mock.url))
        deadline = time.monotonic() + 20
        while health(mock)["store"]["pruned_conversations"] < 1:  # another process: polled, bounded
            assert time.monotonic() < deadline, health(mock)["store"]
            time.sleep(0.1)
    finally:
        assert mock.stop() == 0
    stored = Database(db, create=False)
    try:
        left = [c["conversation_uuid"] for c in stored.conversations()]
        assert closed not in left and left == [kept]
        assert stored.info()["counts"]["participants"] == 1  # the customer of the pruned one went with it
    finally:
        stored.close()


def test_a_second_server_on_the_same_db_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    mock = MockProcess(["--db", str(db), *SERVE])
    try:
        second = run_cli("serve", "--port", "0", "--db", str(db), *SERVE, timeout=20)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.count("\n") == 1 and "in use by another" in second.stderr, second.stderr
    finally:
        mock.stop()
    # once the first has stopped, the file is free again
    again = MockProcess(["--db", str(db), *SERVE])
    again.stop()


def test_db_vacuum_while_a_server_holds_the_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    mock = MockProcess(["--db", str(db), *SERVE])
    try:
        vacuum = run_cli("db", "vacuum", str(db), timeout=30)
        assert vacuum.returncode == 2, vacuum.stdout + vacuum.stderr
        assert vacuum.stderr.count("\n") == 1 and "in use by a running" in vacuum.stderr, vacuum.stderr
    finally:
        mock.stop()
    assert run_cli("db", "vacuum", str(db), timeout=30).returncode == 0
