"""Risk: what the server concludes from what it sees, as pure rules over plain values.

The evidence rules of offline acceptances (§4.4-§4.5, §5: clone, relay, past `uses`, above a
refresh mark, revoked in the bundle, negative free funds, gaps in a journal) and the catalogue of
alert kinds they raise; the streaming features of the risk engine (`features`: keys, signals,
observations, queries and the `FeatureStore` interface; `windows`: the sliding windows and their
buckets; `buckets`: the rows a store keeps; `memory`: the reference store); the points where the
server asks the policy's signals and guards, the features read there, and the judgement
(`points`); the habits of holders and terminals over their journal entries (`baselines`) and the
rules that flag an entry far off them (`anomaly`).

May import: the standard library, `duopass.protocol` and `duopass.policy` (the signals and guards
are the policy's). Never the server, its database or HTTP: the server persists what these rules
conclude (`server/services/alerts.py`) and keeps the features' counts
(`server/services/risk_features.py`) and the baselines (`server/services/journals/anomalies.py`).
"""

from duopass.risk.evidence import Acceptance, Earlier, batch_evidence, duplicate_kind, evidence
from duopass.risk.features import (
    Count,
    Distinct,
    Features,
    FeatureStore,
    Key,
    KeyKind,
    LastSeen,
    Observation,
    Pair,
    Query,
    Signal,
    ip_of,
    network_of,
)
from duopass.risk.kinds import SUSPENDING, AlertKind, ReviewAction
from duopass.risk.memory import MemoryFeatureStore
from duopass.risk.windows import Window

__all__ = [
    "SUSPENDING",
    "Acceptance",
    "AlertKind",
    "Count",
    "Distinct",
    "Earlier",
    "FeatureStore",
    "Features",
    "Key",
    "KeyKind",
    "LastSeen",
    "MemoryFeatureStore",
    "Observation",
    "Pair",
    "Query",
    "ReviewAction",
    "Signal",
    "Window",
    "batch_evidence",
    "duplicate_kind",
    "evidence",
    "ip_of",
    "network_of",
]
