"""The terminal agent (PROTOCOL.md §3, §5, §8; docs/terminal.md): a till or gate that asks the
server within a bounded timeout and otherwise decides by itself, journals every decision durably
and forwards the journal in signed batches. It speaks to the server over HTTP only.

    store      the data directory: SQLite (WAL, durable): config, trust, journal, batches, memory
    client     signed requests (protocol.requests), bounded answers, the server's clock
    link       online, or offline with a background probe
    agent      one scan: seq, online try, offline fallback, journal entry, verdict
    bundles    trust bundle sync against the pinned root key
    uploader   store and forward: batches stored before sending, deleted after acknowledgement
    enrol      the terminal key and the one-time enrolment code
    scanner    lines from a keyboard-wedge scanner, amounts keyed in
    runtime    all of it together, with the background threads
"""

from duopass.terminal.agent import AMOUNT_MAX, Agent, Result
from duopass.terminal.client import Client, Refused, Unreachable
from duopass.terminal.enrol import EnrolError, enrol
from duopass.terminal.link import Link, State
from duopass.terminal.runtime import Busy, NotEnrolled, Settings, Terminal
from duopass.terminal.scanner import format_amount, parse_amount, read_lines
from duopass.terminal.store import DurableMemory, Store

__all__ = [
    "AMOUNT_MAX",
    "Agent",
    "Busy",
    "Client",
    "DurableMemory",
    "EnrolError",
    "Link",
    "NotEnrolled",
    "Refused",
    "Result",
    "Settings",
    "State",
    "Store",
    "Terminal",
    "Unreachable",
    "enrol",
    "format_amount",
    "parse_amount",
    "read_lines",
]
