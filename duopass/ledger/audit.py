"""An auditor's checks of a log from outside (§7): signature, every leaf, the root, consistency.

Pure: entries and proofs come from a `LogSource` the caller supplies (an HTTP client, a read-only
database session), the trusted checkpoint from bytes the caller read. Entries stream through in
pages, so memory stays O(page + log n) however long the log. When the root of the entries differs
from the signed one, a second pass names the first entry that breaks it: the longest prefix of
the entries that consistency proofs show to be part of the signed tree ends just before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from duopass.ledger._text import b64encode
from duopass.ledger.audit_chain import Chain, KeySource, follow_chain
from duopass.ledger.audit_state import STATE_BYTES_MAX, format_state, parse_state
from duopass.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.leaf import Leaf, parse_leaf
from duopass.ledger.merkle import (
    RootHash,
    hash_leaf,
    verify_consistency,
)
from duopass.ledger.note import NoteVerifier, parse_note
from duopass.ledger.rotation import Rotation
from duopass.ledger.stream import Border

__all__ = [
    "FINDINGS_MAX",
    "PAGE_ENTRIES_MAX",
    "STATE_BYTES_MAX",
    "Consistency",
    "Finding",
    "FindingCode",
    "KeySource",
    "Leaf",
    "LogSource",
    "Report",
    "audit_log",
    "format_state",
    "parse_leaf",
    "parse_state",
]

PAGE_ENTRIES_MAX: Final = 1000
"""Entries asked for in one request (the server's page limit)."""
FINDINGS_MAX: Final = 20
"""Findings listed in one report; any more are only counted."""


class FindingCode(StrEnum):
    """What an audit found wrong. Added, never renamed or reused."""

    NO_CHECKPOINT = "NO_CHECKPOINT"
    """The source holds no signed checkpoint."""
    BAD_SIGNATURE = "BAD_SIGNATURE"
    """The checkpoint carries no valid signature by the trusted key."""
    MALFORMED_CHECKPOINT = "MALFORMED_CHECKPOINT"
    """The checkpoint is not a well-formed signed note or checkpoint."""
    WRONG_LOG = "WRONG_LOG"
    """The checkpoint is signed by the trusted key but names another log."""
    ROLLBACK = "ROLLBACK"
    """The checkpoint is smaller than the one the auditor trusts."""
    INCONSISTENT = "INCONSISTENT"
    """The checkpoint does not extend the one the auditor trusts."""
    MISSING_ENTRY = "MISSING_ENTRY"
    """The source lacks an entry the checkpoint covers."""
    MALFORMED_LEAF = "MALFORMED_LEAF"
    """An entry is not a §7 leaf in deterministic CBOR."""
    LEAF_HASH = "LEAF_HASH"
    """An entry's hash is not the one the signed tree holds at its index."""
    ROOT_MISMATCH = "ROOT_MISMATCH"
    """The entries' root differs from the checkpoint's, and no single entry could be named."""
    KEY_ROTATION = "KEY_ROTATION"
    """A ledger key rotation the chain cannot follow: its leaf, its handover checkpoint (signed
    by both keys, ending with the leaf) or a rotation leaf the source did not name."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong: its code, an exact statement for people, and the entry if there is one."""

    code: FindingCode
    message: str
    index: int | None = None


class Consistency(StrEnum):
    """How the checkpoint relates to the one the auditor trusted before."""

    FIRST = "FIRST"
    """Nothing was trusted yet: this checkpoint is trusted from now on."""
    SAME = "SAME"
    """The very tree the auditor trusted."""
    EXTENDS = "EXTENDS"
    """A larger tree, proved to extend the trusted one."""
    FAILED = "FAILED"
    """Smaller, or not an extension: see the findings."""
    NOT_CHECKED = "NOT_CHECKED"
    """The checkpoint itself was refused."""


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one audit. `ok` when nothing was found wrong."""

    checkpoint: Checkpoint | None
    trusted: Checkpoint | None
    consistency: Consistency
    entries: int
    """Entries read and checked."""
    root: RootHash | None
    """The root of the entries read, when every entry the checkpoint covers was read."""
    types: tuple[tuple[str, int], ...]
    """How many well-formed leaves of each event type, by type."""
    findings: tuple[Finding, ...]
    unlisted: int = 0
    """Findings beyond FINDINGS_MAX, counted but not listed."""
    key: NoteVerifier | None = None
    """The ledger key the checkpoint verified with: where the chain led."""
    rotations: tuple[Rotation, ...] = ()
    """The ledger key's rotations followed since the trusted checkpoint."""

    @property
    def ok(self) -> bool:
        return not self.findings


class LogSource(Protocol):
    """Where an auditor reads the log: errors of the source itself propagate to the caller."""

    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        """Up to `count` entries from index `start`, in order; fewer only where the log ends."""
        ...

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        """The RFC 9162 consistency proof from the tree of `old` leaves to that of `new`."""
        ...


class _Findings:
    def __init__(self) -> None:
        self.listed: list[Finding] = []
        self.unlisted = 0

    def add(self, finding: Finding) -> None:
        if len(self.listed) < FINDINGS_MAX:
            self.listed.append(finding)
        else:
            self.unlisted += 1


def _detail(exc: LedgerError) -> str:
    return str(exc).removeprefix(f"{exc.reason.value}: ")


def _refused_checkpoint(exc: LedgerError, key: NoteVerifier) -> Finding:
    if exc.reason in (LedgerReason.UNVERIFIED, LedgerReason.BAD_SIGNATURE):
        trusted = f"{key.name}+{key.key_hash:08x}"
        message = f"bad checkpoint signature ({_detail(exc)}; the trusted key is {trusted})"
        return Finding(FindingCode.BAD_SIGNATURE, message)
    if exc.reason is LedgerReason.ORIGIN:
        return Finding(FindingCode.WRONG_LOG, f"checkpoint of another log: {_detail(exc)}")
    return Finding(FindingCode.MALFORMED_CHECKPOINT, f"malformed checkpoint: {exc}")


def audit_log(
    note: bytes | None,
    source: LogSource,
    key: NoteVerifier,
    *,
    trusted: Checkpoint | None = None,
    page: int = PAGE_ENTRIES_MAX,
    keys: KeySource | None = None,
) -> Report:
    """Audit the log whose latest signed checkpoint is `note`, reading entries from `source`.

    `trusted` is the checkpoint the auditor trusted after its last audit (None at the first),
    `key` the ledger key it trusted there; `keys` shows where the key rotated since, for the
    chain to be followed (`ledger.audit_chain`): without it, a rotation fails the audit."""
    assert 0 < page <= PAGE_ENTRIES_MAX
    # 1. The checkpoint's signature, by the key the chain leads to from the trusted one.
    if note is None:
        finding = Finding(FindingCode.NO_CHECKPOINT, "the log has no signed checkpoint")
        return Report(None, trusted, Consistency.NOT_CHECKED, 0, None, (), (finding,))
    try:
        claimed = parse_checkpoint(parse_note(note).text)
    except LedgerError as exc:
        finding = _refused_checkpoint(exc, key)
        return Report(None, trusted, Consistency.NOT_CHECKED, 0, None, (), (finding,))
    chain = follow_chain(key, trusted.size if trusted else 0, claimed.size, source, keys)
    try:
        checkpoint = open_checkpoint(note, chain.key).checkpoint
    except LedgerError as exc:
        found = (*_chain_findings(chain), _refused_checkpoint(exc, chain.key))
        return Report(None, trusted, Consistency.NOT_CHECKED, 0, None, (), found)
    findings = _Findings()
    # 4. Consistency with the checkpoint trusted before (cheap, so before the entries).
    consistency = _check_trusted(trusted, checkpoint, source, findings)
    # 2. and 3. Every entry a well-formed leaf, and their root the checkpoint's.
    counts, border = _read_entries(source, checkpoint, page, chain, findings)
    root = border.root() if border.size == checkpoint.size else None
    if root is not None and root != checkpoint.root:
        findings.add(_root_finding(source, checkpoint, root, page))
    for finding in _chain_findings(chain):
        findings.add(finding)
    return Report(
        checkpoint=checkpoint,
        trusted=trusted,
        consistency=consistency,
        entries=border.size,
        root=root,
        types=tuple(sorted(counts.items())),
        findings=tuple(findings.listed),
        unlisted=findings.unlisted,
        key=chain.key,
        rotations=tuple(chain.rotations),
    )


def _chain_findings(chain: Chain) -> list[Finding]:
    return [Finding(FindingCode.KEY_ROTATION, text, index) for text, index in chain.problems]


def _read_entries(
    source: LogSource, checkpoint: Checkpoint, page: int, chain: Chain, findings: _Findings
) -> tuple[Counter[str], Border]:
    """Every entry the checkpoint covers, parsed, hashed into the border, checked against the
    chain's handovers; a missing one ends the reading."""
    counts: Counter[str] = Counter()
    border = Border()
    for start in range(0, checkpoint.size, page):
        wanted = min(page, checkpoint.size - start)
        got = source.entries(start, wanted)[:wanted]
        for index, data in enumerate(got, start):
            try:
                counts[parse_leaf(data).type] += 1
            except LedgerError as exc:
                message = f"entry {index}: not a well-formed leaf: {_detail(exc)}"
                findings.add(Finding(FindingCode.MALFORMED_LEAF, message, index))
            chain.check_entry(index, data)
            border.append(hash_leaf(data))
            if border.size in chain.handovers:
                chain.check_prefix(border.size, border.root())
        if len(got) < wanted:
            message = f"entry {border.size}: missing (the checkpoint covers {checkpoint.size})"
            findings.add(Finding(FindingCode.MISSING_ENTRY, message, border.size))
            break
    return counts, border


def _check_trusted(
    trusted: Checkpoint | None, checkpoint: Checkpoint, source: LogSource, findings: _Findings
) -> Consistency:
    if trusted is None:
        return Consistency.FIRST
    new, old = checkpoint, trusted
    if old.size > new.size:
        message = (
            f"checkpoint {new.size} is smaller than the trusted checkpoint {old.size}: "
            "the log was rolled back or forked"
        )
        findings.add(Finding(FindingCode.ROLLBACK, message))
        return Consistency.FAILED
    if old.size == new.size and old.root == new.root:
        return Consistency.SAME
    if old.size == 0:
        return Consistency.EXTENDS
    why = "the roots differ"
    if old.size < new.size:
        try:
            verify_consistency(
                size1=old.size,
                size2=new.size,
                proof=source.consistency(old.size, new.size),
                root1=old.root,
                root2=new.root,
            )
            return Consistency.EXTENDS
        except LedgerError as exc:
            why = f"the consistency proof fails: {exc.reason.value}"
    message = (
        f"checkpoint {new.size} (root {b64encode(new.root)}) is not consistent with the trusted "
        f"checkpoint {old.size} (root {b64encode(old.root)}): {why}"
    )
    findings.add(Finding(FindingCode.INCONSISTENT, message))
    return Consistency.FAILED


def _root_finding(source: LogSource, checkpoint: Checkpoint, root: RootHash, page: int) -> Finding:
    index = _first_bad_entry(source, checkpoint, page)
    if index is None:
        message = (
            f"the root of the {checkpoint.size} entries is {b64encode(root)}, "
            f"the checkpoint's is {b64encode(checkpoint.root)}"
        )
        return Finding(FindingCode.ROOT_MISMATCH, message)
    message = (
        f"entry {index}: leaf hash does not match the signed tree (the first {index} entries "
        f"match it, the first {index + 1} do not)"
    )
    return Finding(FindingCode.LEAF_HASH, message, index)


def _agrees(source: LogSource, checkpoint: Checkpoint, size: int, root: RootHash) -> bool:
    """Whether the first `size` entries, with `root`, are proved a prefix of the signed tree."""
    if size == 0:
        return True
    if size == checkpoint.size:
        return root == checkpoint.root
    try:
        verify_consistency(
            size1=size,
            size2=checkpoint.size,
            proof=source.consistency(size, checkpoint.size),
            root1=root,
            root2=checkpoint.root,
        )
    except LedgerError:
        return False
    return True


def _first_bad_entry(source: LogSource, checkpoint: Checkpoint, page: int) -> int | None:
    """The entry after the longest page-aligned prefix proved part of the signed tree, narrowed
    within that page by bisection (O(size / page + log page) proofs)."""
    border = Border()
    for start in range(0, checkpoint.size, page):
        wanted = min(page, checkpoint.size - start)
        hashes = [hash_leaf(data) for data in source.entries(start, wanted)[:wanted]]
        if len(hashes) < wanted:
            return None
        before = border.copy()
        for leaf_hash in hashes:
            border.append(leaf_hash)
        if _agrees(source, checkpoint, border.size, border.root()):
            continue
        roots = []  # roots[k]: the root of the first start + k + 1 entries
        for leaf_hash in hashes:
            before.append(leaf_hash)
            roots.append(before.root())
        low, high = 0, len(hashes) - 1  # the first prefix that disagrees ends at entry high
        while low < high:
            middle = (low + high) // 2
            if _agrees(source, checkpoint, start + middle + 1, roots[middle]):
                low = middle + 1
            else:
                high = middle
        return start + low
    return None
