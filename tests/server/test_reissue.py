"""§6 (revision 1.1): the replacement of a lost card is a reissue: the same `sub`, `gen` + 1,
bound to the new device key, with the lost credential's validity; the holder's later
credentials keep that generation, so a terminal that accepted it refuses the lost one
(check 9). A lost credential that has expired leaves nothing to keep."""

from __future__ import annotations

from typing import Any

from duopass.protocol import MemoryStore, Mode, Reason, TerminalConfig, Verifier
from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.cbor import loads
from duopass.protocol.claims import Claims
from duopass.protocol.code import decode_credential
from duopass.protocol.encoding import b64u_decode
from duopass.server.store.tables import Credential
from tests.server.harness import Wallet, enrolled_till, ready_wallet

LIFETIME_S = 86_400  # the server's default credential lifetime


def _claims(answer: dict[str, Any]) -> Claims:
    l1 = b64u_decode(answer["credential"])
    return decode_credential(loads(l1), l1).claims


def _new_phone(server, lost: Wallet) -> Wallet:
    """The holder signs in on a new phone and enrols its key (a loss report ended every
    session and revoked every device)."""
    phone = Wallet(server.http, lost.login)
    phone.handle, phone.account_id = lost.handle, lost.account_id
    phone.sign_in()
    phone.enrol()
    return phone


def test_6_the_replacement_of_a_lost_card_keeps_its_validity(server):
    admin = server.admin()
    lost = ready_wallet(server.http, admin, "jana", balance=100_000)
    till, _ = enrolled_till(server.http, admin)
    before = apply_bundle(None, open_bundle(till.bundle(), till.root_key))  # an offline till
    old = _claims(lost.credential)
    reported = admin.post(f"/v1/admin/holders/{lost.handle}/loss-report", {})
    assert reported.status_code == 200, reported.text
    phone = _new_phone(server, lost)
    assert phone.sync().status_code == 200
    new = _claims(phone.credential)
    assert (new.sub, new.gen, new.exp, new.nbf, new.scope) == (
        old.sub,
        old.gen + 1,
        old.exp,
        old.nbf,
        old.scope,
    )
    assert new.device_key == phone.key.public != old.device_key and new.cti != old.cti
    row = server.ctx.run(lambda u: u.session.get(Credential, new.cti))
    assert (row.gen, row.exp) == (1, old.exp)
    # check 9 at a till whose bundle predates the report: once it has accepted generation 1,
    # the lost phone's generation 0 is refused
    gate = Verifier(before, TerminalConfig(mode=Mode.PAY, currency="CNY"), MemoryStore())
    now = before.issued_at
    assert gate.scan(phone.code(now), now=now, amount=100).reason is Reason.OK
    assert gate.scan(lost.code(now), now=now, amount=100).reason is Reason.REVOKED
    # the holder's later credentials keep that generation (a refresh is no reissue)
    assert phone.sync(mark=0).status_code == 200
    refreshed = _claims(phone.credential)
    assert (refreshed.gen, refreshed.exp) == (1, refreshed.iat + LIFETIME_S)
    assert gate.scan(phone.code(now), now=now, amount=100).reason is Reason.OK
    assert admin.books() == 0


def test_6_a_lost_credential_that_expired_leaves_nothing_to_keep(clocked_server, clock):
    """The new phone syncs after the lost credential's `exp`: a credential cannot end before it
    starts, and a purse's validity is only its daily renewal, so the replacement gets a fresh
    lifetime; it still takes the next generation."""
    server = clocked_server
    admin = server.admin()
    lost = ready_wallet(server.http, admin, "kira", balance=10_000)
    old = _claims(lost.credential)
    assert admin.post(f"/v1/admin/holders/{lost.handle}/loss-report", {}).status_code == 200
    clock.advance(old.exp - clock.now + 3_600)
    phone = _new_phone(server, lost)
    assert phone.sync().status_code == 200
    new = _claims(phone.credential)
    assert (new.gen, new.exp) == (old.gen + 1, new.iat + LIFETIME_S)
    assert new.iat >= old.exp
    assert _claims(phone.sync(mark=0).json()).gen == 1
    assert server.admin().books() == 0
