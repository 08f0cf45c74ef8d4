"""The throughput benchmark's mix and its reading of SSE answers."""

from __future__ import annotations

import random
from collections import Counter

from optima_bi_mcp.mcp.tools import TOOLS_BY_NAME
from perf.throughput import Mix, _answer_in_events

MERCHANTS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(50)]


def draws(count: int) -> list[tuple[str, dict]]:
    mix, rng = Mix(MERCHANTS, seed=1), random.Random(7)
    return [mix.call(rng) for _ in range(count)]


def test_every_drawn_call_has_valid_arguments():
    """The mix only sends arguments its tool accepts."""
    for tool, arguments in draws(2000):
        TOOLS_BY_NAME[tool].arguments.model_validate(arguments)


def test_popular_merchants_are_asked_about_more_often():
    """Merchants follow Zipf: the most asked-about gets many times the median's calls."""
    asked = Counter(a["merchant_id"] for _, a in draws(20000) if "merchant_id" in a)
    counts = sorted(asked.values(), reverse=True)
    assert counts[0] > 5 * counts[len(counts) // 2]
    assert len(asked) == len(MERCHANTS)


def test_the_answer_is_picked_from_sse_events_by_id():
    """In an SSE body, the JSON-RPC message with the request's id is the answer."""
    body = (
        b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\r\n\r\n'
        b'event: message\r\ndata: {"jsonrpc":"2.0","id":3,"result":{"ok":true}}\r\n\r\n'
    )
    assert _answer_in_events(body, 3) == {"jsonrpc": "2.0", "id": 3, "result": {"ok": True}}
