"""Terminal endpoints (§8): enrolment, online scans exactly once, trust bundles, journals,
heartbeats."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.journal import BATCH_BYTES_MAX, JournalError, open_batch
from duopass.protocol.limits import CODE_CHARS_MAX
from duopass.protocol.signed_requests import TIME_HEADER
from duopass.protocol.verify import Mode
from duopass.server import roots
from duopass.server.api.deps import Client, Ctx, TerminalCaller
from duopass.server.api.lean import LeanRoute
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes.purse import PIN_PATTERN
from duopass.server.context import AppContext
from duopass.server.limits import AMOUNT_MAX, ID_CHARS_MAX, SEQ_MAX, TIME_MAX
from duopass.server.logbook import Event, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    bundles,
    confirmations,
    fleet,
    journals,
    pin_scan,
    scans,
    terminals,
    throttle,
)
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/terminal", tags=["terminal"], route_class=LeanRoute)
"""Lean: the scan route skips FastAPI's per-request dependency resolution (api/lean.py)."""

SignedAt = Annotated[str, Header(alias=TIME_HEADER, max_length=16)]
"""The signed request's time by the terminal's clock: digits, checked by `TerminalCaller`."""

JOURNAL_ATTEMPTS = 8
"""A batch that finds its locks taken (journals.py `_lock`) tries again after 20, 40 .. 1280 ms,
then answers 503 busy."""


class EnrolIn(BaseModel):
    terminal_id: str = Field(min_length=1, max_length=ID_CHARS_MAX)
    enrol_code: str = Field(min_length=1, max_length=64)
    public_key: str = Field(
        min_length=43, max_length=43, description="raw Ed25519 key, unpadded base64url"
    )
    proof: str = Field(
        min_length=86, max_length=86, description="signature of the enrolment message"
    )


class EnrolOut(BaseModel):
    terminal_id: str
    iss: str
    root_key: str = Field(description="the issuer root key to pin, unpadded base64url")
    mode: str
    venue: str | None
    currency: str | None
    event: str | None


class ScanIn(BaseModel):
    code: str = Field(min_length=1, max_length=CODE_CHARS_MAX + 2)
    mode: Literal["pay", "identity", "entry"]
    amount: int | None = Field(default=None, ge=1, le=AMOUNT_MAX)
    terminal_id: str = Field(min_length=1, max_length=ID_CHARS_MAX)
    seq: int = Field(ge=0, le=SEQ_MAX)
    scanned_at: int = Field(ge=0, le=TIME_MAX)
    pin: str | None = Field(
        default=None,
        pattern=PIN_PATTERN,
        description="the PIN the holder typed at the till, sent again with the same seq after "
        "a 403 pin_required (purse limits; wrong PINs are throttled per holder)",
    )


class ScanOut(BaseModel):
    ok: bool
    reason: str
    mode: str = "online"
    iss: str | None = None
    sub: str | None = None
    cti: str | None = None
    ctr: int | None = None


class HeartbeatIn(BaseModel):
    bundle_seq: int | None = Field(
        default=None, ge=0, le=SEQ_MAX, description="the trust bundle version it holds"
    )
    backlog: int = Field(
        ge=0, le=SEQ_MAX, description="its journal entries the server has not acknowledged"
    )


class HeartbeatOut(BaseModel):
    clock_offset_s: int = Field(description="the terminal's clock minus the server's")


class JournalIn(BaseModel):
    batch: str = Field(
        min_length=1,
        max_length=(BATCH_BYTES_MAX * 4 + 2) // 3,
        description="the signed batch (docs/protocol-core.md), unpadded base64url",
    )


class Rejected(BaseModel):
    seq: int
    reason: str = Field(description="a §3 reason, MALFORMED, CONFLICT, LATE or CURRENCY")


class JournalOut(BaseModel):
    acked_seq: int = Field(description="every entry up to here is held: delete up to here only")
    duplicates: int = Field(description="entries already held byte for byte")
    rejected: list[Rejected] = Field(description="entries held but not settled: pending review")


def _raw(text: str, what: str) -> bytes:
    try:
        return b64u_decode(text)
    except EncodingError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, f"{what} is not unpadded base64url") from exc


@router.post("/enrol", response_model=EnrolOut, responses=problems(403, 429))
def enrol(body: EnrolIn, ctx: Ctx, client: Client) -> EnrolOut:
    """Bind a terminal's key with its one-time enrolment code and a proof of possession; wrong
    codes are throttled per terminal id and per network (429 with Retry-After)."""
    secret = ctx.keyring.digest_key
    keys = [
        throttle.Throttle.of(throttle.ENROLMENT, secret, body.terminal_id),
        *throttle.for_client(ctx.settings, secret, client),
    ]
    terminal = throttle.guarded(
        ctx,
        keys,
        lambda unit: terminals.enrol(
            unit,
            terminal_id=body.terminal_id,
            enrol_code=body.enrol_code,
            public_key=_raw(body.public_key, "public_key"),
            proof=_raw(body.proof, "proof"),
        ),
        counted={ProblemCode.BAD_ENROLMENT_CODE},
    )
    ctx.terminals.changes.bump()
    return EnrolOut(
        terminal_id=terminal.id,
        iss=ctx.settings.issuer,
        root_key=b64u_encode(roots.current(ctx.settings.data_dir, ctx.keyring.root).key.public),
        mode=terminal.mode,
        venue=terminal.venue,
        currency=terminal.currency,
        event=terminal.event,
    )


@router.post("/scans", response_model=ScanOut, responses=problems(403, 429))
async def scan(body: ScanIn, terminal: TerminalCaller, ctx: Ctx) -> dict[str, Any]:
    """The verdict of §3 against the whole system; the same (terminal_id, seq) returns the first.
    Concurrent scans are committed together (`AppContext.group`): answered once durable. A
    payment over the holder's purse limits is refused with a problem (403 limit_daily_total,
    limit_meal_count, pin_required, pin_wrong, pin_not_set, pin_declined, confirmation_expired)
    and nothing is recorded for the seq: the till asks for the PIN and sends the same seq again,
    or journals its refusal. A pin_required carries a `confirmation` id: the holder may approve
    the payment in their wallet instead, and the same seq sent again without a PIN passes."""
    if body.mode == "pay" and body.amount is None:
        raise Problem(ProblemCode.INVALID_REQUEST, "a payment needs an amount")
    if body.terminal_id != terminal.id:
        raise Problem(ProblemCode.FORBIDDEN, "terminal_id differs from the signing terminal")
    if body.mode not in (terminal.mode, "identity"):
        raise Problem(ProblemCode.FORBIDDEN, f"this terminal scans for {terminal.mode}")
    request = scans.ScanRequest(
        code=body.code,
        mode=Mode(body.mode),
        amount=body.amount if body.mode == "pay" else None,
        seq=body.seq,
        scanned_at=body.scanned_at,
    )
    try:
        if body.pin is not None and request.mode is Mode.PAY:
            verdict = await run_in_threadpool(pin_scan.scan, ctx, terminal, request, body.pin)
        else:
            verdict = await ctx.group.run(
                lambda unit: scans.scan(unit, terminal=terminal, request=request)
            )
    except confirmations.PinRequired as refusal:
        if refusal.pending is None:
            raise
        raise await run_in_threadpool(confirmations.open_for, ctx, refusal) from None
    ctx.metrics.scanned(verdict["reason"])
    return verdict


@router.get(
    "/bundle", response_class=Response, responses={200: {"content": {"application/cbor": {}}}}
)
def bundle(
    terminal: TerminalCaller,
    ctx: Ctx,
    signed_at: SignedAt,
    since: Annotated[int, Query(ge=0, le=SEQ_MAX), Digits] = 0,
) -> Response:
    """The signed trust bundle, whole (`since=0`) or as a delta since a version; the version
    sent and the terminal's clock offset are noted for the fleet view (`GET
    /v1/admin/terminals`)."""

    def served(unit: Unit) -> bytes:
        data = bundles.build(unit, since=since)
        fleet.note_bundle(unit, terminal.id, signed_at=int(signed_at))
        return data

    return Response(ctx.run(served), media_type="application/cbor")


@router.post("/heartbeat", response_model=HeartbeatOut)
def heartbeat(
    body: HeartbeatIn, terminal: TerminalCaller, ctx: Ctx, signed_at: SignedAt
) -> dict[str, Any]:
    """The terminal is alive (an idle agent sends one every 300 s): the bundle version it
    holds, its journal backlog, and its clock (the signed time) are noted for the fleet sweep
    (docs/server.md, "The fleet watched")."""
    at = int(signed_at)  # digits: the signature check read them
    ctx.run(
        lambda unit: fleet.note_heartbeat(
            unit, terminal.id, signed_at=at, bundle_seq=body.bundle_seq, backlog=body.backlog
        )
    )
    return {"clock_offset_s": at - ctx.now()}


@router.post("/journal", response_model=JournalOut, responses=problems(403))
def journal(body: JournalIn, terminal: TerminalCaller, ctx: Ctx) -> dict[str, Any]:
    """A signed batch of journal entries (§5), settled exactly once per (terminal_id, seq)."""
    try:
        return _journal(body, terminal, ctx)
    except Problem as refusal:
        emit(
            Event.JOURNAL_BATCH_REFUSED,
            f"journal batch of {terminal.id} refused: {refusal.code.value}",
            terminal_id=terminal.id,
            reason=refusal.code.value,
            detail=refusal.detail,
        )
        raise


def _journal(body: JournalIn, terminal: terminals.TerminalRow, ctx: AppContext) -> dict[str, Any]:
    data = _raw(body.batch, "batch")
    public_key = terminal.public_key
    assert public_key is not None, "an authenticated terminal is enrolled"
    try:  # the batch signature is checked outside the transaction: it holds no lock
        batch = open_batch(data, public_key)
    except JournalError as exc:
        raise Problem(ProblemCode.BAD_BATCH, str(exc)) from exc
    if batch.terminal_id != terminal.id:
        raise Problem(ProblemCode.FORBIDDEN, "the batch is another terminal's")
    return ctx.run(
        lambda unit: journals.ingest(unit, terminal_id=terminal.id, batch=batch, data=data),
        attempts=JOURNAL_ATTEMPTS,
        journal_in_memory=True,  # a large batch's savepoint: its pages copied in memory
    )  # a batch never waits for a lock
