"""Where `duopass audit` reads a log from over HTTP (the auditor endpoints of §8), and the error
every source raises; the database source is `audit_db` (imported only when used)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import httpx

from duopass.ledger.limits import NOTE_BYTES_MAX

__all__ = ["HTTP_TIMEOUT_SECONDS", "HttpSource", "SourceError"]

HTTP_TIMEOUT_SECONDS = 60.0
KEYS_BYTES_MAX = 1_000_000
"""`GET /v1/ledger/keys`: its 1000 keys at most, some 300 bytes each."""


class SourceError(Exception):
    """The source failed: `usage` when it cannot be reached or opened at all (exit 2), else it
    answered something an honest log never would (exit 1)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


class HttpSource:
    """The server's auditor endpoints (§8)."""

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceError(f"--url {url!r} is not an http:// or https:// URL", usage=True)
        self.url = self.where = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_SECONDS)

    def _get(self, path: str, params: dict[str, int] | None = None) -> httpx.Response:
        try:
            answer = self.client.get(path, params=params)
        except httpx.TransportError as exc:
            raise SourceError(f"cannot reach {self.url}: {exc}", usage=True) from exc
        if answer.status_code != 200:
            raise SourceError(f"GET {answer.url} answered {answer.status_code}: {_problem(answer)}")
        return answer

    def _json(self, path: str, params: dict[str, int]) -> dict[str, Any]:
        answer = self._get(path, params)
        try:
            document = answer.json()
        except ValueError as exc:
            raise SourceError(f"GET {answer.url} answered something that is not JSON") from exc
        if not isinstance(document, dict):
            raise SourceError(f"GET {answer.url} answered JSON that is not an object")
        return document

    def checkpoint(self) -> bytes:
        return self._get("/v1/ledger/checkpoint").content[: NOTE_BYTES_MAX + 1]

    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        params = {"start": start, "count": count}
        document = self._json("/v1/ledger/entries", params)
        if document.get("start") != start:
            raise SourceError(f"the entries asked from {start} came from {document.get('start')}")
        return _decode_all(document.get("entries"), f"entries from {start}")

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        document = self._json("/v1/ledger/proofs/consistency", {"old": old, "new": new})
        if (document.get("old"), document.get("new")) != (old, new):
            raise SourceError(f"the consistency proof asked for {old}..{new} is for other sizes")
        return _decode_all(document.get("proof"), f"the consistency proof {old}..{new}")

    def rotations(self) -> Sequence[int]:
        """Where the ledger key rotated, from `GET /v1/ledger/keys` (a hint the audit checks);
        none from a server older than rotations (404)."""
        answer = self._found("/v1/ledger/keys")
        if answer is None:
            return []
        if len(answer.content) > KEYS_BYTES_MAX:
            raise SourceError(f"GET /v1/ledger/keys answered more than {KEYS_BYTES_MAX} bytes")
        try:
            listed = answer.json()["keys"]
            leaves = [item["leaf"] for item in listed]
        except (ValueError, TypeError, KeyError) as exc:
            raise SourceError("GET /v1/ledger/keys answered no list of keys") from exc
        if not all(leaf is None or (type(leaf) is int and leaf >= 0) for leaf in leaves):
            raise SourceError("GET /v1/ledger/keys: a rotation leaf is not an index")
        return sorted(leaf for leaf in leaves if leaf is not None)

    def checkpoint_at(self, size: int, /) -> bytes | None:
        """The checkpoint signed of `size` entries (`GET /v1/ledger/checkpoints/{size}`)."""
        answer = self._found(f"/v1/ledger/checkpoints/{size}")
        return None if answer is None else answer.content[: NOTE_BYTES_MAX + 1]

    def _found(self, path: str) -> httpx.Response | None:
        """`GET path`: its 200 answer, None for a 404; anything else is the source failing."""
        try:
            answer = self.client.get(path)
        except httpx.TransportError as exc:
            raise SourceError(f"cannot reach {self.url}: {exc}", usage=True) from exc
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise SourceError(f"GET {answer.url} answered {answer.status_code}: {_problem(answer)}")
        return answer

    def close(self) -> None:
        self.client.close()


def _problem(answer: httpx.Response) -> str:
    """A problem document's code and detail (RFC 9457), else the start of the body."""
    try:
        document = answer.json()
        return f"{document['code']}: {document['detail']}"
    except (ValueError, TypeError, KeyError):
        return answer.text[:300]


def _decode_all(items: object, what: str) -> list[bytes]:
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise SourceError(f"{what}: not a list of base64 strings")
    try:
        return [base64.b64decode(item, validate=True) for item in items]
    except binascii.Error as exc:
        raise SourceError(f"{what}: not base64") from exc
