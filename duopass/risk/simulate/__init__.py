"""The labelled stream that measures the risk engine (issue 15): a reproducible campus day of
honest holders and fraud incidents (`generate`), each fraud family's parameters in a file of its
own (`families/*.toml`, the honest day in `honest.toml`), and the figures of a run
(`Tally`: incidents caught per family, precision, honest friction, reissues decided without a
person).

No server here, no HTTP: the driver (`duopass/cli/risk_driver.py`) plays a stream against a
real server and tells the tally what each step met.
"""

from duopass.risk.simulate.draft import families
from duopass.risk.simulate.generate import generate
from duopass.risk.simulate.model import (
    CAMPUS_NAT,
    CAMPUS_NETWORK,
    HONEST,
    Family,
    HolderSpec,
    Incident,
    Kind,
    Step,
    Stream,
)
from duopass.risk.simulate.tally import GOALS, Met, Tally, table

__all__ = [
    "CAMPUS_NAT",
    "CAMPUS_NETWORK",
    "GOALS",
    "HONEST",
    "Family",
    "HolderSpec",
    "Incident",
    "Kind",
    "Met",
    "Step",
    "Stream",
    "Tally",
    "families",
    "generate",
    "table",
]
