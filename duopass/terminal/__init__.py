"""The terminal agent (PROTOCOL.md §3, §5, §8; docs/terminal.md): a till or gate that asks the
server within a bounded timeout and otherwise decides by itself, journals every decision durably
and forwards the journal in signed batches. It speaks to the server over HTTP only.

    agent      `TerminalAgent`: all of it together, with the background threads
    scan       `ScanPath`, one scan: seq, online try, offline fallback, journal entry, verdict
    store      the data directory: SQLite (WAL, durable): config, trust, journal, batches, memory
    client     signed requests (protocol.signed_requests), bounded answers, the server's clock
    link       online, or offline with a background probe
    bundles    trust bundle sync against the pinned root key
    uploader   store and forward: batches stored before sending, deleted after acknowledgement
    enrol      the terminal key and the one-time enrolment code
    issuers    several issuers at one terminal: an enrolment each, codes routed by `iss`
    keyboard   lines from a keyboard-wedge scanner, amounts keyed in

May import: `duopass.protocol` only of duopass (a vendor's terminal would know only the
protocol); it speaks to the server over HTTP.
"""

from duopass.terminal.agent import AgentSettings, Busy, NotEnrolled, TerminalAgent
from duopass.terminal.client import Client, Refused, Unreachable
from duopass.terminal.enrol import EnrolError, enrol, enrol_issuer
from duopass.terminal.keyboard import (
    AmountError,
    format_amount,
    is_keyed,
    parse_amount,
    read_amount,
    read_lines,
)
from duopass.terminal.link import Link, State
from duopass.terminal.scan import AMOUNT_MAX, Result, ScanPath
from duopass.terminal.store import DurableMemory, Store

__all__ = [
    "AMOUNT_MAX",
    "AgentSettings",
    "AmountError",
    "Busy",
    "Client",
    "DurableMemory",
    "EnrolError",
    "Link",
    "NotEnrolled",
    "Refused",
    "Result",
    "ScanPath",
    "State",
    "Store",
    "TerminalAgent",
    "Unreachable",
    "enrol",
    "enrol_issuer",
    "format_amount",
    "is_keyed",
    "parse_amount",
    "read_amount",
    "read_lines",
]
