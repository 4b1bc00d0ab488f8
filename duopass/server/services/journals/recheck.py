"""The re-check of an offline acceptance (§5.3): both signatures, and §3 again at the scan time
against the terminal's registered configuration, with `ts` within freshness + skew of the scan
time. Revocations, freezes and counters are evidence here, not refusals (`book` weighs them)."""

from __future__ import annotations

from duopass.protocol.code import Code
from duopass.protocol.journal import Entry
from duopass.protocol.memory import MemoryStore
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode, TerminalConfig, verify_code
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.server_view import RecheckTrust
from duopass.server.store.tables import Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["Recheck"]


class Recheck:
    """The re-check of one batch's acceptances at one terminal. What does not change from one
    entry to the next is made once a batch: the terminal's configuration (one per mode), the
    trust view (its `issued_at`, the scan time, set per entry) and the empty terminal memory
    (`verify_code` only reads it)."""

    def __init__(self, unit: Unit, terminal: Terminal) -> None:
        self.modes = (terminal.mode, "identity")
        self.currency, self.venue, self.event = terminal.currency, terminal.venue, terminal.event
        self.trust = RecheckTrust(unit.session, unit.settings, 0)
        self.memory = MemoryStore()
        self.configs: dict[Mode, TerminalConfig] = {}

    def __call__(self, entry: Entry, code: Code, *, device_signature: bool | None) -> Reason:
        """The first §3 check the acceptance fails at its scan time, or OK; `device_signature`
        is check 14's outcome if verified ahead (`signatures`)."""
        if entry.mode.value not in self.modes:
            return Reason.WRONG_KIND
        if entry.venue != self.venue:
            return Reason.OUT_OF_SCOPE
        config = self.configs.get(entry.mode)
        if config is None:
            config = self.configs[entry.mode] = TerminalConfig(
                mode=entry.mode, currency=self.currency, venue=self.venue, event=self.event
            )
        now = self.trust.issued_at = entry.server_time
        return verify_code(
            code,
            trust=self.trust,
            config=config,
            memory=self.memory,
            now=now,
            amount=entry.amount,
            verified=VERIFIED,
            online=True,  # check 18 is the caller's, after check 16's evidence
            device_signature=device_signature,
        ).reason
