"""Why the wallet refuses: a stable reason for each refusal, with its own exit status."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EXIT_STATUS", "Failure", "WalletError"]


class Failure(StrEnum):
    """What went wrong, for people and for scripts (exit statuses); added, never renamed."""

    NOT_ENROLLED = "not_enrolled"
    NO_CREDENTIAL = "no_credential"
    EXPIRED = "expired"
    USED_UP = "used_up"
    RESTORED = "restored"
    SIGNED_OUT = "signed_out"
    OFFLINE = "offline"
    REFUSED = "refused"
    BAD_ANSWER = "bad_answer"
    STATE = "state"
    PENDING = "pending"
    """Not refused, not done: a person at the card office decides, or a step-up's code is
    awaited (`duopass wallet reissue` says how to go on)."""


EXIT_STATUS = {
    Failure.NOT_ENROLLED: 3,
    Failure.NO_CREDENTIAL: 4,
    Failure.EXPIRED: 5,
    Failure.USED_UP: 6,
    Failure.RESTORED: 7,
    Failure.SIGNED_OUT: 8,
    Failure.OFFLINE: 9,
    Failure.REFUSED: 10,
    Failure.BAD_ANSWER: 11,
    Failure.STATE: 12,
    Failure.PENDING: 13,
}
"""0 is success, 1 an unexpected error, 2 a usage error (as for every duopass command)."""


class WalletError(Exception):
    """An expected refusal: `failure` for programs, the message for people; `code` is the
    server's problem code when the server refused (`step_up_failed`, ...)."""

    def __init__(self, failure: Failure, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.code = code

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.failure]
