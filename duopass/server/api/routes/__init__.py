"""One router per resource; each route calls services inside one unit of work.

terminal    enrolment, online scans, trust bundles, journals (signed terminal requests)
session     holder and staff sign-in, device sign-in, sessions, password, second factor
wallet      devices, the wallet's sync, loss reports, the holder's account
admin       the card office: holders, money, merchants, terminals, books
review      alerts and their review
disputes    the holder's history and disputes, staff deciding them
settlement  the books per merchant and day, closing a day
purse       purse limits: the holder's own and PIN, the office's bounds
ledger      checkpoints, proofs, entries, receipts (auditors)
system      health, ping, metrics
testing     the movable clock (servers started for tests only)
"""

__all__: list[str] = []
