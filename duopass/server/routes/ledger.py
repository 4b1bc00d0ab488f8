"""Auditor endpoints (§7, §8): the signed checkpoint, proofs, each entry with its receipt, and
entries in bulk for auditors who re-hash the whole log."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from duopass.ledger import LedgerError, hash_leaf, make_receipt, open_checkpoint
from duopass.server.deps import Ctx
from duopass.server.errors import Code, Problem
from duopass.server.limits import SEQ_MAX
from duopass.server.openapi import problems
from duopass.server.params import Digits
from duopass.server.services import ledger
from duopass.server.store.tables import LedgerLeaf

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


def _within(session: Any, *sizes: int) -> None:
    tree = ledger.size(session)
    if any(size > tree for size in sizes):
        raise Problem(Code.OUT_OF_RANGE, f"the log has {tree} entries")


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(ctx: Ctx) -> PlainTextResponse:
    """The latest checkpoint, a C2SP signed note (signed now if the log has grown)."""
    now = ctx.now()
    note = ctx.run(lambda s: ledger.checkpoint(s, ctx.keyring.ledger, now))
    return PlainTextResponse(note.decode(), media_type="text/plain; charset=utf-8")


@router.get("/proofs/inclusion", response_model=InclusionOut)
def inclusion(ctx: Ctx, index: Size, size: Size) -> InclusionOut:
    if index >= size:
        raise Problem(Code.OUT_OF_RANGE, "index must be below size")

    def work(session: Any) -> Sequence[bytes]:
        _within(session, size)
        return ledger.inclusion(session, index, size)

    return InclusionOut(index=index, size=size, proof=_b64(ctx.run(work)))


@router.get("/proofs/consistency", response_model=ConsistencyOut)
def consistency(ctx: Ctx, old: Size, new: Size) -> ConsistencyOut:
    if not 0 < old <= new:
        raise Problem(Code.OUT_OF_RANGE, "need 0 < old <= new")

    def work(session: Any) -> Sequence[bytes]:
        _within(session, new)
        return ledger.consistency(session, old, new)

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

    def work(session: Any) -> list[bytes]:
        _within(session, start)
        end = min(start + count, ledger.size(session))
        rows = session.execute(
            select(LedgerLeaf.index, LedgerLeaf.data)
            .where(LedgerLeaf.index >= start, LedgerLeaf.index < end)
            .order_by(LedgerLeaf.index)
        ).all()
        if len(rows) != end - start:  # indices are unique and in range: fewer rows is a gap
            present = {index for index, _data in rows}
            missing = next(index for index in range(start, end) if index not in present)
            raise Problem(Code.INTERNAL, f"ledger inconsistent: entry {missing} is missing")
        return [data for _index, data in rows]

    return EntriesOut(start=start, entries=_b64(ctx.run(work)))


@router.get("/entries/{index}", response_model=EntryOut, responses=problems(404))
def entry(ctx: Ctx, index: Annotated[int, Path(ge=0, le=SEQ_MAX), Digits]) -> EntryOut:
    """The leaf's exact bytes (base64) and its receipt against the latest checkpoint."""
    now = ctx.now()

    def work(session: Any) -> EntryOut:
        leaf = session.get(LedgerLeaf, index)
        if leaf is None:
            raise Problem(Code.NOT_FOUND, "no such entry")
        note = ledger.checkpoint(session, ctx.keyring.ledger, now)
        tree_size = open_checkpoint(note, ctx.keyring.ledger.verifier).checkpoint.size
        proof = ledger.inclusion(session, index, tree_size)
        try:
            receipt = make_receipt(
                index=index, leaf_hash=hash_leaf(leaf.data), proof=proof, signed_checkpoint=note
            )
        except (
            LedgerError
        ) as exc:  # the stored tree disagrees with itself: say so, never paper over it
            raise Problem(
                Code.INTERNAL, f"ledger inconsistent at entry {index}: {exc.reason}"
            ) from exc
        return EntryOut(
            index=index, data=base64.b64encode(leaf.data).decode(), receipt=receipt.decode()
        )

    return ctx.run(work)
