"""Credentials whose issuer signature has checked out, by their exact bytes: one cache for the
whole process, shared by online scans and journal re-checks, as a terminal's `Verifier` keeps
one. Safe because the server's signing keys never change once written, and bounded because
`verify_code` drops the oldest entry at L1_CACHE_ENTRIES_MAX. Threads share it (the group-commit
writer, journal uploads on the thread pool), so every operation holds a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping

from duopass.protocol.code import Credential


class VerifiedCredentials(MutableMapping[bytes, Credential]):
    def __init__(self) -> None:
        self._items: dict[bytes, Credential] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: bytes) -> Credential:
        with self._lock:
            return self._items[key]

    def __setitem__(self, key: bytes, value: Credential) -> None:
        with self._lock:
            self._items[key] = value

    def __delitem__(self, key: bytes) -> None:
        with self._lock:  # two threads may evict the same oldest entry: the second finds it gone
            self._items.pop(key, None)

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def get(  # type: ignore[override]
        self, key: bytes, default: Credential | None = None
    ) -> Credential | None:
        """One look-up under the lock (`Mapping.get` raises and catches a KeyError for every
        credential not cached: a journal batch decodes hundreds)."""
        with self._lock:
            return self._items.get(key, default)


VERIFIED = VerifiedCredentials()
