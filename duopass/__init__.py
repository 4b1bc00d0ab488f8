"""duopass: offline-capable QR credentials verified online by the server or offline by the terminal.

The tree follows the parties of `PROTOCOL.md`: `protocol/` is the pure core every party shares
(codes, keys, verification rules, limits, reasons; no I/O, no clock); `cli/` is the edge that reads
files, images and the clock.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
