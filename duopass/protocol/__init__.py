"""The pure DP1 protocol core shared by server, terminal and wallet (PROTOCOL.md §1-§3).

Codes, keys, verification rules, limits and reasons. No I/O, no clock, no database, no web
framework: time is a parameter and files are bytes.
"""

from duopass.protocol.cbor import MalformedError
from duopass.protocol.claims import Claims, Kind
from duopass.protocol.code import (
    Code,
    Credential,
    DynamicPart,
    FormatError,
    decode_code,
    make_code,
    mint_credential,
)
from duopass.protocol.keys import SigningKey, is_usable_public_key, kid_of, verify_signature
from duopass.protocol.memory import Acceptance, MemoryStore, TerminalMemory
from duopass.protocol.reasons import Reason
from duopass.protocol.trust import (
    Issuer,
    Policy,
    TrustKey,
    TrustStore,
    TrustStoreError,
    dump_trust_store,
    parse_trust_store,
)
from duopass.protocol.verify import Mode, TerminalConfig, Verdict, Verifier, verify, verify_code

__all__ = [
    "Acceptance",
    "Claims",
    "Code",
    "Credential",
    "DynamicPart",
    "FormatError",
    "Issuer",
    "Kind",
    "MalformedError",
    "MemoryStore",
    "Mode",
    "Policy",
    "Reason",
    "SigningKey",
    "TerminalConfig",
    "TerminalMemory",
    "TrustKey",
    "TrustStore",
    "TrustStoreError",
    "Verdict",
    "Verifier",
    "decode_code",
    "dump_trust_store",
    "is_usable_public_key",
    "kid_of",
    "make_code",
    "mint_credential",
    "parse_trust_store",
    "verify",
    "verify_code",
    "verify_signature",
]
