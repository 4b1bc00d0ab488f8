"""Step-up (issue 13): a signed-in holder proves again with a code mailed through a real SMTP
server (aiosmtpd, `smtp`) or from their authenticator app, for one purpose. Codes expire, work
once, take a few wrong tries, and wrong ones count against the holder's sign-in limiter.

No route uses the service yet: these run it through the server's own context, on a holder the
card office made over HTTP, and read the mail the SMTP server took."""

from __future__ import annotations

import logging
from typing import Any

import pyotp
import pytest
from sqlalchemy import func, select

from duopass.server.problems import STATUS, Problem
from duopass.server.services import step_up
from duopass.server.store.decisions import StepUpCode
from duopass.server.store.tables import Holder
from tests.mail import Mailbox
from tests.server.harness import Running, Wallet

ADDRESS = "ada@example.edu"


def _holder(server: Running, login: str = "ada") -> int:
    server.admin().holder(login)
    return server.ctx.run(
        lambda unit: unit.session.scalars(select(Holder.id).where(Holder.login == login)).one()
    )


def _begin(server: Running, holder_id: int, purpose: str = "r-1", **kw: Any) -> dict[str, Any]:
    def work(unit: Any) -> dict[str, Any]:
        holder = unit.session.get(Holder, holder_id)
        return step_up.begin(unit, holder=holder, purpose=purpose, **{"factor": "email_otp", **kw})

    return server.ctx.run(work)


def _verify(
    server: Running, holder_id: int, code: str, purpose: str = "r-1", factor: str = "email_otp"
) -> str:
    return step_up.verified(
        server.ctx,
        holder_id=holder_id,
        purpose=purpose,
        factor=factor,
        code=code,
        work=lambda unit: "done",
    )


def _refused(code: str, status: int, call: Any, *args: Any, **kw: Any) -> Problem:
    with pytest.raises(Problem) as refused:
        call(*args, **kw)
    assert (refused.value.code.value, STATUS[refused.value.code]) == (code, status)
    return refused.value


def test_a_mailed_code_proves_the_holder_once(mail_server, smtp: Mailbox, clock, caplog):
    server = mail_server
    caplog.set_level(logging.INFO, logger="duopass.server.events")
    ada = _holder(server)
    begun = _begin(server, ada, about="reissuing your Spring Gala ticket")
    assert begun == {
        "factor": "email_otp",
        "sent_to": "a***@example.edu",
        "expires_at": int(clock.now) + 600,
    }
    (mail,) = smtp.to(ADDRESS)
    assert mail["From"] == "cards@example.edu"
    text = mail.get_content()
    assert "reissuing your Spring Gala ticket" in text and "10 minutes" in text
    code = smtp.last_code(ADDRESS)

    sent = [r for r in caplog.records if getattr(r, "event", None) == "step_up_sent"]
    assert [r.fields for r in sent] == [{"holder_id": ada, "purpose": "r-1", "factor": "email_otp"}]
    assert code not in caplog.text

    assert _verify(server, ada, code) == "done"
    _refused("step_up_expired", 409, _verify, server, ada, code)  # once only
    _refused("step_up_expired", 409, _verify, server, ada, code, purpose="r-2")  # for r-1 only


def test_a_new_code_replaces_the_last_and_a_code_expires(mail_server, smtp: Mailbox, clock):
    server = mail_server
    ada = _holder(server)
    _begin(server, ada)
    first = smtp.last_code(ADDRESS)
    _begin(server, ada)
    second = smtp.last_code(ADDRESS)
    if first != second:  # one time in a million they are the same six digits
        _refused("step_up_failed", 403, _verify, server, ada, first)
    clock.advance(601)
    _refused("step_up_expired", 409, _verify, server, ada, second)
    _begin(server, ada)
    assert _verify(server, ada, smtp.last_code(ADDRESS)) == "done"
    # three codes were asked for r-1: no fourth
    _refused("too_many_attempts", 429, _begin, server, ada)


def test_wrong_codes_run_out_and_count_against_the_holders_sign_in(
    mail_server, smtp: Mailbox, clock
):
    server = mail_server
    ada = _holder(server)
    _begin(server, ada)
    code = smtp.last_code(ADDRESS)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1, 0):
        refusal = _refused("step_up_failed", 403, _verify, server, ada, wrong)
        assert f"{left} tries left" in refusal.detail
    # the sign-in limiter's account key took five failures: the password waits too
    login = {"login": "ada", "password": "pw-ada-secret"}
    blocked = server.http.post("/v1/session", json=login)
    assert blocked.status_code == 429 and blocked.json()["code"] == "throttled"
    assert blocked.headers["Retry-After"] == "2"
    throttled = _refused("throttled", 429, _verify, server, ada, code)
    assert throttled.headers == {"Retry-After": "2"}
    clock.advance(3)
    _refused("too_many_attempts", 429, _verify, server, ada, code)  # the code is dead
    _begin(server, ada)
    assert _verify(server, ada, smtp.last_code(ADDRESS)) == "done"
    # the right code forgot the account's failures: the password signs in at once
    assert server.http.post("/v1/session", json=login).status_code == 200


@pytest.mark.parametrize("mail_server", ["sqlite"], indirect=True)  # no locking to show
def test_codes_mailed_to_a_holder_are_limited_per_hour(mail_server, smtp: Mailbox, clock):
    server = mail_server
    ada = _holder(server)
    for n in range(step_up.SENDS_PER_HOUR_MAX):
        _begin(server, ada, purpose=f"r-{n // step_up.BEGINS_MAX}")
        clock.advance(60)
    refusal = _refused("too_many_attempts", 429, _begin, server, ada, purpose="r-9")
    assert refusal.headers == {"Retry-After": str(3600 - 60 * step_up.SENDS_PER_HOUR_MAX)}
    assert len(smtp.to(ADDRESS)) == step_up.SENDS_PER_HOUR_MAX
    clock.advance(3600)
    _begin(server, ada, purpose="r-9")
    assert len(smtp.to(ADDRESS)) == step_up.SENDS_PER_HOUR_MAX + 1


@pytest.mark.parametrize("mail_server", ["sqlite"], indirect=True)  # no locking to show
def test_a_mail_server_down_leaves_no_code(mail_server, smtp: Mailbox):
    server = mail_server
    ada = _holder(server)
    smtp.down()
    _refused("mail_unavailable", 503, _begin, server, ada)
    stored = server.ctx.run(
        lambda unit: unit.session.scalar(select(func.count()).select_from(StepUpCode))
    )
    assert stored == 0


@pytest.mark.parametrize("mail_server", ["sqlite"], indirect=True)  # no locking to show
def test_without_an_address_or_the_factor_there_is_no_step_up(mail_server):
    server = mail_server
    ada = _holder(server)
    bo = _holder(server, "bo")
    handle = server.ctx.run(lambda unit: unit.session.get(Holder, bo).handle)
    erased = server.admin().post(f"/v1/admin/holders/{handle}/erase", {"keep_money": True})
    assert erased.status_code == 200, erased.text
    _refused("no_email", 409, _begin, server, bo)
    _refused("factor_unavailable", 409, _begin, server, ada, factor="passkey")
    _refused("factor_unavailable", 409, _begin, server, ada, factor="totp")  # not turned on
    _refused("invalid_request", 422, _begin, server, ada, factor="sms")
    _refused("invalid_request", 422, _verify, server, ada, "12345")
    _refused("invalid_request", 422, _verify, server, ada, "١٢٣٤٥٦")  # Arabic-Indic digits


def test_without_a_mail_server_there_are_no_codes_by_mail(sqlite_server):
    ada = _holder(sqlite_server)
    _refused("factor_unavailable", 409, _begin, sqlite_server, ada)


def test_the_authenticator_app_steps_up_with_a_code_not_used_before(mail_server, clock):
    server = mail_server
    ada = _holder(server)
    wallet = Wallet(server.http, "ada")
    wallet.sign_in()
    fresh = server.http.post("/v1/me/totp/new", headers=wallet.auth)
    totp = pyotp.TOTP(fresh.json()["secret"])
    turned_on = {"otp": totp.at(clock.now)}
    assert server.http.post("/v1/me/totp", headers=wallet.auth, json=turned_on).status_code == 204

    assert _begin(server, ada, factor="totp") == {
        "factor": "totp",
        "expires_at": int(clock.now) + 600,
    }
    _refused("step_up_failed", 403, _verify, server, ada, turned_on["otp"], factor="totp")
    later = totp.at(clock.now + 30)
    assert _verify(server, ada, later, factor="totp") == "done"
    _begin(server, ada, factor="totp")
    _refused("step_up_failed", 403, _verify, server, ada, later, factor="totp")  # step used
