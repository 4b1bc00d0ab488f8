"""Journals (§5): a terminal's signed batches, each entry settled exactly once.

One verdict per (terminal_id, seq), the terminal's. An entry the server decided online confirms
it, voids the charge the terminal did not make, or books the acceptance the server had refused
(`settle`). Any other acceptance is re-checked (`recheck`, §5.3) and booked against the
counter's hold (`book`, §4), with alerts for the evidence §4.4-§4.5 lists (`duopass.risk`).
What cannot be settled goes to the pending account for review. Entry bytes are kept as evidence,
and `acked_seq` says up to where the terminal may delete (`batch`).

A batch is one unit: what its entries refer to is read up front (`lookups`), and the counters,
entries and ledger leaves it creates are written together at the end (`settling`, `batch`).
"""

from duopass.server.services.journals.batch import Receipt, ingest

__all__ = ["Receipt", "ingest"]
