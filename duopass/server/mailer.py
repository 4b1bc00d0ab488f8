"""E-mail to holders through the SMTP server the settings name (stdlib `smtplib`, with a
timeout): one message at a time, sent while the request waits. Nothing here logs a message's
body or the SMTP password."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from duopass.server.problems import Problem, ProblemCode
from duopass.server.settings import Settings

__all__ = ["configured", "masked", "send"]


def configured(settings: Settings) -> bool:
    """Whether a mail server is configured at all."""
    return settings.smtp_host is not None


def masked(address: str) -> str:
    """An address as a page may show it to whoever holds the session: `a***@example.edu`."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def send(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """Hand one plain-text message to the mail server; 503 `mail_unavailable` when it cannot
    be reached or refuses it (the message is then not sent)."""
    assert settings.smtp_host is not None, "configured() first"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user is not None and settings.smtp_password is not None:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise Problem(
            ProblemCode.MAIL_UNAVAILABLE,
            f"the mail server could not take the message ({type(exc).__name__}): try later",
        ) from exc
