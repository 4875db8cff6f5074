"""Codec cost per frame: decode+validate and encode of typical frames, against
bare ``orjson.loads`` / ``orjson.dumps`` of the same bytes in the same run.

    python benchmarks/bench_codec.py [--quick] [--json PATH]

``decode`` takes msgspec's fast path when msgspec is installed (a
dependency; :mod:`simulator.protocol.fastdecode`), so the same run also
measures pydantic's path alone (``validate_json`` strict + the context
check: the codec before issue 12, and the one every frame msgspec refuses
takes) and msgspec's decode into its Structs alone (no pydantic objects:
the floor a Struct-reading consumer would get).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from _common import RESULTS_DIR, Target, judge, save_results, target_keys

from simulator.protocol import Frame, decode, encode
from simulator.protocol.codec import check_context
from simulator.protocol.fastdecode import ACTIVE, frame_structs

if ACTIVE:
    import msgspec

ARN_C = "arn:webchat-sim:DEMO:participant/5f0c1d2e-8f3a-4b6e-9a1d-2c3b4d5e6f70"
ARN_A = "arn:webchat-sim:DEMO:participant/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CONV = "7c1f1d2e-8f3a-4b6e-9a1d-2c3b4d5e6f70"
DTS = "2026-11-25T14:05:25.123Z"

SAMPLES: dict[str, dict[str, Any]] = {
    "message": {
        "type": "message",
        "conversation_uuid": CONV,
        "message": {
            "author_conversation_participant_arn": ARN_C,
            "author_conversation_participant_name": "Jane Doe",
            "body": "Hi, where is my order #12345? It was supposed to arrive yesterday.",
            "client_message_id": "c-1234",
            "conversation_message_uuid": "1f2e3d4c-5b6a-4789-8abc-def012345678",
            "language_iso_code": "en",
            "merchant_id": "DEMO",
            "message_dts": DTS,
            "message_epoch": 1_795_615_525_123,
            "type": "message",
            "transport_statuses": [
                {"conversation_participant_arn": ARN_A, "status": "sent"},
                {"conversation_participant_arn": ARN_C, "status": "accepted"},
            ],
        },
    },
    "typing": {
        "type": "event",
        "event_type": "typing",
        "conversation_uuid": CONV,
        "event_typing": {
            "author_conversation_participant_arn": ARN_C,
            "author_conversation_participant_name": "Jane Doe",
            "value": "Hi, where is my",
        },
    },
    "new message (summary)": {
        "type": "event",
        "event_type": "new message",
        "conversation_uuid": CONV,
        "event_new_message": {
            "closed": False,
            "conversation_arn": "arn:webchat-sim:DEMO:conversation/" + CONV,
            "conversation_uuid": CONV,
            "customer_first_message_unresponded_to_dts": DTS,
            "last_conversation_message_body": "Hi, where is my order #12345?",
            "last_conversation_participant_arn": ARN_C,
            "last_conversation_participant_name": "Jane Doe",
            "last_message_dts": DTS,
            "medium": "websocket",
            "merchant_id": "DEMO",
            "message_count": 3,
            "participants": [
                {
                    "conversation_participant_arn": a,
                    "conversation_participant_name": n,
                    "joined_dts": DTS,
                    "language_iso_code": "en",
                    "status": "active",
                    "unread_messages": 0,
                }
                for a, n in ((ARN_C, "Jane Doe"), (ARN_A, "Alex Agent"))
            ],
            "start_dts": DTS,
            "unread_messages": True,
            "visible": True,
        },
    },
}


def pydantic_decode(data: bytes) -> Frame:
    """The codec's pydantic path alone (before issue 12; any frame msgspec refuses)."""
    frame: Frame = Frame.__pydantic_validator__.validate_json(data, strict=True)
    check_context(frame)
    return frame


def per_call_us(fn: Callable[[], object], *, seconds: float, max_calls: int) -> float:
    """Best of 5 rounds of the mean CPU µs per call (bounded in time and count)."""
    batch = 1000
    best = float("inf")
    budget_end = time.perf_counter() + seconds  # wall budget; the figure is CPU time (a shared machine)
    for _ in range(5):
        calls = 0
        start = time.process_time()
        while calls < max_calls // 5 and time.perf_counter() < budget_end:
            for _ in range(batch):
                fn()
            calls += batch
        elapsed = time.process_time() - start
        if calls:
            best = min(best, elapsed / calls * 1e6)
    return best


def run(quick: bool) -> dict[str, Any]:
    seconds = 0.5 if quick else 5.0
    max_calls = 20_000 if quick else 1_000_000
    results: dict[str, Any] = {}
    for name, sample in SAMPLES.items():
        raw = orjson.dumps(sample)
        frame = decode(raw)
        assert encode(frame) == raw or orjson.loads(encode(frame)) == sample
        data = orjson.loads(raw)
        calls: dict[str, Callable[[], object]] = {
            "orjson_loads_us": partial(orjson.loads, raw),
            "decode_us": partial(decode, raw),
            "pydantic_decode_us": partial(pydantic_decode, raw),
            "orjson_dumps_us": partial(orjson.dumps, data),
            "encode_us": partial(encode, frame),
        }
        reference = pydantic_decode(raw)
        assert frame == reference and frame.model_fields_set == reference.model_fields_set
        assert encode(frame) == encode(reference)
        if ACTIVE:
            calls["msgspec_decode_us"] = partial(msgspec.json.Decoder(frame_structs()[Frame]).decode, raw)
        row: dict[str, float] = {"bytes": len(raw)}
        for key, fn in calls.items():
            row[key] = per_call_us(fn, seconds=seconds, max_calls=max_calls)
        row["decode_ratio"] = row["decode_us"] / row["orjson_loads_us"]
        row["decode_vs_pydantic"] = row["decode_us"] / row["pydantic_decode_us"]
        if "msgspec_decode_us" in row:
            row["msgspec_vs_pydantic"] = row["msgspec_decode_us"] / row["pydantic_decode_us"]
        row["encode_ratio"] = row["encode_us"] / row["orjson_dumps_us"]
        results[name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "bench_codec.json")
    args = parser.parse_args(argv)
    results = run(args.quick)
    print(
        f"{'frame':24} {'bytes':>6} {'loads µs':>9} {'decode µs':>10} {'ratio':>6} {'pydantic µs':>11} {'fast/pyd':>8}"
        f" {'dumps µs':>9} {'encode µs':>10} {'ratio':>6} {'msgspec Structs µs':>19}"
    )
    for name, r in results.items():
        spec = f"{r['msgspec_decode_us']:10.2f} ({r['msgspec_vs_pydantic']:.2f}x)" if "msgspec_decode_us" in r else "-"
        print(
            f"{name:24} {r['bytes']:6d} {r['orjson_loads_us']:9.2f} {r['decode_us']:10.2f} {r['decode_ratio']:5.1f}x"
            f" {r['pydantic_decode_us']:11.2f} {r['decode_vs_pydantic']:7.2f}x"
            f" {r['orjson_dumps_us']:9.2f} {r['encode_us']:10.2f} {r['encode_ratio']:5.1f}x {spec:>19}"
        )
    limit = 20.0
    worst = max(max(r["decode_us"], r["encode_us"]) for r in results.values())
    message = results["message"]
    target = Target(
        f"message decode and encode each < {limit:.0f} µs",
        judge(max(message["decode_us"], message["encode_us"]), limit, higher_is_better=False, strict=True),
        f"(slowest figure {worst:.1f} µs)",
    )
    print(target.line())
    save_results(args.json, {"benchmark": "codec", "quick": args.quick, **target_keys([target]), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
