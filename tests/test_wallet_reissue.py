"""Reissue and a lost phone from the wallet's command line, against a real server (issue 13):
two wallets of one holder, the old phone and the new one. `duopass wallet reissue` moves a
ticket in three steps (allowed, stepped up by TOTP or a mailed code, reviewed by a person,
refused) and the old code is refused at an online gate; a run that stopped at a step-up or a
review goes on with the same request; `duopass wallet lost` moves the purse and every ticket
and signs the old phone out."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner, Result

from duopass.cli.app import app
from duopass.protocol import decode_code
from duopass.protocol.claims import Kind
from duopass.wallet import EXIT_STATUS, Failure, Wallet
from duopass.wallet.device import load_key
from tests.mail import Mailbox, smtp_fixture  # noqa: F401
from tests.server.harness import Running, running_server
from tests.server.ticketing import HOUR, entry_gate, event_on_sale

DAY = 24 * HOUR
PENDING, REFUSED = EXIT_STATUS[Failure.PENDING], EXIT_STATUS[Failure.REFUSED]


@pytest.fixture
def server(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running


def _cli(data: Path, *args: object) -> Result:
    return CliRunner().invoke(
        app,
        ["wallet", *(str(arg) for arg in args)],
        env={"DUOPASS_WALLET_DIR": str(data), "DUOPASS_WALLET_PASSWORD": _password(data)},
    )


def _password(data: Path) -> str:
    return f"pw-{data.name.split('-')[0]}-secret"


def _phones(server: Running, tmp_path: Path, login: str) -> tuple[Path, Path]:
    """The holder's old phone and new phone, both enrolled with the password."""
    server.admin().holder(login, balance=20_000)
    phones = (tmp_path / f"{login}-old", tmp_path / f"{login}-new")
    for data in phones:
        enrolled = _cli(data, "enrol", "--server", server.url, "--login", login)
        assert enrolled.exit_code == 0, enrolled.stderr
    return phones


def _bought(data: Path, type_id: int) -> str:
    bought = _cli(data, "buy", "--type", type_id)
    assert bought.exit_code == 0, bought.stderr
    return bought.stdout.strip()


def _code(data: Path, sub: str | None = None) -> str:
    shown = _cli(data, "code", "--no-qr", *(() if sub is None else ("--ticket", sub)))
    assert shown.exit_code == 0, shown.stderr
    return shown.stdout.strip()


def _token(data: Path) -> str:
    with Wallet(data) as wallet:
        account = wallet.state.read().account
    assert account is not None and account.token is not None
    return account.token


def _turn_on_totp(server: Running, data: Path) -> str:
    auth = {"Authorization": f"Bearer {_token(data)}"}
    secret = server.http.post("/v1/me/totp/new", headers=auth).json()["secret"]
    on = server.http.post(
        "/v1/me/totp", headers=auth, json={"secret": secret, "otp": pyotp.TOTP(secret).now()}
    )
    assert on.status_code in (200, 204), on.text
    return str(secret)


def _next(secret: str) -> str:
    """The authenticator's next code: the server takes one step either side, and the current
    one was used up turning the factor on."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30)


def _other_code(secret: str) -> str:
    """A six-digit code the authenticator does not show now."""
    return f"{(int(pyotp.TOTP(secret).now()) + 500_000) % 1_000_000:06d}"


def test_an_allowed_reissue_moves_the_ticket_and_the_old_code_is_refused_at_the_gate(
    server, tmp_path
):
    admin = server.admin()
    later = event_on_sale(admin, "concert", venues=("hall-a",), doors=int(time.time()) + 2 * DAY)
    # doors open, and the request comes from the venue's own network (127.0.0.1)
    now_on = event_on_sale(
        admin, "play", venues=("stage",), doors=int(time.time()) - 60, networks=("127.0.0.0/8",)
    )
    old, new = _phones(server, tmp_path, "ada")
    subs = [_bought(old, later.type_id), _bought(old, now_on.type_id)]
    assert _cli(old, "sync").exit_code == 0
    old_codes = [_code(old, sub) for sub in subs]
    gate = entry_gate(server.http, admin, "gate-1", event=now_on.event, venue="stage")

    for sub in subs:
        moved = _cli(new, "reissue", "--ticket", sub)
        assert moved.exit_code == 0, moved.stderr
        assert "the policy says allow (rule allow_default, policy version" in moved.stderr
        assert f"ticket {sub} moved here (generation 1)" in moved.stderr
    new_key = load_key(new / "device.jwk").public
    for sub, before in zip(subs, old_codes, strict=True):
        claims = decode_code(_code(new, sub)).credential.claims
        old_claims = decode_code(before).credential.claims
        assert (claims.kind, claims.sub, claims.gen, claims.device_key) == (
            Kind.TICKET,
            sub,
            1,
            new_key,
        )
        assert claims.cti != old_claims.cti and (claims.ev, claims.exp) == (
            old_claims.ev,
            old_claims.exp,
        )
    assert gate.scan(old_codes[1], mode="entry")["reason"] == "REVOKED"
    assert gate.scan(_code(new, subs[1]), mode="entry")["reason"] == "OK"

    # the used ticket cannot go back to the old phone: the policy refuses, exit REFUSED
    refused = _cli(old, "reissue", "--ticket", subs[1])
    assert refused.exit_code == REFUSED, refused.stderr
    assert "the policy says deny (rule deny_fully_used" in refused.stderr
    assert "refused by the policy (rule deny_fully_used)" in refused.stderr
    # a ticket already here: the server says so, nothing is asked
    here = _cli(new, "reissue", "--ticket", subs[0])
    assert here.exit_code == REFUSED and "on this device already" in here.stderr


def test_a_step_up_by_totp_with_code_and_a_retry_goes_on_with_the_same_request(server, tmp_path):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) + HOUR)  # soon, and not from the venue
    old, new = _phones(server, tmp_path, "bea")
    sub = _bought(old, sale.type_id)
    assert _cli(old, "sync").exit_code == 0
    secret = _turn_on_totp(server, old)

    wrong = _cli(new, "reissue", "--ticket", sub, "--factor", "totp", "--code", _other_code(secret))
    assert wrong.exit_code == REFUSED, wrong.stderr
    assert "the policy says step_up" in wrong.stderr and "step_up_failed" in wrong.stderr
    first = wrong.stderr.split("request ", 1)[1].split(":", 1)[0]
    assert first.startswith("rq-")

    right = _cli(new, "reissue", "--ticket", sub, "--factor", "totp", "--code", _next(secret))
    assert right.exit_code == 0, right.stderr
    assert f"request {first}: " in right.stderr  # the kept request, not a second one
    assert f"ticket {sub} moved here (generation 1)" in right.stderr
    assert decode_code(_code(new, sub)).credential.claims.gen == 1
    stale = _cli(old, "code", "--no-qr", "--ticket", sub)
    assert stale.exit_code == 0  # offline, the old phone cannot know; the gate refuses it
    shown = server.http.get(
        f"/v1/me/reissues/{first}", headers={"Authorization": f"Bearer {_token(new)}"}
    )
    assert shown.json()["state"] == "done" and shown.json()["factor_done"] == "totp"


def test_review_exits_pending_and_goes_on_once_a_person_approves(server, tmp_path):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) + 2 * DAY)
    old, new = _phones(server, tmp_path, "cy")
    sub = _bought(old, sale.type_id)
    assert _cli(old, "sync").exit_code == 0
    for phone in (new, old, new):  # three reissues: the fourth goes to a person
        assert _cli(phone, "reissue", "--ticket", sub).exit_code == 0
    waiting = _cli(old, "reissue", "--ticket", sub)
    assert waiting.exit_code == PENDING, waiting.stderr
    assert "(rule review_many_reissues" in waiting.stderr
    request = waiting.stderr.split("request ", 1)[1].split(":", 1)[0]
    assert f"--ticket {sub} --request {request}` later" in waiting.stderr
    again = _cli(old, "reissue", "--ticket", sub)  # the same request, still waiting
    assert again.exit_code == PENDING and f"request {request}:" in again.stderr
    approved = admin.post(f"/v1/admin/reviews/{request}", {"action": "approve", "reason": "id"})
    assert approved.status_code == 200, approved.text
    done = _cli(old, "reissue", "--ticket", sub, "--request", request)
    assert done.exit_code == 0, done.stderr
    assert f"ticket {sub} moved here (generation 4)" in done.stderr


@pytest.fixture
def mailing_server(tmp_path, smtp: Mailbox):
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}",
        tmp_path / "data",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="cards@example.edu",
    ) as running:
        yield running


def test_a_mailed_code_without_a_terminal_waits_then_its_code_finishes(
    mailing_server, smtp, tmp_path
):
    sale = event_on_sale(mailing_server.admin(), doors=int(time.time()) + HOUR)
    old, new = _phones(mailing_server, tmp_path, "dee")
    sub = _bought(old, sale.type_id)
    assert _cli(old, "sync").exit_code == 0
    # the policy lists totp first; without an authenticator the wallet goes on to e-mail
    waiting = _cli(new, "reissue", "--ticket", sub)
    assert waiting.exit_code == PENDING, waiting.stderr
    assert "step-up by email_otp: give the code mailed to d" in waiting.stderr
    assert "--factor email_otp --code CODE`" in waiting.stderr
    code = smtp.last_code("dee@example.edu")
    done = _cli(new, "reissue", "--ticket", sub, "--code", code)
    assert done.exit_code == 0, done.stderr
    assert f"ticket {sub} moved here (generation 1)" in done.stderr


def test_lost_moves_the_purse_and_tickets_and_signs_the_old_phone_out(
    mailing_server, smtp, tmp_path
):
    admin = mailing_server.admin()
    later = event_on_sale(admin, "concert", venues=("hall-a",), doors=int(time.time()) + 2 * DAY)
    soon = event_on_sale(admin, "play", venues=("stage",), doors=int(time.time()) + HOUR)
    old, new = _phones(mailing_server, tmp_path, "eli")
    subs = [_bought(old, later.type_id), _bought(old, soon.type_id)]
    assert _cli(old, "sync").exit_code == 0
    old_purse = decode_code(_code(old)).credential.claims

    lost = _cli(new, "lost")
    assert lost.exit_code == PENDING, lost.stderr  # the ticket near its doors waits
    assert "reported lost: " in lost.stderr
    assert f"ticket {subs[0]}: moved here" in lost.stderr
    assert f"ticket {subs[1]}: needs a step-up" in lost.stderr
    assert f"run `duopass wallet reissue --ticket {subs[1]} --request rq-" in lost.stderr
    assert f"purse: moved here (generation {old_purse.gen + 1})" in lost.stderr
    purse = decode_code(_code(new)).credential.claims
    assert purse.gen == old_purse.gen + 1 and purse.sub == old_purse.sub
    assert purse.device_key == load_key(new / "device.jwk").public
    assert decode_code(_code(new, subs[0])).credential.claims.gen == 1

    signed_out = _cli(old, "sync")
    assert signed_out.exit_code == EXIT_STATUS[Failure.SIGNED_OUT], signed_out.stderr

    # the waiting ticket goes on with the request `lost` opened (kept in the wallet)
    request = lost.stderr.split(f"--ticket {subs[1]} --request ", 1)[1].split("`", 1)[0]
    mailed = _cli(new, "reissue", "--ticket", subs[1], "--factor", "email_otp")
    assert mailed.exit_code == PENDING and f"request {request}: " in mailed.stderr
    code = smtp.last_code("eli@example.edu")
    moved = _cli(new, "reissue", "--ticket", subs[1], "--factor", "email_otp", "--code", code)
    assert moved.exit_code == 0, moved.stderr
    assert f"request {request}: " in moved.stderr
    assert f"ticket {subs[1]} moved here (generation 1)" in moved.stderr
