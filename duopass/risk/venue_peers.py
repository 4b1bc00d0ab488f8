"""A venue's tills compared with one another: each till's latest paying journal entries (when,
how much, whether offline at exactly its credential's cap), kept in bounded space, and the rule
that flags a till journalling more than its holders agreed to pay while it stands beside honest
tills charging the same menu.

The rule (`Rule.VENUE` in `anomaly`) judges a till's run (its entries within `window_s` of its
latest) two ways:

- Above the peers' high prices, a sequential test. Each entry of the run is compared with the
  venue's other tills' entries within `half_s` of it (the same meal period; at least `peers_min`
  of them, from `peer_tills` tills, else the entry is not scored yet: a later batch scores it
  once the peers' entries are in). It is *above* when fewer than j of those m peers' amounts
  are at least as high, j = ceil(`high_share` x m): for an honest till, whose prices are drawn
  as its peers' are, that happens with probability j / (m + 1) at most, whatever the menu (ties
  count against the till). A one-sided CUSUM of the log-likelihood ratio of "above" at rate
  `above_share` (a till journalling 1.5 times a bounded menu's prices is above about half the
  time) against j / (m + 1) accumulates the evidence over the run, across batches; the till is
  flagged when it reaches `evidence` nats (an honest till reaches it about once in e^evidence
  entries: Page's bound). An entry above adds ln(above_share (m + 1) / j); one not above takes
  ln((1 - above_share) (m + 1) / (m + 1 - j)) away.
- At the cap: `capped_min` entries of the run at exactly the credential's offline cap (`txmax`).
  An honest price equal to the cap is a coincidence; a till that inflates amounts and is refused
  above the cap clips them to it.

Ranks, not amounts: a dear payment or two among the peers (a stolen phone's, another rogue
till's) moves the reference by one place, not by its size. Not against suspects: a till's peers
leave out the tills flagged and those whose own evidence against the rest is `suspect_evidence`
or more, so that rogue tills beside one another do not hide each other. A till stays flagged
(one alert an episode) until neither holds again. The evidence is recomputed from the kept
entries at each batch: what carries across batches is the entries (and the episode), in the
venue's row.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from typing import Any

from duopass.risk.anomaly import Rule

__all__ = ["PEERS", "PER_TILL", "TILLS_KEPT", "PeerLimits", "PeerScore", "VenuePeers"]

PER_TILL = 32
"""Entries a till keeps (its latest): a meal period's run of a busy till."""
TILLS_KEPT = 16
"""Tills a venue keeps (those with the latest entries): the row stays at most 512 entries."""


@dataclass(frozen=True, kw_only=True)
class PeerLimits:
    window_s: int = 7200
    """A till's run: its entries this close to its latest (one meal period)."""
    half_s: int = 3600
    """An entry's peers: the other tills' entries this close to it."""
    peers_min: int = 12
    peer_tills: int = 2
    """Other tills the peers come from at least: beside one other till, which of the two is
    odd cannot be told."""
    high_share: float = 0.1
    """An entry is above when it is among the top tenth of its peers' amounts."""
    above_share: float = 0.4
    """The rate of entries above that the test tells from j / (m + 1)."""
    evidence: float = 6.2
    """Nats of evidence that flag (e^6.2 = 500 to 1: an honest till's false alarm about once
    in 500 entries at most, fewer where few peers make j / (m + 1) round up)."""
    suspect_evidence: float = 3.1
    """A till whose own evidence is this far (half the limit) is left out of the others'
    peers."""
    capped_min: int = 3
    """Entries at exactly the credential's cap that flag."""


PEERS = PeerLimits()


@dataclass(frozen=True, slots=True)
class PeerScore:
    own: int
    """Entries of the till's run."""
    scored: int
    """Of those, compared with enough peers."""
    above: int
    peers: int
    """The peers of its latest scored entry..."""
    peers_high: int
    """...and the amount an entry had to exceed to be above."""
    evidence: float
    capped: int
    flagged: bool

    def explained(self, limits: PeerLimits) -> dict[str, Any]:
        return {
            "rules": [str(Rule.VENUE)] if self.flagged else [],
            "terminal": {
                "entries": self.own,
                "compared": self.scored,
                "above_venue_high": self.above,
                "at_cap": self.capped,
            },
            "venue": {"entries": self.peers, "amount_high": self.peers_high},
            "evidence": round(self.evidence, 2),
            "rule": {
                "evidence_at_least": limits.evidence,
                "at_cap_at_least": limits.capped_min,
                "high_share": limits.high_share,
                "above_share": limits.above_share,
                "peers_min": limits.peers_min,
                "peer_tills": limits.peer_tills,
                "window_s": limits.window_s,
                "half_s": limits.half_s,
                "suspect_evidence": limits.suspect_evidence,
            },
        }


Entry = tuple[int, int, bool]
"""(scan time, amount, offline at exactly the credential's cap)."""


@dataclass(slots=True)
class VenuePeers:
    """One venue's tills, each with its latest entries oldest first, and the tills flagged
    (their episode on)."""

    tills: dict[str, list[Entry]] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)

    def add(self, at: int, terminal: str, amount: int, capped: bool = False) -> None:
        self.tills.setdefault(terminal, []).append((at, amount, capped))

    def trim(self) -> None:
        for entries in self.tills.values():
            entries.sort(key=lambda entry: entry[0])
            del entries[: max(0, len(entries) - PER_TILL)]
        if len(self.tills) > TILLS_KEPT:
            latest = sorted(self.tills, key=lambda till: (-self.tills[till][-1][0], till))
            self.tills = {till: self.tills[till] for till in sorted(latest[:TILLS_KEPT])}
            self.flagged = [till for till in self.flagged if till in self.tills]

    def judge(self, terminal: str, limits: PeerLimits | None = None) -> PeerScore | None:
        """The till's run against its peers (None when no entry of it has enough peers yet),
        and whether it flags; the episode is started or ended here. The peers leave out the
        tills flagged and those whose own evidence against the rest is past `suspect_share`
        of the limit: a rogue till beside another is not measured against it."""
        limits = limits or PEERS
        if not self.tills.get(terminal):
            return None
        own = self.tills[terminal]
        since, until = own[-1][0] - limits.window_s - limits.half_s, own[-1][0] + limits.half_s
        aside = {*self.flagged} - {terminal}
        for who in sorted(self.tills.keys() - aside - {terminal}):
            if not any(since <= at <= until for at, _, _ in self.tills[who]):
                continue  # no peer of this run
            if self._compare(who, limits, {terminal}).evidence >= limits.suspect_evidence:
                aside.add(who)
        found = self._compare(terminal, limits, aside)
        if not found.scored and not found.capped:
            return None
        off = found.evidence >= limits.evidence or found.capped >= limits.capped_min
        on = terminal in self.flagged
        if off and not on:
            self.flagged = sorted({*self.flagged, terminal})
        elif on and not off:
            self.flagged = [kept for kept in self.flagged if kept != terminal]
        return replace(found, flagged=off and not on)

    def _compare(self, terminal: str, limits: PeerLimits, aside: set[str]) -> PeerScore:
        """The till's run against the other tills but those `aside` (not flagged). The run's
        entries in time order slide one window over the peers' (`_Window`)."""
        own = sorted(self.tills.get(terminal, []))
        run = [entry for entry in own if entry[0] >= own[-1][0] - limits.window_s]
        others = sorted(
            (at, amount, who)
            for who, kept in self.tills.items()
            if who != terminal and who not in aside
            for at, amount, _ in kept
        )
        window = _Window(others)
        evidence, scored, above, m, bar = 0.0, 0, 0, 0, 0
        for at, amount, _ in run:
            window.slide(at - limits.half_s, at + limits.half_s)
            if window.size < limits.peers_min or len(window.tills) < limits.peer_tills:
                continue
            m, j = window.size, max(1, math.ceil(limits.high_share * window.size))
            high = window.at_least(amount) < j
            evidence = max(0.0, evidence + _ratio(high, j / (m + 1), limits.above_share))
            scored, above, bar = scored + 1, above + high, window.highest(j)
        capped = sum(1 for *_, at_cap in run if at_cap)
        return PeerScore(len(run), scored, above, m, bar, evidence, capped, False)

    def state(self) -> dict[str, Any]:
        tills = {
            who: [[at, amount, int(capped)] for at, amount, capped in kept]
            for who, kept in sorted(self.tills.items())
        }
        return {"tills": tills, "flagged": self.flagged}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> VenuePeers:
        """From `state()`, or from the earlier form (the venue's latest entries as one list)."""
        found = cls(flagged=[str(who) for who in state.get("flagged", [])])
        for who, kept in state.get("tills", {}).items():
            for at, amount, capped in kept:
                found.add(int(at), str(who), int(amount), bool(capped))
        for at, who, amount in state.get("entries", []):
            found.add(int(at), str(who), int(amount))
        found.trim()
        return found


def _ratio(high: bool, null: float, alternative: float) -> float:
    """The log-likelihood ratio of one entry above (or not) at rate `alternative` against
    `null`."""
    if high:
        return math.log(alternative / null)
    return math.log((1 - alternative) / (1 - null))


class _Window:
    """The peers' entries (in time order) between two times that only move forward: how many,
    from which tills, how many at least as dear as an amount (a Fenwick tree over the amounts'
    ranks: a run costs O(n log n), not a sort per entry)."""

    def __init__(self, entries: list[tuple[int, int, str]]) -> None:
        self.entries, self.amounts = entries, sorted({amount for _, amount, _ in entries})
        self.tree = [0] * (len(self.amounts) + 1)
        self.tills: dict[str, int] = {}
        self.lo = self.hi = self.size = 0

    def slide(self, since: int, until: int) -> None:
        while self.hi < len(self.entries) and self.entries[self.hi][0] <= until:
            self._count(self.entries[self.hi], 1)
            self.hi += 1
        while self.lo < self.hi and self.entries[self.lo][0] < since:
            self._count(self.entries[self.lo], -1)
            self.lo += 1

    def _count(self, entry: tuple[int, int, str], step: int) -> None:
        _, amount, who = entry
        self.size += step
        self.tills[who] = self.tills.get(who, 0) + step
        if not self.tills[who]:
            del self.tills[who]
        n = bisect.bisect_left(self.amounts, amount) + 1
        while n < len(self.tree):
            self.tree[n] += step
            n += n & -n

    def _below(self, rank: int) -> int:
        """Entries in the window whose amount's rank is below `rank`."""
        found = 0
        while rank > 0:
            found, rank = found + self.tree[rank], rank - (rank & -rank)
        return found

    def at_least(self, amount: int) -> int:
        return self.size - self._below(bisect.bisect_left(self.amounts, amount))

    def highest(self, j: int) -> int:
        """The j-th highest amount in the window (1 <= j <= size): the dearest amount with at
        least j entries as dear or dearer."""
        lo, hi = 0, len(self.amounts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.size - self._below(mid) >= j:
                lo = mid
            else:
                hi = mid - 1
        return self.amounts[lo]
