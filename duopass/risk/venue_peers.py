"""A venue's tills compared with one another: the venue's recent paying journal entries (which
till, when, how much), kept in bounded space, and the rule that flags a till whose recent
amounts are far above what the venue's other tills took at the same time (a till that journals
more than the holder agreed to pay stands beside honest ones charging the same menu).

The rule (`Rule.VENUE` in `anomaly`): the till has at least `own_min` entries within `window_s`
of its latest, its venue's other tills at least `peers_min` (from `peer_tills` tills at least),
and the geometric mean of the till's last `own_max` amounts is at least `ratio` times the
others', or at least `above_min` of them are above the others' highest. Comparing with peers in
the same window compares like with like (breakfast with breakfast). It flags once an episode: a
till stays flagged until neither holds again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from duopass.risk.anomaly import Rule

__all__ = ["KEPT", "PEERS", "PeerLimits", "PeerScore", "VenuePeers"]

KEPT = 96
"""Entries a venue keeps (its latest): a till's recent ones are among them while the venue has
at most a dozen busy tills."""


@dataclass(frozen=True, kw_only=True)
class PeerLimits:
    window_s: int = 7200
    """Entries this close to the till's latest are compared (one meal period)."""
    own_min: int = 8
    own_max: int = 12
    peers_min: int = 10
    peer_tills: int = 2
    """Other tills the peers' entries come from at least: beside one other till, which of the
    two is odd cannot be told."""
    ratio: float = 1.4
    above_min: int = 4
    """...or at least this many of them above the highest amount of the others (a menu's
    dearest dish)."""


PEERS = PeerLimits()


@dataclass(frozen=True, slots=True)
class PeerScore:
    own: int
    own_typical: int
    own_above: int
    peers: int
    peers_typical: int
    peers_highest: int
    ratio: float
    flagged: bool

    def explained(self, limits: PeerLimits) -> dict[str, Any]:
        return {
            "rules": [str(Rule.VENUE)] if self.flagged else [],
            "terminal": {
                "entries": self.own,
                "amount_typical": self.own_typical,
                "above_venue_highest": self.own_above,
            },
            "venue": {
                "entries": self.peers,
                "amount_typical": self.peers_typical,
                "amount_highest": self.peers_highest,
            },
            "ratio": round(self.ratio, 2),
            "rule": {
                "ratio_at_least": limits.ratio,
                "above_at_least": limits.above_min,
                "own_min": limits.own_min,
                "own_max": limits.own_max,
                "peers_min": limits.peers_min,
                "peer_tills": limits.peer_tills,
                "window_s": limits.window_s,
            },
        }


@dataclass(slots=True)
class VenuePeers:
    """One venue's latest entries, oldest first, and the tills flagged (their episode on)."""

    entries: list[tuple[int, str, int]] = field(default_factory=list)
    """(scan time, terminal, amount)."""
    flagged: list[str] = field(default_factory=list)

    def add(self, at: int, terminal: str, amount: int) -> None:
        self.entries.append((at, terminal, amount))

    def trim(self) -> None:
        if len(self.entries) > KEPT:
            del self.entries[: len(self.entries) - KEPT]

    def judge(self, terminal: str, limits: PeerLimits | None = None) -> PeerScore | None:
        """The till's recent amounts against its peers' (None when either is too few), and
        whether it flags; the episode is started or ended here."""
        limits = limits or PEERS
        own = [(at, amount) for at, who, amount in self.entries if who == terminal]
        if len(own) < limits.own_min:
            return None
        latest = max(at for at, _ in own)
        since = latest - limits.window_s
        recent = [amount for at, amount in own if at >= since][-limits.own_max :]
        window = [(who, a) for at, who, a in self.entries if since <= at <= latest]
        peers = [amount for who, amount in window if who != terminal]
        if len(recent) < limits.own_min or len(peers) < limits.peers_min:
            return None
        if len({who for who, _ in window} - {terminal}) < limits.peer_tills:
            return None
        own_level, peers_level = _level(recent), _level(peers)
        ratio = math.exp(own_level - peers_level)
        above = sum(1 for amount in recent if amount > max(peers))
        off = ratio >= limits.ratio or above >= limits.above_min
        on = terminal in self.flagged
        flags = off and not on
        if flags:
            self.flagged = sorted({*self.flagged, terminal})
        elif on and not off:
            self.flagged = [kept for kept in self.flagged if kept != terminal]
        typical = round(math.expm1(own_level)), round(math.expm1(peers_level))
        found = (len(recent), typical[0], above, len(peers), typical[1], max(peers))
        return PeerScore(*found, ratio, flags)

    def state(self) -> dict[str, Any]:
        return {"entries": [list(entry) for entry in self.entries], "flagged": self.flagged}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> VenuePeers:
        entries = [(int(at), str(who), int(amount)) for at, who, amount in state["entries"]]
        return cls(entries[-KEPT:], [str(who) for who in state.get("flagged", [])])


def _level(amounts: list[int]) -> float:
    """The mean of ln(1 + amount): the geometric mean's log."""
    return sum(math.log1p(max(amount, 0)) for amount in amounts) / len(amounts)
