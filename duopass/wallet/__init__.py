"""The holder's wallet (PROTOCOL.md §2, §4): the device key, the cached credential, counters
kept durably under one lock, the server's clock, and codes made offline. It talks to the
issuer server over HTTP only and imports nothing of it."""

from duopass.wallet.clock import Clock, SystemClock
from duopass.wallet.errors import EXIT_STATUS, Failure, WalletError
from duopass.wallet.wallet import Display, Wallet

__all__ = ["EXIT_STATUS", "Clock", "Display", "Failure", "SystemClock", "Wallet", "WalletError"]
