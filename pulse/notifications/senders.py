"""Channel senders, one interface: ``await sender.send(recipient, message)`` raises ``SendError``
when the message was not accepted (``permanent`` when sending it again cannot help), and
``await sender.aclose()`` releases what the sender holds.

- email: SMTP with ``aiosmtplib`` (STARTTLS and login as configured), one message per recipient,
  ``From`` = ``fromAddress``, the ticket number in ``Subject``, plain text. One connection per
  sender, opened at the first message.
- sms: a Twilio-compatible gateway: ``POST {gatewayUrl}/2010-04-01/Accounts/{accountSid}/Messages.json``
  with HTTP basic auth ``accountSid:authToken`` and form fields ``To``, ``From``, ``Body``.
- slack: an incoming webhook: ``POST`` JSON ``{"text", "blocks"}``.

Error texts never contain a secret (no URL, no token): they end up in delivery records.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Callable, Protocol

import aiosmtplib
import httpx

from pulse.notifications.messages import Message, Recipient
from pulse.notifications.settings import EmailSettings, SmsSettings

SEND_TIMEOUT_SECONDS = 30.0
# HTTP answers that sending the same request again cannot fix (a malformed request or number).
PERMANENT_SMS_STATUSES = frozenset({400, 413, 422})
PERMANENT_SLACK_STATUSES = frozenset({400})


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    async def send(self, recipient: Recipient, message: Message) -> None: ...

    async def aclose(self) -> None: ...


SmtpFactory = Callable[[EmailSettings], aiosmtplib.SMTP]


def default_smtp(settings: EmailSettings) -> aiosmtplib.SMTP:
    """A client for the account's server: STARTTLS required when ``starttls`` is on (and never
    attempted when off), no implicit TLS."""
    return aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port, use_tls=False,
                           start_tls=settings.starttls, timeout=SEND_TIMEOUT_SECONDS)


class EmailSender:
    def __init__(self, settings: EmailSettings, smtp_factory: SmtpFactory | None = None) -> None:
        self.settings = settings
        self.smtp_factory = smtp_factory or default_smtp
        self._client: aiosmtplib.SMTP | None = None

    def build(self, recipient: Recipient, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.from_address
        mail["To"] = recipient.address
        mail["Subject"] = message.email_subject()
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.settings.from_address.rpartition("@")[2] or None)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies stay away
        mail["X-Pulse-Ticket"] = message.ticket_number
        mail.set_content(message.email_text())
        return mail

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None:
            client = self.smtp_factory(self.settings)
            await client.connect()
            try:
                if self.settings.username:
                    password = self.settings.password.get_secret_value() if self.settings.password else ""
                    await client.login(self.settings.username, password)
            except BaseException:
                client.close()
                raise
            self._client = client
        return self._client

    async def send(self, recipient: Recipient, message: Message) -> None:
        mail = self.build(recipient, message)
        try:
            client = await self._connected()
            await client.send_message(mail, sender=self.settings.from_address, recipients=[recipient.address])
        except aiosmtplib.SMTPRecipientsRefused as error:
            await self.aclose()
            codes = [refused.code for refused in error.recipients]
            raise SendError(f"SMTP server refused the recipient ({_smtp_reasons(error.recipients)})",
                            permanent=bool(codes) and all(500 <= code < 600 for code in codes)) from None
        except aiosmtplib.SMTPResponseException as error:
            await self.aclose()
            permanent = isinstance(error, (aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused)) \
                and 500 <= error.code < 600
            raise SendError(f"SMTP error {error.code}: {error.message[:300]}", permanent=permanent) from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            await self.aclose()
            raise SendError(f"SMTP: {type(error).__name__}: {str(error)[:300]}") from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.quit()
        except Exception:
            client.close()


def _smtp_reasons(refused: list[aiosmtplib.SMTPRecipientRefused]) -> str:
    return "; ".join(f"{r.code} {r.message[:200]}" for r in refused) or "no reason given"


def _http_failure(service: str, response: httpx.Response, permanent_statuses: frozenset[int]) -> SendError:
    detail = response.text[:300].strip()
    return SendError(f"{service} answered HTTP {response.status_code}" + (f": {detail}" if detail else ""),
                     permanent=response.status_code in permanent_statuses)


class SmsSender:
    def __init__(self, settings: SmsSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    def url(self) -> str:
        return f"{self.settings.gateway_url.rstrip('/')}/2010-04-01/Accounts/{self.settings.account_sid}/Messages.json"

    async def send(self, recipient: Recipient, message: Message) -> None:
        try:
            response = await self.http.post(
                self.url(),
                data={"To": recipient.address, "From": self.settings.from_number, "Body": message.sms_body()},
                auth=(self.settings.account_sid, self.settings.auth_token.get_secret_value()),
                timeout=SEND_TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as error:
            raise SendError(f"SMS gateway unreachable: {type(error).__name__}") from None
        if not response.is_success:
            raise _http_failure("SMS gateway", response, PERMANENT_SMS_STATUSES)

    async def aclose(self) -> None:
        return None


class SlackSender:
    """The recipient's address is the webhook (the team's, else the account's)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(self, recipient: Recipient, message: Message) -> None:
        try:
            response = await self.http.post(recipient.address, json=message.slack_payload(),
                                            timeout=SEND_TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            raise SendError(f"Slack webhook unreachable: {type(error).__name__}") from None
        if not response.is_success:
            raise _http_failure("Slack webhook", response, PERMANENT_SLACK_STATUSES)

    async def aclose(self) -> None:
        return None
