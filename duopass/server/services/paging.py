"""Lists a page at a time: `{items, next_cursor}`, where a cursor is the last item's sort key,
opaque to clients (base64url of a small JSON array, tagged with its list's name so that one
list's cursor is refused by another). A cursor that does not decode, or is another list's, is
422 `bad_cursor`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.server.limits import CURSOR_CHARS_MAX
from duopass.server.problems import Problem, ProblemCode

__all__ = ["page", "read_cursor"]

Key = tuple[Any, ...]
KEY_INT_LIMIT = 2**63


def read_cursor(cursor: str | None, listing: str, types: Sequence[type]) -> Key | None:
    """The sort key a cursor of `listing` carries (its values of `types`), or None for the
    first page."""
    if cursor is None:
        return None
    refused = Problem(ProblemCode.BAD_CURSOR, "not a cursor of this list: start again without one")
    if len(cursor) > CURSOR_CHARS_MAX:
        raise refused
    try:
        tag, *key = json.loads(b64u_decode(cursor))
    except (EncodingError, ValueError, TypeError):
        raise refused from None
    if tag != listing or len(key) != len(types):
        raise refused
    if not all(type(value) is kind for value, kind in zip(key, types, strict=True)):
        raise refused
    if any(not _storable(value) for value in key):
        raise refused
    return tuple(key)


def _storable(value: object) -> bool:
    """A key value a database compares: no NUL (PostgreSQL refuses it), 64-bit integers."""
    if isinstance(value, str):
        return value.isprintable()
    return isinstance(value, int) and -KEY_INT_LIMIT < value < KEY_INT_LIMIT


def page(listing: str, rows: Sequence[Any], limit: int, key: Any) -> dict[str, Any]:
    """The answer for rows read with `limit + 1`: the first `limit`, and a cursor after the last
    of them when there are more. `key(row)` is a row's sort key (ints and strings)."""
    items = list(rows[:limit])
    following = None
    if len(rows) > limit:
        following = b64u_encode(json.dumps([listing, *key(items[-1])]).encode())
    return {"items": items, "next_cursor": following}
