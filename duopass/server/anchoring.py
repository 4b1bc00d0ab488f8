"""The record anchored outside itself: each newly signed checkpoint is timestamped by an RFC 3161
TSA and cosigned by C2SP tlog-witnesses, by a thread of its own (never in a payment's path).

What the anchors answer is kept as files in `data_dir/anchors/<size>/` (outside the database,
so a restored database older than them is seen): `note` (the signed checkpoint as anchored),
`timestamp.tsr` (the TSA's TimeStampResp) and `cosignature-<key hash>` (a witness's line,
kept only once it verifies with the witness key configured), written once there is an anchor
to keep (a round whose anchors all fail leaves no folder); `anchors/latest` and
`anchors/held-<key hash>` name the latest size anchored and the latest each witness cosigned
(`latest` moves once every anchor of a round was tried, so an auditor does not see a checkpoint
half anchored). `GET /v1/ledger/anchors` serves the latest, `GET /v1/ledger/anchors/sizes`
lists every size anchored (from the index `anchors/sizes.u64`, `anchor_index`) and
`GET /v1/ledger/anchors/{size}` serves one. A failed anchor is logged and tried again next
interval; the log never waits for one. After a rotation of the ledger key, each witness is sent
the handover checkpoints it missed first (`_hand_over`), for it to follow the chain
(docs/anchors.md).
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
from duopass.server import anchor_index
from duopass.server.context import AppContext
from duopass.server.files import replace_atomically
from duopass.server.maintenance import Periodic
from duopass.server.services import ledger_key, tlog
from duopass.server.unit_of_work import Unit

__all__ = [
    "SIZES_PAGE_MAX",
    "Anchored",
    "Anchoring",
    "WitnessEndpoint",
    "anchor_once",
    "latest",
    "listed",
    "parse_witness",
    "read",
    "sizes",
]

log = logging.getLogger("duopass.server.anchoring")
TIMEOUT_S = 10.0
SIZES_PAGE_MAX = 1000
"""Anchored sizes in one answer of `GET /v1/ledger/anchors/sizes`."""


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


def listed(ctx: AppContext, size: int) -> Anchored | None:
    """The anchors of checkpoint `size` if `sizes` lists it."""
    top = _pointer(ctx, "latest")
    if top is None or size > top or not anchor_index.holds(_folder(ctx), size):
        return None
    return read(ctx, size)


def sizes(ctx: AppContext, after: int, limit: int) -> list[int]:
    """The anchored sizes above `after`, ascending, at most `limit`, none above `latest` (a
    round under way is not shown): a binary search in the index, never a folder listing."""
    top = _pointer(ctx, "latest")
    folder = _folder(ctx)
    if top is None or not folder.is_dir():
        return []
    return anchor_index.page(folder, after, limit, top)


def _keep(ctx: AppContext, size: int, note: bytes, name: str, data: bytes) -> None:
    """Write an anchor of checkpoint `size` (its note first, if the folder has none yet) and
    index the size: the record follows the file, so it never names a size without an anchor."""
    where = _folder(ctx) / str(size)
    if not (where / "note").is_file():
        _write(where / "note", note)
    _write(where / name, data)
    anchor_index.add(_folder(ctx), size)


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
    """The witness's cosignature line of `note` (tlog-witness add-checkpoint), only its key's."""
    size = _size(ctx, note)
    name, old = witness.key.name, _held_by(ctx, witness)
    for _ in range(2):  # a 409 names the size the witness holds: once more from there
        proof = _proof(ctx, old, size)
        answer = client.post(
            f"{witness.url}/add-checkpoint", content=format_add_checkpoint(old, proof, note)
        )
        said = answer.text.strip()[:200]
        if answer.status_code == 409 and said.isdigit() and int(said) != old:
            old = int(said)
            continue
        if answer.status_code in (409, 422) or (answer.status_code == 400 and old > size):
            # it holds a checkpoint this one does not extend: a fork, or a restored database
            log.error("witness %s refuses checkpoint %d as a fork: %s", name, size, said)
        answer.raise_for_status()
        lines = [line for line in answer.content.splitlines(keepends=True) if line.strip()]
        ours = b"".join(line for line in lines if verify_cosignatures(note + line, [witness.key]))
        if not ours:
            raise ValueError(f"witness {name} answered no cosignature of its key")
        return ours
    raise ValueError(f"witness {name} kept answering 409")


def anchor_once(ctx: AppContext, client: httpx.Client) -> int:
    """Anchor the latest signed checkpoint where it is not yet anchored; returns anchors added."""
    note = ctx.run(lambda u: tlog.latest_note(u.session))
    if note is None:
        return 0
    note = bytes(note)
    size = _size(ctx, note)
    where = _folder(ctx) / str(size)
    added = 0
    settings = ctx.settings
    if settings.anchor_tsa_url and not (where / "timestamp.tsr").is_file():
        try:
            _keep(
                ctx, size, note, "timestamp.tsr", _timestamp(client, settings.anchor_tsa_url, note)
            )
            added += 1
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("timestamp of checkpoint %d failed: %s", size, exc)
    for entry in settings.anchor_witnesses:
        witness = parse_witness(entry)
        name = f"cosignature-{witness.key.key_hash:08x}"
        if (where / name).is_file():
            continue
        try:
            _hand_over(ctx, client, witness, size)
            _keep(ctx, size, note, name, _cosign(ctx, client, witness, note))
            _write(_folder(ctx) / f"held-{witness.key.key_hash:08x}", f"{size}\n".encode())
            added += 1
        except (httpx.HTTPError, ValueError, LedgerError) as exc:
            log.warning("witness %s on checkpoint %d: %s", witness.key.name, size, exc)
    if anchor_index.has_anchor(where) and (_pointer(ctx, "latest") or 0) < size:
        anchor_index.add(_folder(ctx), size)  # indexed before it is shown, even after a crash
        _write(_folder(ctx) / "latest", f"{size}\n".encode())
    return added


def _hand_over(ctx: AppContext, client: httpx.Client, witness: WitnessEndpoint, size: int) -> None:
    """Have the witness cosign each handover checkpoint between the one it holds and `size`
    first: a witness that knows the old ledger key follows the chain only through them."""

    def handovers(unit: Unit) -> list[tuple[int, bytes | None]]:
        held = _held_by(ctx, witness)
        sizes = [r.leaf + 1 for r in ledger_key.chain(unit.session) if held < r.leaf + 1 < size]
        return [(h, tlog.note_at(unit.session, h)) for h in sizes]

    for handover, note in ctx.run(handovers):
        if note is None:
            raise ValueError(f"the handover checkpoint {handover} is not in the database")
        name = f"cosignature-{witness.key.key_hash:08x}"
        _keep(ctx, handover, note, name, _cosign(ctx, client, witness, note))
        _write(_folder(ctx) / f"held-{witness.key.key_hash:08x}", f"{handover}\n".encode())


class Anchoring(Periodic):
    """`anchor_once` every `anchor_interval_s`; first, the index of anchored sizes checked
    against the folders (a crash may have left it short)."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__("anchoring", ctx.settings.anchor_interval_s)
        self.ctx = ctx
        self.checked = False

    def work(self) -> None:
        if not self.checked:
            if anchor_index.repair(_folder(self.ctx)):
                log.warning("the index of anchored sizes differed from the folders: rebuilt")
            self.checked = True
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            anchor_once(self.ctx, client)
