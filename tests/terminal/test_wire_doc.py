"""docs/terminal.md's wire tables are the formats a terminal vendor implements: a trust bundle a
real server serves, and a journal batch the code encodes and the server accepts, decoded with a
plain CBOR library (cbor2) using only the tables parsed from that page, their signatures checked
as the page says; then compared with what `duopass.protocol` itself reads from the same bytes.
A wrong key number, type or name in a table fails here."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from duopass.protocol.bundle import open_bundle
from duopass.protocol.journal import (
    GENESIS,
    Entry,
    encode_batch,
    encode_entry,
    open_batch,
    parse_entry,
)
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode
from tests.server.harness import Running, enrolled_till, ready_wallet

DOC = Path(__file__).resolve().parents[2] / "docs" / "terminal.md"
MAJOR: dict[type, int] = {bytes: 2, str: 3, list: 4, dict: 5}


@dataclass(frozen=True)
class Row:
    """One row of a wire table: a map key (or an array index) and what it holds."""

    key: int
    name: str
    majors: frozenset[int]
    type: str
    required: str
    indexed: bool
    """An array's item (the table's first column is `index`), not a map's."""


Tables = dict[str, list[Row]]


def parse_tables(text: str) -> Tables:
    """Every table under a `#### name` heading, by that name."""
    tables: Tables = {}
    name, indexed = None, False
    for line in text.splitlines():
        if line.startswith("#### "):
            name = line[5:].strip()
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if name is None or not line.startswith("|"):
            continue
        if not cells[0].isdigit():  # the header row (`key` or `index` first), the separator
            indexed = indexed if cells[0].startswith("-") else cells[0] == "index"
            continue
        key, field, major, cddl, required = cells[:5]
        majors = frozenset(int(m) for m in major.split(" or "))
        row = Row(int(key), field, majors, cddl, required, indexed)
        tables.setdefault(name, []).append(row)
    return tables


TABLES = parse_tables(DOC.read_text())


def _major(value: object) -> int:
    if type(value) is int:
        return 0 if value >= 0 else 1
    return MAJOR[type(value)]


class Decoder:
    """Reads decoded CBOR values as the tables say, noting every disagreement."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.problems: list[str] = []

    def table(self, value: object, name: str, where: str) -> dict[str, Any]:
        """A map (rows keyed by number) or an array (rows keyed by index) as {name: value}; an
        absent optional field is None."""
        rows = self.tables[name]
        if rows[0].indexed:
            if type(value) is not list or len(value) != len(rows):
                self.problems.append(f"{where}: not an array of {len(rows)}: {value!r}")
                return {}
            items = dict(enumerate(value))
        else:
            if type(value) is not dict:
                self.problems.append(f"{where}: not a map")
                return {}
            items = value
        for key in sorted(set(items) - {row.key for row in rows}):
            self.problems.append(f"{where}: key {key} is not in the table")
        out: dict[str, Any] = {}
        for row in rows:
            if row.key not in items:
                if self._required(row, items, rows):
                    self.problems.append(f"{where}.{row.name}: required key {row.key} absent")
                out[row.name] = None
                continue
            if row.required == "pay" and not self._required(row, items, rows):
                self.problems.append(f"{where}.{row.name}: present outside a payment")
            item = items[row.key]
            if _major(item) not in row.majors:
                self.problems.append(f"{where}.{row.name}: major {_major(item)}, not {row.majors}")
            out[row.name] = self.typed(item, row.type, f"{where}.{row.name}")
        return out

    @staticmethod
    def _required(row: Row, items: dict[Any, Any], rows: list[Row]) -> bool:
        if row.required == "pay":
            mode = next(r.key for r in rows if r.name == "mode")
            return items.get(mode) == "pay"
        return row.required == "yes"

    def typed(self, value: object, cddl: str, where: str) -> Any:
        """`value` checked against a CDDL type of the page's small vocabulary."""
        if cddl in self.tables:
            return self.table(value, cddl, where)
        if array := re.fullmatch(r"\[\* (.+)\]", cddl):
            if type(value) is not list:
                self.problems.append(f"{where}: not an array")
                return value
            return [self.typed(item, array[1], f"{where}[{i}]") for i, item in enumerate(value)]
        if cddl == "{}":
            if value != {}:
                self.problems.append(f"{where}: not an empty map")
            return value
        if cddl == "0 / 1":
            if type(value) is not int or value not in (0, 1):
                self.problems.append(f"{where}: {value!r} is not 0 or 1")
            return value
        sized = re.fullmatch(r"(uint|int|bstr|tstr)(?: \.size (\d+|\((\d+)\.\.(\d+)\)))?", cddl)
        if sized is None:
            raise AssertionError(f"{where}: the test does not know the type {cddl!r}")
        base, size, low, high = sized.groups()
        expected = {"uint": int, "int": int, "bstr": bytes, "tstr": str}[base]
        if type(value) is not expected or (base == "uint" and value < 0):  # type: ignore[operator]
            self.problems.append(f"{where}: {value!r} is not a {base}")
        elif size is not None:
            length = len(value)  # type: ignore[arg-type]
            lo, hi = (int(low), int(high)) if low else (int(size), int(size))
            if not lo <= length <= hi:
                self.problems.append(f"{where}: length {length}, not {size}")
        return value


def _deterministic(data: bytes, where: str, problems: list[str]) -> Any:
    value = cbor2.loads(data)
    if cbor2.dumps(value, canonical=True) != data:
        problems.append(f"{where}: not deterministic CBOR")
    return value


def _opened(data: bytes, public: bytes, decoder: Decoder, where: str) -> Any:
    """The payload of a COSE_Sign1 by `public`, as the page's signature section says."""
    problems = decoder.problems
    sign1 = decoder.table(_deterministic(data, where, problems), "cose_sign1", where)
    if not sign1 or decoder.problems:
        return None
    header = decoder.table(
        _deterministic(sign1["protected"], f"{where}.protected", problems), "protected", where
    )
    if header != {"alg": -8, "kid": hashlib.sha256(public).digest()[:8]}:
        problems.append(f"{where}: protected header {header!r} is not this key's")
    signed = cbor2.dumps(["Signature1", sign1["protected"], b"", sign1["payload"]])
    try:
        VerifyKey(public).verify(signed, sign1["signature"])
    except BadSignatureError:
        problems.append(f"{where}: the signature does not verify over the Sig_structure")
    return _deterministic(sign1["payload"], f"{where}.payload", problems)


def _plain(value: Any) -> Any:
    """What the protocol core read, as plain CBOR values (absent optional fields are None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def _agrees(
    decoded: dict[str, Any], reference: Any, where: str, problems: list[str], **derived: Any
) -> None:
    """The page's reading equals the core's, field by field, for every field the core has; the
    core's fields that are no table's are given as `derived`, as the page says to compute them."""
    expected = _plain(reference)
    for name, value in expected.items():
        if name in derived:
            if derived[name] != value:
                problems.append(f"{where}.{name}: the page makes {derived[name]!r}, not {value!r}")
            continue
        if decoded.get(name) != value:
            problems.append(f"{where}.{name}: the table reads {decoded.get(name)!r}, not {value!r}")


def bundle_problems(data: bytes, root_key: bytes, tables: Tables) -> list[str]:
    decoder = Decoder(tables)
    body = decoder.table(_opened(data, root_key, decoder, "bundle"), "bundle", "bundle")
    if body:
        if body["version"] != 1:
            decoder.problems.append(f"bundle.version is {body['version']!r}")
        links = body["root_links"] or []  # absent: no links, as the page says
        _agrees(body, open_bundle(data, root_key), "bundle", decoder.problems, root_links=links)
    return decoder.problems


def batch_problems(data: bytes, public: bytes, tables: Tables) -> list[str]:
    decoder = Decoder(tables)
    body = decoder.table(_opened(data, public, decoder, "batch"), "batch", "batch")
    if body:
        reference = open_batch(data, public)
        digest = hashlib.sha256(data).digest()
        _agrees(body, reference, "batch", decoder.problems, digest=digest)
        for i, entry in enumerate(body["entries"] or []):
            where = f"entry[{i}]"
            read = decoder.table(_deterministic(entry, where, decoder.problems), "entry", where)
            _agrees(read, parse_entry(entry), where, decoder.problems)
    return decoder.problems


def _mutated(change: Callable[[list[Row]], list[Row]], name: str) -> Tables:
    return {**TABLES, name: change(list(TABLES[name]))}


def _swap_keys(rows: list[Row], first: str, second: str) -> list[Row]:
    keys = {row.name: row.key for row in rows}
    swap = {first: keys[second], second: keys[first]}
    return [dataclasses.replace(row, key=swap.get(row.name, row.key)) for row in rows]


def _retyped(rows: list[Row], name: str, cddl: str, majors: set[int]) -> list[Row]:
    return [
        dataclasses.replace(row, type=cddl, majors=frozenset(majors)) if row.name == name else row
        for row in rows
    ]


def test_the_page_has_every_table() -> None:
    assert set(TABLES) == {
        "cose_sign1",
        "protected",
        "bundle",
        "policy",
        "key",
        "batch",
        "entry",
    }
    assert [row.key for row in TABLES["bundle"]] == list(range(1, 15))
    assert [row.key for row in TABLES["entry"]] == list(range(1, 13))


def test_a_served_bundle_decodes_with_the_tables_alone(server: Running) -> None:
    admin = server.admin()
    till, _ = enrolled_till(server.http, admin)
    ready_wallet(server.http, admin, "alice", balance=1000)
    bob = ready_wallet(server.http, admin, "bob", balance=1000)
    carol = ready_wallet(server.http, admin, "carol", balance=1000)
    frozen = admin.post(f"/v1/admin/holders/{bob.handle}/freeze", {"reason": "wire doc test"})
    assert frozen.status_code == 204, frozen.text
    lost = admin.post(f"/v1/admin/holders/{carol.handle}/loss-report", {})
    assert lost.status_code == 200, lost.text

    whole = till.bundle(0)
    assert bundle_problems(whole, till.root_key, TABLES) == []
    read = open_bundle(whole, till.root_key)
    assert read.keys_added and read.revoked_added and read.frozen_added  # every list has a type
    assert read.since == 0

    thawed = admin.post(f"/v1/admin/holders/{bob.handle}/unfreeze", {"reason": "found"})
    assert thawed.status_code == 204, thawed.text
    delta = till.bundle(read.seq)
    assert bundle_problems(delta, till.root_key, TABLES) == []
    assert open_bundle(delta, till.root_key).frozen_removed == read.frozen_added

    # the same bytes against tables with one mistake each: every one is caught
    wrong = {
        "seq and issued_at swapped": _mutated(
            lambda rows: _swap_keys(rows, "seq", "issued_at"), "bundle"
        ),
        "frozen_added and revoked_added swapped": _mutated(
            lambda rows: _swap_keys(rows, "frozen_added", "revoked_added"), "bundle"
        ),
        "iss as bytes": _mutated(lambda rows: _retyped(rows, "iss", "bstr", {2}), "bundle"),
        "kid of 16 bytes": _mutated(
            lambda rows: _retyped(rows, "kid", "bstr .size 16", {2}), "protected"
        ),
        "x and kid swapped in a key": _mutated(lambda rows: _swap_keys(rows, "kid", "x"), "key"),
        "policy key 7 missing": _mutated(lambda rows: rows[:-1], "policy"),
        "signature before payload": _mutated(
            lambda rows: _swap_keys(rows, "payload", "signature"), "cose_sign1"
        ),
    }
    for mistake, tables in wrong.items():
        assert bundle_problems(whole, till.root_key, tables), mistake


def test_an_uploaded_batch_decodes_with_the_tables_alone(server: Running) -> None:
    admin = server.admin()
    till, _ = enrolled_till(server.http, admin)
    wallet = ready_wallet(server.http, admin, "dave", balance=5000)
    code = wallet.code()
    timed_out = Entry(  # asked the server, no answer in time: decided offline
        seq=2,
        scanned_at=int(time.time()),
        clock_offset=-3,
        mode=Mode.PAY,
        amount=300,
        currency="CNY",
        venue=None,
        verdict=Reason.REPLAY,
        online=False,
        tried=True,
        bundle_seq=1,
        code=code,
    )
    entries = [
        till.entry(code, seq=1, amount=1250),
        encode_entry(timed_out),
        till.entry(wallet.code(), seq=3, mode="identity", online=True),
    ]
    data = encode_batch(till.key, till.terminal_id, first=1, prev=GENESIS, entries=entries)
    answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    assert answer.json()["acked_seq"] == 3
    assert till.prev == hashlib.sha256(data).digest()  # the bytes the server took are these

    assert batch_problems(data, till.key.public, TABLES) == []

    wrong = {
        "first and last swapped": _mutated(lambda rows: _swap_keys(rows, "first", "last"), "batch"),
        "prev of 16 bytes": _mutated(
            lambda rows: _retyped(rows, "prev", "bstr .size 16", {2}), "batch"
        ),
        "amount and currency swapped": _mutated(
            lambda rows: _swap_keys(rows, "amount", "currency"), "entry"
        ),
        "online and tried swapped": _mutated(
            lambda rows: _swap_keys(rows, "online", "tried"), "entry"
        ),
        "venue required": _mutated(
            lambda rows: [
                dataclasses.replace(row, required="yes") if row.name == "venue" else row
                for row in rows
            ],
            "entry",
        ),
        "clock_offset unsigned only": _mutated(
            lambda rows: _retyped(rows, "clock_offset", "uint", {1}), "entry"
        ),
    }
    for mistake, tables in wrong.items():
        assert batch_problems(data, till.key.public, tables), mistake


@pytest.mark.parametrize(
    ("cddl", "value", "ok"),
    [
        ("bstr .size 8", b"12345678", True),
        ("bstr .size 8", b"1234567", False),
        ("tstr .size (1..3)", "abc", True),
        ("tstr .size (1..3)", "", False),
        ("uint", -1, False),
        ("int", -1, True),
        ("0 / 1", 2, False),
        ("[* tstr]", ["a", b"b"], False),
    ],
)
def test_the_type_reader_refuses_what_the_page_would(cddl: str, value: object, ok: bool) -> None:
    decoder = Decoder(TABLES)
    decoder.typed(value, cddl, "value")
    assert (decoder.problems == []) is ok
