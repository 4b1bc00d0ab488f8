"""The record anchored outside itself: each newly signed checkpoint is timestamped by an RFC 3161
TSA and cosigned by C2SP tlog-witnesses, by a thread of its own (never in a payment's path).

What the anchors answer is kept as files in `data_dir/anchors/<size>/` (outside the database,
so a restored database older than them is seen): `note` (the signed checkpoint as anchored),
`timestamp.tsr` (the TSA's TimeStampResp) and `cosignature-<key hash>` (a witness's line,
kept only once it verifies with the witness key configured); `anchors/latest` and
`anchors/held-<key hash>` name the latest size anchored and the latest each witness cosigned.
`GET /v1/ledger/anchors` serves the latest. A failed anchor is logged and tried again next
interval; the log never waits for one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import httpx

from duopass.ledger import LedgerError
from duopass.ledger.cosignature import CosignerKey, verify_cosignatures
from duopass.ledger.timestamp import TSA_REPLY_BYTES_MAX, timestamp_request
from duopass.ledger.witness import format_add_checkpoint
from duopass.server.context import AppContext
from duopass.server.files import replace_atomically
from duopass.server.maintenance import Periodic
from duopass.server.services import ledger_key, tlog
from duopass.server.unit_of_work import Unit

__all__ = ["Anchored", "Anchoring", "WitnessEndpoint", "anchor_once", "latest", "parse_witness"]

log = logging.getLogger("duopass.server.anchoring")
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WitnessEndpoint:
    url: str
    key: CosignerKey


def parse_witness(entry: str) -> WitnessEndpoint:
    """`<base URL> <vkey>` (a setting) into a witness to ask."""
    url, _, vkey = entry.strip().partition(" ")
    if not url.startswith(("http://", "https://")):
        raise ValueError("a witness is '<http(s) URL> <vkey>'")
    return WitnessEndpoint(url.rstrip("/"), CosignerKey.parse(vkey))


@dataclass(frozen=True)
class Anchored:
    """The anchors kept for one checkpoint."""

    size: int
    note: bytes
    timestamp: bytes | None
    cosignatures: tuple[bytes, ...]


def _folder(ctx: AppContext) -> Path:
    return ctx.settings.data_dir / "anchors"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, data)


def _pointer(ctx: AppContext, name: str) -> int | None:
    """A size kept in `anchors/<name>` (`latest`, `held-<key ID>`): no folder listing a read."""
    path = _folder(ctx) / name
    text = path.read_text().strip() if path.is_file() else ""
    return int(text) if text.isdigit() else None


def read(ctx: AppContext, size: int) -> Anchored | None:
    where = _folder(ctx) / str(size)
    if not (where / "note").is_file():
        return None
    tsr = where / "timestamp.tsr"
    lines = tuple(p.read_bytes() for p in sorted(where.glob("cosignature-*")))
    return Anchored(
        size, (where / "note").read_bytes(), tsr.read_bytes() if tsr.is_file() else None, lines
    )


def latest(ctx: AppContext) -> Anchored | None:
    """The anchors of the largest checkpoint that has any."""
    size = _pointer(ctx, "latest")
    return None if size is None else read(ctx, size)


def _timestamp(client: httpx.Client, url: str, note: bytes) -> bytes:
    answer = client.post(
        url,
        content=timestamp_request(note),
        headers={"Content-Type": "application/timestamp-query"},
    )
    answer.raise_for_status()
    if len(answer.content) > TSA_REPLY_BYTES_MAX:
        raise ValueError("the TSA's reply is too large")
    return answer.content


def _held_by(ctx: AppContext, witness: WitnessEndpoint) -> int:
    """The largest checkpoint this witness cosigned for us (0: none yet)."""
    return _pointer(ctx, f"held-{witness.key.key_hash:08x}") or 0


def _proof(ctx: AppContext, old: int, new: int) -> list[bytes]:
    if not 0 < old < new:
        return []
    return ctx.run(lambda unit: tlog.consistency(unit.session, old, new))


def _size(ctx: AppContext, note: bytes) -> int:
    """The size of a checkpoint this log signed (with whichever of its keys)."""
    return ctx.run(lambda unit: ledger_key.open_ours(unit, note)).size


def _cosign(ctx: AppContext, client: httpx.Client, witness: WitnessEndpoint, note: bytes) -> bytes:
    size = _size(ctx, note)
    old = _held_by(ctx, witness)
    for _ in range(2):  # a 409 names the size the witness holds: once more from there
        proof = _proof(ctx, old, size)
        answer = client.post(
            f"{witness.url}/add-checkpoint", content=format_add_checkpoint(old, proof, note)
        )
        if answer.status_code == 409 and answer.text.strip().isdigit():
            old = int(answer.text.strip())
            continue
        if answer.status_code == 422:  # the witness holds a checkpoint this one does not extend
            log.error("witness %s refuses checkpoint %d as a fork: %s", witness.key.name, size,
                      answer.text[:200])  # fmt: skip
        answer.raise_for_status()
        if not verify_cosignatures(note + answer.content, [witness.key]):
            raise ValueError(f"witness {witness.key.name} answered no cosignature of its key")
        return answer.content
    raise ValueError(f"witness {witness.key.name} kept answering 409")


def anchor_once(ctx: AppContext, client: httpx.Client) -> int:
    """Anchor the latest signed checkpoint where it is not yet anchored; returns anchors added."""
    note = ctx.run(lambda u: tlog.latest_note(u.session))
    if note is None:
        return 0
    note = bytes(note)
    size = _size(ctx, note)
    where = _folder(ctx) / str(size)
    if not (where / "note").is_file():
        _write(where / "note", note)
    added = 0
    settings = ctx.settings
    if settings.anchor_tsa_url and not (where / "timestamp.tsr").is_file():
        try:
            _write(where / "timestamp.tsr", _timestamp(client, settings.anchor_tsa_url, note))
            _write(_folder(ctx) / "latest", f"{size}\n".encode())
            added += 1
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("timestamp of checkpoint %d failed: %s", size, exc)
    for entry in settings.anchor_witnesses:
        witness = parse_witness(entry)
        path = where / f"cosignature-{witness.key.key_hash:08x}"
        if path.is_file():
            continue
        try:
            _hand_over(ctx, client, witness, size)
            _write(path, _cosign(ctx, client, witness, note))
            _write(_folder(ctx) / f"held-{witness.key.key_hash:08x}", f"{size}\n".encode())
            _write(_folder(ctx) / "latest", f"{size}\n".encode())
            added += 1
        except (httpx.HTTPError, ValueError, LedgerError) as exc:
            log.warning("witness %s on checkpoint %d: %s", witness.key.name, size, exc)
    return added


def _hand_over(ctx: AppContext, client: httpx.Client, witness: WitnessEndpoint, size: int) -> None:
    """Have the witness cosign each handover checkpoint between the one it holds and `size`
    first: a witness that knows the old ledger key follows the chain only through them."""

    def handovers(unit: Unit) -> list[tuple[int, bytes | None]]:
        held = _held_by(ctx, witness)
        sizes = [r.leaf + 1 for r in ledger_key.chain(unit.session) if held < r.leaf + 1 < size]
        return [(h, tlog.note_at(unit.session, h)) for h in sizes]

    for handover, note in ctx.run(handovers):
        where = _folder(ctx) / str(handover)
        if note is None:
            raise ValueError(f"the handover checkpoint {handover} is not in the database")
        if not (where / "note").is_file():
            _write(where / "note", note)
        _write(
            where / f"cosignature-{witness.key.key_hash:08x}", _cosign(ctx, client, witness, note)
        )
        _write(_folder(ctx) / f"held-{witness.key.key_hash:08x}", f"{handover}\n".encode())


class Anchoring(Periodic):
    """`anchor_once` every `anchor_interval_s`."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__("anchoring", ctx.settings.anchor_interval_s)
        self.ctx = ctx

    def work(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            anchor_once(self.ctx, client)
