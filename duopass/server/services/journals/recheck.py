"""The re-check of an offline acceptance (§5.3): both signatures, and §3 again at the scan time
against the terminal's registered configuration, with `ts` within freshness + skew of the scan
time. Revocations, freezes and counters are evidence here, not refusals (`book` weighs them)."""

from __future__ import annotations

from duopass.protocol.code import Code
from duopass.protocol.journal import Entry
from duopass.protocol.memory import MemoryStore
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import TerminalConfig, verify_code
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.server_view import RecheckTrust
from duopass.server.store.tables import Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["recheck"]


def recheck(
    unit: Unit, terminal: Terminal, entry: Entry, code: Code, *, device_signature: bool | None
) -> Reason:
    """The first §3 check the acceptance fails at its scan time, or OK; `device_signature` is
    check 14's outcome if verified ahead (`signatures`)."""
    if entry.mode.value not in (terminal.mode, "identity"):
        return Reason.WRONG_KIND
    if entry.venue != terminal.venue:
        return Reason.OUT_OF_SCOPE
    config = TerminalConfig(
        mode=entry.mode, currency=terminal.currency, venue=terminal.venue, event=terminal.event
    )
    return verify_code(
        code,
        trust=RecheckTrust(unit.session, unit.settings, entry.server_time),
        config=config,
        memory=MemoryStore(),
        now=entry.server_time,
        amount=entry.amount,
        verified=VERIFIED,
        online=True,  # check 18 is the caller's, after check 16's evidence
        device_signature=device_signature,
    ).reason
