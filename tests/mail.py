"""A real SMTP server for tests: `aiosmtpd` on 127.0.0.1 on a free port, keeping every message
it is handed (`smtp_fixture`, taken as `smtp`), which a test can also take down. Imported by
the conftest of the tests that send mail."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    """What the SMTP server was handed, in order; `port` is where it listens."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    controller: Controller | None = None

    def down(self) -> None:
        """Stop listening: from now on connecting to `port` is refused."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)  # kept before the 250 that ends the client's send
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]

    def last_code(self, address: str) -> str:
        """The six digits of the newest message to `address`."""
        body = self.to(address)[-1].get_content()
        found = re.search(r"\b(\d{6})\b", body)
        assert found is not None, body
        return found.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 for this test, and the mail it took."""
    mailbox = Mailbox(port=free_port())
    mailbox.controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    mailbox.controller.start()
    try:
        yield mailbox
    finally:
        mailbox.down()
