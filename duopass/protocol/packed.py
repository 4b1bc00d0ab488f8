"""Compact exact sets for a trust store's revocations and freezes: what a terminal holds of a list
of a million `cti`s without a Python object for each.

A `PackedSet` keeps its byte strings per length in one sorted buffer of fixed-width entries and
finds one by bisection; a group of `INDEX_FROM` entries or more also gets an index of where each
16-bit prefix starts, so a lookup in a million random `cti`s bisects about 16 entries. Exact: no
false positives, so no lookup ever needs the server. A million 12-byte `cti`s take 12 MB and
256 KiB of index. `Listing` holds (iss, value) pairs as one `PackedSet` per issuer.
"""

from __future__ import annotations

import sys
from abc import abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from itertools import chain, groupby
from typing import Generic, Self, TypeVar

__all__ = ["INDEX_FROM", "Freezes", "Listing", "PackedSet", "Revocations"]

INDEX_FROM = 4096
"""Entries of one length from which a group gets its 16-bit prefix index (256 KiB)."""

_PREFIXES = 1 << 16
_SCAN = 32
"""Entries one substring search covers, after bisection."""


class _Group:
    """The entries of one width: `count` of them, sorted, back to back in `data`."""

    __slots__ = ("count", "data", "index", "width")

    def __init__(self, width: int, data: bytes, count: int) -> None:
        self.width, self.data, self.count = width, data, count
        indexed = width >= 2 and count >= INDEX_FROM
        self.index = _prefix_index(data, width, count) if indexed else None

    def lower(self, item: bytes) -> int:
        """The position of the first entry not below `item`."""
        width, data = self.width, self.data
        low, high = self._run(item)
        while low < high:
            middle = (low + high) >> 1
            at = middle * width
            if data[at : at + width] < item:
                low = middle + 1
            else:
                high = middle
        return low

    def _run(self, item: bytes) -> tuple[int, int]:
        """The entries `item` can be among: those sharing its 16-bit prefix, when indexed."""
        if self.index is None:
            return 0, self.count
        prefix = item[0] << 8 | item[1]
        return self.index[prefix], self.index[prefix + 1]

    def has(self, item: bytes) -> bool:
        """Narrow to a run of at most `_SCAN` entries (the prefix index, then bisection), then
        one C substring search over the run; a match must start on an entry's boundary."""
        width, data = self.width, self.data
        if width == 0:
            return self.count == 1
        low, high = self._run(item)
        while high - low > _SCAN:
            middle = (low + high) >> 1
            at = middle * width
            if data[at : at + width] < item:
                low = middle + 1
            else:
                high = middle
        end = high * width
        found = data.find(item, low * width, end)
        while found > 0 and found % width:  # across two entries: look further
            found = data.find(item, found + 1, end)
        return found >= 0

    def __iter__(self) -> Iterator[bytes]:
        width, data = self.width, self.data
        if width == 0:
            return iter([b""] * self.count)
        return (data[at : at + width] for at in range(0, len(data), width))


def _prefix_index(data: bytes, width: int, count: int) -> array[int]:
    """Where each 16-bit prefix's entries start, and `count` last: the first two bytes of every
    entry gathered with strided slices, then one C bisection per prefix."""
    pairs = bytearray(2 * count)
    pairs[0::2] = data[0::width]
    pairs[1::2] = data[1::width]
    prefixes = array("H")
    prefixes.frombytes(pairs)
    if sys.byteorder == "little":
        prefixes.byteswap()
    index = array("I", (bisect_left(prefixes, prefix) for prefix in range(_PREFIXES)))
    index.append(count)
    return index


class PackedSet(AbstractSet[bytes]):
    """An immutable set of byte strings of any lengths; `patch` makes the next one."""

    __slots__ = ("_groups", "_len")

    def __init__(self, items: Iterable[bytes] = ()) -> None:
        by_width: dict[int, list[bytes]] = {}
        for item in items:
            by_width.setdefault(len(item), []).append(item)
        groups = {}
        for width, values in by_width.items():
            values.sort()
            distinct = [value for value, _ in groupby(values)]
            del values[:]
            groups[width] = _Group(width, b"".join(distinct), len(distinct))
        self._groups: dict[int, _Group] = groups
        self._len = sum(group.count for group in groups.values())

    @classmethod
    def from_groups(cls, groups: Mapping[int, tuple[bytes, int]]) -> PackedSet:
        """From `groups()` as stored: width -> (sorted entries back to back, count). Raises
        ValueError on a buffer that is not `count` entries of its width."""
        packed = cls()
        for width, (data, count) in groups.items():
            if width < 0 or count < 0 or len(data) != width * count or (width == 0 and count > 1):
                raise ValueError(f"packed group of width {width} is not {count} entries")
            if count:
                packed._groups[width] = _Group(width, bytes(data), count)
        packed._len = sum(group.count for group in packed._groups.values())
        return packed

    def groups(self) -> dict[int, tuple[bytes, int]]:
        """Width -> (sorted entries back to back, count): what `from_groups` takes."""
        return {width: (g.data, g.count) for width, g in sorted(self._groups.items())}

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, bytes):
            return False
        group = self._groups.get(len(item))
        return group is not None and group.has(item)

    def __iter__(self) -> Iterator[bytes]:
        return chain.from_iterable(self._groups[width] for width in sorted(self._groups))

    def __len__(self) -> int:
        return self._len

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedSet):
            return NotImplemented
        return self.groups() == other.groups()

    def __hash__(self) -> int:
        return hash(tuple(self.groups().items()))

    def __repr__(self) -> str:
        return f"PackedSet(<{self._len} entries>)"

    def patch(self, added: Iterable[bytes], removed: Iterable[bytes]) -> PackedSet:
        """`(self - removed) | added`, copying each touched group once; untouched groups are
        shared, and with nothing to change the result is `self`."""
        added_all = set(added)
        adds: dict[int, set[bytes]] = {}
        for item in added_all:
            if item not in self:
                adds.setdefault(len(item), set()).add(item)
        drops: dict[int, set[bytes]] = {}
        for item in removed:
            if item not in added_all and item in self:
                drops.setdefault(len(item), set()).add(item)
        if not adds and not drops:
            return self
        result = PackedSet()
        result._groups = dict(self._groups)
        for width in adds.keys() | drops.keys():
            group = result._groups.get(width)
            if group is None:  # a new width: nothing to merge into
                values = sorted(adds[width])
                patched = _Group(width, b"".join(values), len(values))
            else:
                patched = _patched(group, adds.get(width, set()), drops.get(width, set()))
            if patched.count:
                result._groups[width] = patched
            else:
                result._groups.pop(width, None)
        result._len = sum(group.count for group in result._groups.values())
        return result


def _patched(group: _Group, adds: set[bytes], drops: set[bytes]) -> _Group:
    """The group with `adds` (none of them in it) inserted and `drops` (all in it) removed."""
    width, data = group.width, group.data
    if width == 0:
        return _Group(0, b"", group.count + len(adds) - len(drops))
    pieces: list[bytes] = []
    done = 0
    for item, is_add in sorted(chain(((a, True) for a in adds), ((d, False) for d in drops))):
        at = group.lower(item) * width
        pieces.append(data[done:at])
        if is_add:
            pieces.append(item)
            done = at
        else:
            done = at + width
    pieces.append(data[done:])
    return _Group(width, b"".join(pieces), group.count + len(adds) - len(drops))


V = TypeVar("V", bytes, str)

_EMPTY = PackedSet()


class Listing(AbstractSet[tuple[str, V]], Generic[V]):
    """(iss, value) pairs held as one `PackedSet` per issuer; compares equal by content."""

    __slots__ = ("_sets",)

    def __init__(self, pairs: Iterable[tuple[str, V]] = ()) -> None:
        by_issuer: dict[str, list[bytes]] = {}
        for iss, value in pairs:
            by_issuer.setdefault(iss, []).append(self._encode(value))
        self._sets = {iss: PackedSet(values) for iss, values in by_issuer.items()}

    @staticmethod
    @abstractmethod
    def _encode(value: V) -> bytes:
        """A value as the fixed-width bytes its `PackedSet` holds."""

    @staticmethod
    @abstractmethod
    def _decode(value: bytes) -> V:
        """The value of a `PackedSet` item."""

    @classmethod
    def of(cls, sets: Mapping[str, PackedSet]) -> Self:
        listing = cls()
        listing._sets = {iss: packed for iss, packed in sets.items() if len(packed)}
        return listing

    def issuers(self) -> dict[str, PackedSet]:
        """Each issuer's set of encoded values (bytes; UTF-8 for text)."""
        return dict(self._sets)

    def issuer(self, iss: str) -> PackedSet:
        return self._sets.get(iss, _EMPTY)

    def with_issuer(self, iss: str, packed: PackedSet) -> Self:
        """The same listing with `iss`'s values replaced."""
        return self.of({**self._sets, iss: packed})

    def has(self, iss: str, value: V) -> bool:
        packed = self._sets.get(iss)
        return packed is not None and self._encode(value) in packed

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str):
            return False
        packed = self._sets.get(pair[0])
        try:
            return packed is not None and self._encode(pair[1]) in packed
        except (TypeError, AttributeError):
            return False

    def __iter__(self) -> Iterator[tuple[str, V]]:
        for iss in sorted(self._sets):
            for value in self._sets[iss]:
                yield iss, self._decode(value)

    def __len__(self) -> int:
        return sum(len(packed) for packed in self._sets.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Listing):
            return NotImplemented
        return type(self) is type(other) and self._sets == other._sets

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._sets.items(), key=lambda item: item[0])))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self)} entries, {len(self._sets)} issuers>)"


class Revocations(Listing[bytes]):
    """(iss, cti) pairs."""

    __slots__ = ()

    @staticmethod
    def _encode(value: bytes) -> bytes:
        if not isinstance(value, bytes):
            raise TypeError("a cti is bytes")
        return value

    @staticmethod
    def _decode(value: bytes) -> bytes:
        return value


class Freezes(Listing[str]):
    """(iss, sub) pairs; a `sub` is held as its UTF-8 bytes."""

    __slots__ = ()

    @staticmethod
    def _encode(value: str) -> bytes:
        return value.encode()

    @staticmethod
    def _decode(value: bytes) -> str:
        return value.decode()
