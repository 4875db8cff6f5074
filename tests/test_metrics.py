"""``GET /metrics`` (simulator/mock/metrics.py) on a real ``webchat-sim
serve``: Prometheus text that prometheus-client itself parses, counting
connections by role, frames by kind, errors by code, queues, conversations
and the relay latency of real messages. 127.0.0.1 and random ports only."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from simulator.mock.metrics import LATENCY_BUCKETS, Counters
from tests.test_http import _frames_until, _start, _stop

pytestmark = pytest.mark.timeout(60)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with _NO_PROXY.open(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_count_what_a_chat_did() -> None:
    mock = _start("--routing", "manual")
    metrics_url = mock.web_url + "metrics"
    try:
        base = mock.websocket_url
        with (
            connect(base + "?role=agent&name=Mia", proxy=None, open_timeout=10) as agent,
            connect(base + "?role=customer&name=Ann", proxy=None, open_timeout=10) as customer,
        ):
            _frames_until(agent, "queue status update")
            start: dict[str, Any] = {"question": "Hello?"}
            customer.send(
                json.dumps(
                    {"type": "event", "event_type": "webchat start conversation", "event_engage_customer": start}
                )
            )
            entry = _frames_until(agent, "queue new member")["event_queue_new_member"]
            uuid = _frames_until(customer, "new conversation")["conversation_uuid"]
            samples = _samples(metrics_url)
            assert samples["webchat_connections", (("role", "agent"),)] == 1
            assert samples["webchat_connections", (("role", "customer"),)] == 1
            assert samples["webchat_queue_waiting", (("queue", "support"),)] == 1
            engage = {"conversation_webchat_queue_uuid": entry["conversation_webchat_queue_uuid"]}
            agent.send(json.dumps({"type": "event", "event_type": "engage customer", "event_engage_customer": engage}))
            _frames_until(customer, "participant join")
            for i in range(3):
                customer.send(json.dumps({"type": "message", "conversation_uuid": uuid, "message": {"body": f"m{i}"}}))
            customer.send("{not json")
            _frames_until(agent, "new message")
            while True:  # the error frame for the bad one comes after the three acks
                frame = json.loads(customer.recv(timeout=10))
                if frame.get("error"):
                    break
            samples = _samples(metrics_url)
        assert samples["webchat_frames_received_total", (("type", "message"),)] == 3
        assert samples["webchat_frames_received_total", (("type", "invalid"),)] == 1
        assert samples["webchat_errors_sent_total", (("code", "invalid_json"),)] == 1
        assert samples["webchat_frames_sent_total", (("type", "participant join"),)] == 2
        assert samples["webchat_relay_latency_seconds_count", ()] == 3
        assert samples["webchat_relay_latency_seconds_bucket", (("le", "+Inf"),)] == 3
        assert 0 < samples["webchat_relay_latency_seconds_sum", ()] < 3
        assert samples["webchat_queue_chatting", (("queue", "support"),)] == 1
        assert samples["webchat_conversations_open", ()] == 1
    finally:
        stderr = _stop(mock)
    assert "Traceback" not in stderr


def test_the_histogram_buckets_are_cumulative_and_ordered() -> None:
    counters = Counters()
    for seconds in (0.00005, 0.0003, 0.0003, 2.0):
        counters.observe_relay(seconds)
    assert counters.latency_count == 4 and counters.latency_buckets[0] == 1 and counters.latency_buckets[-1] == 1
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
