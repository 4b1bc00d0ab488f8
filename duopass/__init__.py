"""duopass: offline-capable QR credentials verified online by the server or offline by the terminal.

The tree follows the parties of PROTOCOL.md and the parts of docs/architecture.json (which
tests/test_layout.py holds the imports to):

    protocol/   the pure core every party shares: codes, keys, the 19 checks, limits, reasons
    ledger/     the pure transparency log: RFC 9162 tree, signed checkpoints, receipts, events
    risk/       pure rules of what evidence means (alerts); the risk engine grows here
    tickets/    room: events, orders, check-in rules (pure)
    policy/     room: the written rules (CEL) of reissue, transfer and risk decisions (pure)
    server/     the issuer server: api/ (HTTP), services/ (units of work), domain/ (pure money
                rules), store/ (tables, migrations), web/ and partners/ (rooms)
    terminal/   the terminal agent (a till or gate); speaks to the server over HTTP only
    wallet/     the holder's wallet; speaks to the server over HTTP only
    cli/        the `duopass` command: the edge where files, images and the clock are read
    demo/       the lunch rush, demo data, and the servers tests and benchmarks start
    qr.py       QR images, rendered and read
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
