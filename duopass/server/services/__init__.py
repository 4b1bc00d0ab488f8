"""The service layer: each function does one command's work inside the unit of work it is
given (`unit_of_work.Unit`: the transaction's session, the settings, the keys, the unit's time),
the ledger append included. Modules by subject:

    accounts counters topups         money: postings, holds, top-ups and refunds
    credentials devices holders      holders, their devices and credentials (issue, refresh,
                                     reissue after a loss report)
    auth sessions second_factor      signing in, sessions, one-time codes
    people staff                     holders' personal data and its erasure; staff accounts
    lookup fleet paging              what the card office looks up: holders, their history,
                                     terminals; lists a page at a time
    throttle                         failed proofs counted per account and network
    risk_features risk_redis         the risk engine's sliding-window counts, in the database
                                     (the reference) or in Redis
    scans server_view credential_cache  online §3 against the whole system
    purse_limits pin_scan            a holder's daily total, meal count and PIN on the pay path;
    confirmations                    a payment above the PIN amount confirmed in the wallet
    journals/                        §5: a terminal's signed batches settled
    alerts review sweep              evidence recorded, reviewed, and what time settles
    bundles trust_changes signing_keys terminals  what terminals hold and who they are
    root_keys                        the issuer root key rotated (files: `server.roots`)
    settlement tlog idempotency      the books per day, the ledger, request fingerprints
    policy_store decisions           the decision policy pinned and shared by processes;
                                     decisions recorded, their inputs erased, replayed

Modules are imported by name (`from duopass.server.services import accounts`).
"""

__all__: list[str] = []
