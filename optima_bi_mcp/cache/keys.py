"""Cache keys: the tool, its normalized arguments, the caller's scope, the data versions.

Arguments arrive as the validated model's dump, defaults filled, so two calls
that mean the same thing have the same dump; canonical JSON (sorted keys, no
whitespace) then makes the key independent of argument order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; dates, UUIDs and decimals as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def result_key(
    namespace: str,
    tool: str,
    arguments: Mapping[str, Any],
    scope: str,
    versions: Mapping[str, int],
) -> str:
    """The L2 key of one answer: changes when any data scope it read changes version.

    The tool name stays readable in the key (for `redis-cli --scan`); the rest is
    hashed so that keys stay short whatever the arguments.
    """
    payload = canonical_json([tool, arguments, scope, sorted(versions.items())])
    digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
    return f"{namespace}:r:{tool}:{digest}"
