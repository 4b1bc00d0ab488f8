"""Auditor endpoints (§7, §8): the ledger's verifier key, the signed checkpoint, proofs, each
entry with its receipt, and entries in bulk for auditors who re-hash the whole log."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from duopass.ledger import LedgerError
from duopass.server import anchoring
from duopass.server.api.deps import Ctx
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.limits import SEQ_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import ledger_key, tlog
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
Size = Annotated[int, Query(ge=0, le=SEQ_MAX), Digits]

LEDGER_PAGE_ENTRIES_MAX: Final = 1000
"""Entries in one answer of GET /v1/ledger/entries."""


class InclusionOut(BaseModel):
    index: int
    size: int
    proof: list[str]


class ConsistencyOut(BaseModel):
    old: int
    new: int
    proof: list[str]


class EntriesOut(BaseModel):
    start: int
    entries: list[str]


class EntryOut(BaseModel):
    index: int
    data: str
    receipt: str


def _b64(items: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(item).decode() for item in items]


def _within(session: Session, *sizes: int) -> None:
    tree = tlog.size(session)
    if any(size > tree for size in sizes):
        raise Problem(ProblemCode.OUT_OF_RANGE, f"the log has {tree} entries")


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(ctx: Ctx) -> PlainTextResponse:
    """The latest checkpoint, a C2SP signed note (signed now if the log has grown)."""
    note = ctx.run(tlog.checkpoint)
    return PlainTextResponse(note.decode(), media_type="text/plain; charset=utf-8")


@router.get(
    "/key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def key(ctx: Ctx) -> PlainTextResponse:
    """The ledger's verifier key, one line: a C2SP signed-note verifier key
    (`name+hash+base64`), as `duopass audit --key` takes it. Pin it the first time, from a
    source you trust: checkpoints checked against a key the server hands out are only as good
    as that first fetch. This is the key that signs now; when it has rotated, an auditor who
    pinned an earlier one follows the chain (`GET /v1/ledger/keys`)."""
    vkey = ctx.run(ledger_key.verifier).vkey()
    return PlainTextResponse(vkey + "\n", media_type="text/plain; charset=utf-8")


class LedgerKeyOut(BaseModel):
    vkey: str
    """The key's C2SP verifier key string."""
    leaf: int | None
    """The index of the `key_rotation` leaf that made it the ledger key (None: the first)."""
    handover: int | None
    """The size of the handover checkpoint, signed by it and by the key before it."""


class LedgerKeysOut(BaseModel):
    keys: list[LedgerKeyOut]
    """Every ledger key, oldest first: the last one signs now."""


@router.get("/keys", response_model=LedgerKeysOut)
def keys(ctx: Ctx) -> LedgerKeysOut:
    """Every ledger key and the rotation leaf that made each one the key that signs
    (docs/server.md, "The ledger key rotates"). An auditor trusts only the first, pinned, and
    follows the chain through the leaves and handover checkpoints; this list is a guide."""

    def work(unit: Unit) -> list[LedgerKeyOut]:
        rows = ledger_key.chain(unit.session)
        first = rows[0].previous if rows else unit.keyring.ledger.verifier.vkey()
        listed = [LedgerKeyOut(vkey=first, leaf=None, handover=None)]
        listed += [LedgerKeyOut(vkey=r.vkey, leaf=r.leaf, handover=r.leaf + 1) for r in rows]
        return listed

    return LedgerKeysOut(keys=ctx.run(work))


@router.get(
    "/checkpoints/{size}",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **problems(404)},
)
def checkpoint_at(
    ctx: Ctx, size: Annotated[int, Path(ge=0, le=SEQ_MAX), Digits]
) -> PlainTextResponse:
    """The checkpoint signed of exactly `size` entries, if one was (a handover checkpoint, for
    an auditor following the ledger key's rotations): a C2SP signed note."""
    note = ctx.run(lambda unit: tlog.note_at(unit.session, size))
    if note is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no checkpoint was signed of {size} entries")
    return PlainTextResponse(bytes(note).decode(), media_type="text/plain; charset=utf-8")


@router.get("/proofs/inclusion", response_model=InclusionOut)
def inclusion(ctx: Ctx, index: Size, size: Size) -> InclusionOut:
    if index >= size:
        raise Problem(ProblemCode.OUT_OF_RANGE, "index must be below size")

    def work(unit: Unit) -> Sequence[bytes]:
        _within(unit.session, size)
        return tlog.inclusion(unit.session, index, size)

    return InclusionOut(index=index, size=size, proof=_b64(ctx.run(work)))


@router.get("/proofs/consistency", response_model=ConsistencyOut)
def consistency(ctx: Ctx, old: Size, new: Size) -> ConsistencyOut:
    if not 0 < old <= new:
        raise Problem(ProblemCode.OUT_OF_RANGE, "need 0 < old <= new")

    def work(unit: Unit) -> Sequence[bytes]:
        _within(unit.session, new)
        return tlog.consistency(unit.session, old, new)

    return ConsistencyOut(old=old, new=new, proof=_b64(ctx.run(work)))


@router.get("/entries", response_model=EntriesOut)
def entries(
    ctx: Ctx,
    start: Size,
    count: Annotated[
        int, Query(ge=1, le=LEDGER_PAGE_ENTRIES_MAX), Digits
    ] = LEDGER_PAGE_ENTRIES_MAX,
) -> EntriesOut:
    """Up to `count` leaves from index `start`, each the exact bytes hashed (base64); fewer only
    where the log ends (none when `start` is the log's size)."""

    def work(unit: Unit) -> list[bytes]:
        _within(unit.session, start)
        wanted = min(start + count, tlog.size(unit.session)) - start
        found = tlog.read_entries(unit.session, start, wanted)
        if len(found) != wanted:  # indices are unique and in range: fewer rows is a gap
            missing = start + len(found)
            raise Problem(ProblemCode.INTERNAL, f"ledger inconsistent: entry {missing} is missing")
        return found

    return EntriesOut(start=start, entries=_b64(ctx.run(work)))


@router.get("/entries/{index}", response_model=EntryOut, responses=problems(404))
def entry(ctx: Ctx, index: Annotated[int, Path(ge=0, le=SEQ_MAX), Digits]) -> EntryOut:
    """The leaf's exact bytes (base64) and its receipt against the latest checkpoint."""
    try:
        found = ctx.run(lambda unit: tlog.receipt(unit, index))
    except LedgerError as exc:  # the stored tree disagrees with itself: say so
        raise Problem(
            ProblemCode.INTERNAL, f"ledger inconsistent at entry {index}: {exc.reason}"
        ) from exc
    if found is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such entry")
    data, receipt = found
    return EntryOut(index=index, data=base64.b64encode(data).decode(), receipt=receipt.decode())


class AnchorsOut(BaseModel):
    size: int
    note: str
    """The signed checkpoint as anchored (its exact bytes, base64): what the TSA stamped."""
    timestamp: str | None
    """The TSA's RFC 3161 TimeStampResp (DER, base64), if there is one."""
    cosignatures: list[str]
    """Witness cosignature lines (C2SP tlog-cosignature), each to append to `note`."""


def _anchors_out(found: anchoring.Anchored) -> AnchorsOut:
    return AnchorsOut(
        size=found.size,
        note=base64.b64encode(found.note).decode(),
        timestamp=None if found.timestamp is None else base64.b64encode(found.timestamp).decode(),
        cosignatures=[line.decode() for line in found.cosignatures],
    )


@router.get("/anchors", response_model=AnchorsOut, responses=problems(404))
def anchors(ctx: Ctx) -> AnchorsOut:
    """The anchors of the latest checkpoint that has any (docs/anchors.md): a timestamp by an
    RFC 3161 TSA and witness cosignatures, made in the background after it was signed."""
    found = anchoring.latest(ctx)
    if found is None:
        raise Problem(ProblemCode.NOT_FOUND, "no checkpoint is anchored yet")
    return _anchors_out(found)


class AnchorSizesOut(BaseModel):
    sizes: list[int]
    """Anchored checkpoint sizes above `after`, ascending; fewer than `limit`: the last page."""


@router.get("/anchors/sizes", response_model=AnchorSizesOut)
def anchor_sizes(
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=SEQ_MAX), Digits] = 0,
    limit: Annotated[int, Query(ge=1, le=anchoring.SIZES_PAGE_MAX), Digits] = (
        anchoring.SIZES_PAGE_MAX
    ),
) -> AnchorSizesOut:
    """Every checkpoint size that has an anchor, so an auditor checks each (docs/anchors.md)."""
    return AnchorSizesOut(sizes=anchoring.sizes(ctx, after, limit))


@router.get("/anchors/{size}", response_model=AnchorsOut, responses=problems(404))
def anchors_of(ctx: Ctx, size: Annotated[int, Path(ge=0, le=SEQ_MAX), Digits]) -> AnchorsOut:
    """The anchors of checkpoint `size`, as `GET /v1/ledger/anchors` answers the latest."""
    found = anchoring.listed(ctx, size)
    if found is None:
        raise Problem(ProblemCode.NOT_FOUND, "that checkpoint is not anchored")
    return _anchors_out(found)
