"""Reissue in three steps for the holder (prove who you are, confirm, receive), a transfer to
another holder, "I lost my phone" as one action, and the card office's review queue and
counter loss (issue 13, PROTOCOL §6). Every decision is the policy's, on the ledger."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from duopass.protocol.encoding import b64u_encode
from duopass.server.api.deps import AdminCaller, Client, Ctx, HolderCaller, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Handle, device_key
from duopass.server.api.routes.holders import Cursor, Limit
from duopass.server.api.routes.passkeys import AssertionIn, relying_party, wire
from duopass.server.api.routes.tickets import Sub
from duopass.server.limits import LOGIN_CHARS_MAX, PAGE_ITEMS_DEFAULT, REASON_CHARS_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import holders, lost, reissue, reissue_reviews, sessions, tickets
from duopass.server.services import step_up as step_up_service
from duopass.server.services.reissue_inputs import Asked
from duopass.server.services.sessions import Caller
from duopass.server.store.decisions import PolicyVersion
from duopass.server.store.tables import Holder
from duopass.server.store.tickets import Event, Ticket
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1", tags=["reissue"])

RequestId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^rq-[0-9a-f]+$")]
OTP_CHARS_MAX = 10


class Position(BaseModel):
    lat_e6: int = Field(ge=-90_000_000, le=90_000_000)
    lon_e6: int = Field(ge=-180_000_000, le=180_000_000)


class ReissueIn(BaseModel):
    device_key: str = Field(min_length=43, max_length=43, description="the new device's key")
    position: Position | None = Field(default=None, description="where the holder says they are")


class TransferIn(BaseModel):
    to_login: str = Field(min_length=1, max_length=LOGIN_CHARS_MAX, pattern=r"^[!-~]+$")


class StepUpIn(BaseModel):
    factor: Literal["email_otp", "totp", "passkey"]
    code: str | None = Field(default=None, min_length=1, max_length=OTP_CHARS_MAX)
    assertion: AssertionIn | None = Field(
        default=None, description="the passkey's answer to the options the begin gave"
    )


class LostIn(BaseModel):
    device_key: str = Field(min_length=43, max_length=43, description="the new device's key")


class ReviewIn(BaseModel):
    action: Literal["approve", "refuse"]
    reason: str = Field(min_length=1, max_length=REASON_CHARS_MAX)


def _opened(row: Any, unit: Unit) -> dict[str, Any]:
    answer = reissue.describe(row)
    ticket = unit.session.get(Ticket, row.ticket_id)
    answer["sub"] = None if ticket is None else ticket.sub
    version = unit.session.get(PolicyVersion, row.policy_sha256)
    answer["policy"]["version"] = None if version is None else version.version
    return answer


@router.post("/me/tickets/{sub}/reissue", status_code=201, responses=problems(404, 409, 503))
def ask_reissue(
    sub: Sub, body: ReissueIn, caller: HolderCaller, address: Client, ctx: Ctx
) -> dict[str, Any]:
    """Step 1: ask for the ticket on a new device (enrolled first). The answer is the policy's
    outcome: `allow` (confirm next), `step_up` (prove it with one of `factors`), `review` (a
    person decides) or `deny`, with the rule and the policy's version and SHA-256."""
    key = device_key(body.device_key)
    position = None if body.position is None else (body.position.lat_e6, body.position.lon_e6)

    def work(unit: Unit) -> dict[str, Any]:
        holder = caller.holder(unit.session)
        ticket = tickets.by_sub(unit.session, sub, holder_id=holder.id)
        device = reissue.device_by_key(unit.session, holder, key)
        asked = Asked("reissue", caller, device, address, position)
        return _opened(reissue.open_request(unit, holder, ticket, asked), unit)

    return ctx.run(work)


@router.post("/me/tickets/{sub}/transfer", status_code=201, responses=problems(404, 409, 503))
def ask_transfer(
    sub: Sub, body: TransferIn, caller: HolderCaller, address: Client, ctx: Ctx
) -> dict[str, Any]:
    """Give the ticket to another holder (to their newest device), decided by the same policy
    as a reissue; confirmed like one."""

    def work(unit: Unit) -> dict[str, Any]:
        holder = caller.holder(unit.session)
        ticket = tickets.by_sub(unit.session, sub, holder_id=holder.id)
        to = _recipient(unit, body.to_login, holder)
        device = holders.newest_device(unit.session, to)
        asked = Asked("transfer", caller, device, address, None)
        return _opened(reissue.open_request(unit, holder, ticket, asked, to_holder=to), unit)

    return ctx.run(work)


def _recipient(unit: Unit, login: str, holder: Holder) -> Holder:
    to = unit.session.scalars(select(Holder).where(Holder.login == login)).one_or_none()
    if to is None or to.id == holder.id or to.frozen:
        raise Problem(ProblemCode.NOT_FOUND, "no holder to transfer to by that login")
    return to


@router.get("/me/reissues")
def open_requests(caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """The holder's requests still waiting (for a step-up, a review or a confirm), newest
    first: one a partner asked for on their behalf (`partner`: its name) is found here."""

    def work(unit: Unit) -> dict[str, Any]:
        rows = reissue.waiting(unit, caller.holder(unit.session))
        return {"items": [_waiting(row, name, unit) for row, name in rows]}

    return ctx.run(work)


def _waiting(row: Any, partner: str | None, unit: Unit) -> dict[str, Any]:
    """A waiting request with who asked (`partner`, None: the holder) and the ticket's event
    (`event`: its id and name), what a wallet shows the holder."""
    answer = _opened(row, unit) | {"partner": partner, "event": None}
    ticket = unit.session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    event = None if ticket is None else unit.session.get(Event, ticket.event_id)
    if event is not None:
        answer["event"] = {"id": event.id, "name": event.name}
    return answer


@router.get("/me/reissues/{request_id}", responses=problems(404))
def show_request(request_id: RequestId, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    return ctx.run(
        lambda unit: _opened(reissue.request(unit, caller.holder(unit.session), request_id), unit)
    )


@router.post("/me/reissues/{request_id}/step-up", responses=problems(403, 404, 409, 422, 429, 503))
def step_up(
    request_id: RequestId, body: StepUpIn, request: Request, caller: HolderCaller, ctx: Ctx
) -> dict[str, Any]:
    """Without `code` or `assertion`: begin (an e-mailed code is sent; for TOTP the
    authenticator's code is awaited; for a passkey the answer carries `options` for
    `navigator.credentials.get`). With one: check it; the request is then ready to confirm.
    Wrong codes and assertions count per request and against the holder's sign-in limit."""
    rp = relying_party(request, ctx.settings) if body.factor == "passkey" else None
    if body.code is None and body.assertion is None:

        def begin(unit: Unit) -> dict[str, Any]:
            holder = caller.holder(unit.session)
            row = reissue.request(unit, holder, request_id)
            return reissue.begin_step_up(unit, holder, row, factor=body.factor, rp=rp)

        return ctx.run(begin)
    code: str | step_up_service.PasskeyProof
    if body.assertion is not None and rp is not None and body.code is None:
        code = step_up_service.PasskeyProof(rp, wire(body.assertion))
    elif body.code is not None and body.assertion is None and rp is None:
        code = body.code
    else:
        raise Problem(ProblemCode.INVALID_REQUEST, "a passkey takes `assertion`, a code `code`")
    return step_up_service.verified(
        ctx,
        holder_id=caller.id,
        purpose=request_id,
        factor=body.factor,
        code=code,
        work=lambda unit: reissue.stepped_up(
            unit, reissue.request(unit, caller.holder(unit.session), request_id), factor=body.factor
        ),
    )


@router.post("/me/reissues/{request_id}/confirm", responses=problems(403, 404, 409))
def confirm(request_id: RequestId, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Steps 2 and 3: the ticket moves to the device at the next generation and every older
    credential is revoked; the answer carries the new credential (null while the event is too
    far ahead: the next sync mints it)."""

    def work(unit: Unit) -> dict[str, Any]:
        holder = caller.holder(unit.session)
        row = reissue.request(unit, holder, request_id)
        done = reissue.confirm(unit, holder, row)
        credential = done.credential
        return {
            "request_id": row.id,
            "state": row.state,
            "sub": done.ticket.sub,
            "gen": done.ticket.gen,
            "credential": None if credential is None else b64u_encode(credential.l1),
            "cti": None if credential is None else credential.cti.hex(),
            "refusal": done.refusal,
        }

    return ctx.run(work)


@router.post("/me/reissues/{request_id}/decline", responses=problems(404, 409))
def decline(request_id: RequestId, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Say no to a request still waiting (one a partner asked for on your behalf, say): it
    ends `denied` and the ticket stays where it is; on the ledger as a decision (action
    `decline`, rule `holder`). 409 once it is done, denied or expired."""

    def work(unit: Unit) -> dict[str, Any]:
        row = reissue.request(unit, caller.holder(unit.session), request_id)
        return _opened(reissue_reviews.decline(unit, row), unit)

    return ctx.run(work)


@router.post("/me/lost", responses=problems(401, 404, 503))
def report_lost(body: LostIn, caller: HolderCaller, address: Client, ctx: Ctx) -> dict[str, Any]:
    """I lost my phone, from the new one: every other device key is revoked with its
    credentials, and the purse and every ticket move here, each through the policy. Asks for a
    recent password sign-in (a stolen phone's session cannot do it)."""
    sessions.require_recent(caller, ctx.settings, ctx.now())
    key = device_key(body.device_key)
    return ctx.run(lambda unit: _lost(unit, caller.holder(unit.session), key, caller, address))


def _lost(
    unit: Unit, holder: Holder, key: bytes, caller: Caller | None, address: str | None
) -> dict[str, Any]:
    device = reissue.device_by_key(unit.session, holder, key)
    return lost.report(unit, holder, device, caller=caller, address=address)


@router.post("/admin/holders/{handle}/lost", responses=problems(403, 404, 409, 503))
def counter_lost(handle: Handle, body: LostIn, caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """The same at the counter, for the holder standing there with their new phone (admins:
    the admin's in-person check stands for a step-up the policy asks, a person's decision on
    the ledger by them; a request sent to review stays there). `lost.at_counter`."""
    key = device_key(body.device_key)

    def work(unit: Unit) -> dict[str, Any]:
        holder = holders.by_handle(unit.session, handle)
        device = reissue.device_by_key(unit.session, holder, key)
        return lost.at_counter(unit, holder, device, by=caller.id)

    return ctx.run(work)


@router.get("/admin/reviews", responses=problems(422))
def reviews(
    _caller: StaffCaller, ctx: Ctx, limit: Limit = PAGE_ITEMS_DEFAULT, cursor: Cursor = None
) -> dict[str, Any]:
    """Reissue requests waiting for a person, oldest first, with their inputs and rule."""
    return ctx.run(lambda unit: reissue_reviews.listing(unit, limit=limit, cursor=cursor))


@router.post("/admin/reviews/{request_id}", responses=problems(404, 409))
def review(request_id: RequestId, body: ReviewIn, caller: StaffCaller, ctx: Ctx) -> dict[str, Any]:
    """Approve (the holder may confirm) or refuse; on the ledger as a decision."""

    def work(unit: Unit) -> dict[str, Any]:
        row = reissue_reviews.decide(
            unit,
            request_id,
            approve=body.action == "approve",
            reason=body.reason,
            staff_id=caller.id,
        )
        return reissue.describe(row)

    return ctx.run(work)
