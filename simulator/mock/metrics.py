"""``GET /metrics``: the mock's figures in Prometheus' text format.

The hot path only bumps plain counters (:class:`Counters`: a dict entry per
frame kind, an error code, a latency bucket); nothing here runs per frame.
At scrape time :class:`MockCollector` turns them, the engine's queues and
conversations and the connections by role into metric families, written by
``prometheus-client``'s own exposition code (:func:`render`). Each server
has its own :class:`~prometheus_client.CollectorRegistry`, so several mocks
in one process (tests) never share figures.

Metrics (all prefixed ``webchat_``): ``connections{role}``,
``frames_received_total{type}``, ``frames_sent_total{type}`` (a frame sent
to three recipients counts three), ``errors_sent_total{code}``,
``faults_injected_total{fault}`` (:mod:`.faults`),
``queue_waiting{queue}``, ``queue_agents{queue}``, ``queue_chatting{queue}``,
``queue_abandoned_total{queue}``, ``conversations_open``,
``conversations_closed_total``, ``relay_latency_seconds`` (histogram: a
``message`` frame from its arrival to its deliveries written), ``uptime_seconds``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Counters", "MockCollector", "registry_for", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
"""Upper bounds (seconds) of the relay latency histogram (plus +Inf)."""


class Counters:
    """What the websocket shell counts as it goes (plain ints: cheap to bump)."""

    __slots__ = ("errors", "faults", "latency_buckets", "latency_count", "latency_sum", "received", "sent")

    def __init__(self) -> None:
        self.received: dict[Any, int] = {}
        """Frames received by kind (``event_type``, else ``type``), decoded or not (``invalid``)."""
        self.sent: dict[Any, int] = {}
        """Frames sent by kind, once per recipient."""
        self.errors: dict[str, int] = {}
        """Error frames sent by ``error_code``."""
        self.faults: dict[str, int] = {}
        """Faults injected by name (the server's :class:`~.faults.FaultDecider` counts)."""
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_count = 0
        self.latency_sum = 0.0

    def observe_relay(self, seconds: float) -> None:
        """One relayed message took ``seconds`` in the server."""
        self.latency_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_count += 1
        self.latency_sum += seconds


def _per_label(
    name: str, doc: str, label: str, values: Mapping[Any, int | float], kind: type[Any] = CounterMetricFamily
) -> Metric:
    family = kind(name, doc, labels=[label])
    for key, value in sorted((str(k), v) for k, v in values.items()):
        family.add_metric([key], value)
    metric: Metric = family
    return metric


class MockCollector(Collector):
    """The figures of one server, read at scrape time."""

    def __init__(self, counters: Counters, status: Callable[[], dict[str, Any]], roles: Callable[[], dict[str, int]]):
        self.counters = counters
        self.status = status
        """The server's ``/healthz`` status (queues, conversations, uptime)."""
        self.roles = roles
        """Connections by role."""

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        yield _per_label(
            "webchat_connections", "Open websocket connections by role.", "role", self.roles(), GaugeMetricFamily
        )
        yield _per_label("webchat_frames_received", "Frames received from clients, by kind.", "type", c.received)
        yield _per_label("webchat_frames_sent", "Frames sent to clients (per recipient), by kind.", "type", c.sent)
        yield _per_label("webchat_errors_sent", "Error frames sent to clients, by error_code.", "code", c.errors)
        yield _per_label("webchat_faults_injected", "Faults injected (serve --fault), by fault.", "fault", c.faults)
        status = self.status()
        queues: dict[str, dict[str, int]] = status.get("queues", {})
        for field, doc, kind in (
            ("waiting", "Customers waiting in the queue.", GaugeMetricFamily),
            ("agents", "Agents logged in to the queue.", GaugeMetricFamily),
            ("chatting", "Chats in progress from the queue.", GaugeMetricFamily),
        ):
            yield _per_label(
                f"webchat_queue_{field}", doc, "queue", {q: v.get(field, 0) for q, v in queues.items()}, kind
            )
        yield _per_label(
            "webchat_queue_abandoned",
            "Customers who left the queue before an agent took them.",
            "queue",
            {q: v.get("abandoned", 0) for q, v in queues.items()},
        )
        conversations = status.get("conversations", {})
        yield GaugeMetricFamily("webchat_conversations_open", "Open conversations.", value=conversations.get("open", 0))
        yield CounterMetricFamily(
            "webchat_conversations_closed", "Conversations closed since start.", value=conversations.get("closed", 0)
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), c.latency_buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "webchat_relay_latency_seconds",
            "Server time of a relayed message: from its frame's arrival to its deliveries written.",
            buckets=buckets,
            sum_value=c.latency_sum,
        )
        yield GaugeMetricFamily("webchat_uptime_seconds", "Seconds since the server started.", value=_uptime(status))


def _uptime(status: Mapping[str, Any]) -> float:
    value = status.get("uptime_seconds")
    return float(value) if isinstance(value, int | float) else 0.0


def registry_for(collector: MockCollector) -> CollectorRegistry:
    """A registry of its own holding ``collector`` (nothing global)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``."""
    data: bytes = generate_latest(registry)
    return data
