"""Sending email: a small ``Mailer`` protocol and its SMTP implementation.

The digest is sent through whatever implements :class:`Mailer` (tests pass their own);
:class:`SMTPMailer` talks to the server from settings (``smtp_security`` none, starttls or
ssl; the login from the environment), keeps one connection for a run and reconnects after
the server dropped it. A login is never sent in clear text to another machine
(:func:`check_smtp_security`).

    mailer = SMTPMailer(settings)
    try:
        mailer.send(message)
    finally:
        mailer.close()
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

from core.settings import ConfigError, Settings, is_loopback_host


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SMTPMailer:
    """Sends through the SMTP server from settings; reconnects after a dropped connection."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        check_smtp_security(s)
        context = ssl.create_default_context()
        if s.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=self.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
        if s.smtp_user:
            smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
        except Exception:
            if getattr(self._smtp, "sock", None) is None:
                self._smtp = None  # the server closed the connection: reconnect next time
            raise

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def check_smtp_security(settings: Settings) -> None:
    """Refuse to send a login and password in clear text over the network: an SMTP login
    needs ``smtp_security`` starttls or ssl, unless the server is on this machine."""
    if (
        settings.smtp_user
        and settings.smtp_security == "none"
        and not is_loopback_host(settings.smtp_host)
    ):
        raise ConfigError(
            f"refusing to log in to SMTP server {settings.smtp_host} without encryption: the "
            "password would cross the network in clear text. Set VEILLE_SMTP_SECURITY=starttls "
            "(port 587) or ssl (port 465)"
        )
