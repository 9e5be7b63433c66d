"""Deliver one outbox event on one channel: the body of the ``notify:<channel>`` consumer.

The ticket's workflow runs one regular activity per (event, channel) with retries and backoff;
the activity calls ``NotificationDelivery(sessions, http, smtp_factory).deliver(event_id, channel)``
(or the module's ``deliver(...)``). One call:

1. reads the event's ``data["notify"]`` (nothing to do when absent or not asking for the
   channel), the ticket, the account's settings for the channel and the targets;
2. records a ``notification_deliveries`` row per target (``pending``; unique per event, channel
   and target, so a retry finds the rows it left) — or ``skipped`` with the cause in
   ``lastError`` when the channel has no settings or no recipient;
3. takes a lease on the rows still open in that same transaction (attempt counted), sends to
   each, and records each outcome in a short transaction after its send (``sent``, or ``failed``
   with the error). A ``sent`` row is never sent again, so retries never send twice;
4. raises ``DeliveryIncomplete`` after recording when a target failed and may succeed later, so
   Temporal retries the activity with backoff and only those targets are tried again. A
   permanent failure (a refused address, a malformed request) is recorded and not retried.

in_app writes the ``notifications`` rows and marks its delivery rows ``sent`` in one transaction;
the ``notifications`` trigger publishes each new row with ``pg_notify`` in that transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx

from pulse.db import SessionFactory
from pulse.domain.tickets import format_ticket_number
from pulse.notifications.messages import DeliveryReport, Message, NotifyRequest, Recipient
from pulse.notifications.senders import EmailSender, Sender, SendError, SlackSender, SmsSender, SmtpFactory
from pulse.notifications.settings import CHANNELS, AccountChannels
from pulse.repositories.notifications import (
    DeliveryRepository,
    InAppNotificationRepository,
    NotificationSettingsRepository,
    RecipientRepository,
)

log = logging.getLogger("pulse.notifications")

NO_TARGET = "(none)"
DEFAULT_LEASE = timedelta(minutes=2)


class DeliveryIncomplete(Exception):
    """Some targets failed and may succeed on a later attempt (the activity is retried)."""


class UnknownChannel(ValueError):
    """Not a channel Pulse knows: retrying cannot help."""


class _Plan:
    """What the first transaction decided: the message, the rows still to send and those of them
    this attempt holds the lease of (claimed in that transaction)."""

    def __init__(self, message: Message, account_channels: AccountChannels,
                 open_rows: list[tuple[int, Recipient]], claimed: set[int], report: DeliveryReport) -> None:
        self.message = message
        self.channels = account_channels
        self.open_rows = open_rows
        self.claimed = claimed
        self.report = report


class NotificationDelivery:
    """``http`` is shared by the SMS and Slack senders (one is made, and closed by ``aclose``,
    when none is given); ``smtp_factory`` builds the SMTP client from the account's settings
    (``pulse.notifications.senders.default_smtp`` by default)."""

    def __init__(self, sessions: SessionFactory, http: httpx.AsyncClient | None = None,
                 smtp_factory: SmtpFactory | None = None, *, lease: timedelta = DEFAULT_LEASE) -> None:
        self.sessions = sessions
        self._http = http
        self._owns_http = http is None
        self.smtp_factory = smtp_factory
        self.lease = lease

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def deliver(self, event_id: int, channel: str) -> DeliveryReport:
        if channel not in CHANNELS:
            raise UnknownChannel(f"unknown notification channel {channel!r}; one of {', '.join(CHANNELS)}")
        plan = await self._plan(event_id, channel)
        if plan is None or not plan.open_rows:
            return plan.report if plan else DeliveryReport(event_id=event_id, channel=channel)
        report = plan.report
        secrets = _secrets(plan.channels) + ([r.address for _, r in plan.open_rows] if channel == "slack" else [])
        sender = self._sender(channel, plan.channels)
        busy: list[str] = [recipient.target for delivery_id, recipient in plan.open_rows
                           if delivery_id not in plan.claimed]
        try:
            for delivery_id, recipient in plan.open_rows:
                if delivery_id not in plan.claimed:
                    continue
                try:
                    await sender.send(recipient, plan.message)
                except SendError as error:
                    await self._failed(delivery_id, _redact(str(error), secrets), retryable=not error.permanent)
                    report.failed.append(recipient.target)
                    if not error.permanent:
                        busy.append(recipient.target)
                except Exception as error:  # anything unexpected is recorded and retried
                    await self._failed(delivery_id, _redact(f"{type(error).__name__}: {error}", secrets), retryable=True)
                    report.failed.append(recipient.target)
                    busy.append(recipient.target)
                else:
                    async with self.sessions() as session, session.begin():
                        await DeliveryRepository(session).mark_sent(delivery_id)
                    report.sent.append(recipient.target)
        finally:
            await sender.aclose()
        if busy:
            raise DeliveryIncomplete(
                f"event {event_id}, {channel}: {len(busy)} of {len(plan.open_rows)} target(s) not delivered yet")
        return report

    async def _failed(self, delivery_id: int, error: str, *, retryable: bool) -> None:
        async with self.sessions() as session, session.begin():
            await DeliveryRepository(session).mark_failed(delivery_id, error, retryable=retryable)

    def _sender(self, channel: str, channels: AccountChannels) -> Sender:
        if channel == "email":
            assert channels.email is not None
            return EmailSender(channels.email, self.smtp_factory)
        if channel == "sms":
            assert channels.sms is not None
            return SmsSender(channels.sms, self.http)
        return SlackSender(self.http)

    async def _plan(self, event_id: int, channel: str) -> _Plan | None:
        async with self.sessions() as session, session.begin():
            recipients = RecipientRepository(session)
            deliveries = DeliveryRepository(session)
            event = await recipients.event(event_id)
            if event is None:
                log.warning("notification for unknown event %s (%s): nothing to deliver", event_id, channel)
                return None
            raw = (event.data or {}).get("notify")
            if not raw:
                return None
            notify = NotifyRequest.model_validate(raw)
            if channel not in notify.channels:
                return None
            report = DeliveryReport(event_id=event_id, channel=channel)
            ticket = await recipients.ticket(event.account_id, event.ticket_id)
            number = format_ticket_number(ticket.number) if ticket else str(
                (event.data or {}).get("ticketNumber") or f"ticket {event.ticket_id}")
            message = Message(ticket_id=event.ticket_id, ticket_number=number,
                              ticket_subject=ticket.subject if ticket else "", kind=notify.kind,
                              reason=notify.reason, subject=notify.subject, text=notify.text)
            stored = await NotificationSettingsRepository(session).get(event.account_id)
            account_channels = AccountChannels.from_stored(stored.email, stored.sms, stored.slack) if stored \
                else AccountChannels()
            targets, skip_reason = await self._targets(recipients, event.account_id, notify, channel, account_channels)
            by_target = {recipient.target: recipient for recipient in targets}
            await deliveries.record(account_id=event.account_id, ticket_id=event.ticket_id, event_id=event_id,
                                    channel=channel, reason=notify.reason,
                                    targets=list(by_target) or [NO_TARGET])
            if skip_reason or not targets:
                await deliveries.skip_open(event_id, channel, skip_reason or _no_recipients(channel))
            elif channel == "in_app":
                report.sent = await self._write_in_app(session, event, notify, message, targets)
            rows = await deliveries.rows(event_id, channel)
            open_rows: list[tuple[int, Recipient]] = []
            for row in rows:
                if row.status == "sent":
                    if row.target not in report.sent:
                        report.already_sent.append(row.target)
                elif row.status == "skipped":
                    report.skipped.append(row.target)
                elif row.target in by_target and row.retryable:
                    open_rows.append((row.id, by_target[row.target]))
                elif row.status == "failed":
                    report.failed.append(row.target)  # a permanent failure, or a target no longer named
            claimed = await deliveries.claim([delivery_id for delivery_id, _ in open_rows], self.lease)
            return _Plan(message, account_channels, open_rows, claimed, report)

    async def _write_in_app(self, session: Any, event: Any, notify: NotifyRequest, message: Message,
                            targets: list[Recipient]) -> list[str]:
        """The notifications and their delivery rows in one transaction; the targets marked now."""
        await InAppNotificationRepository(session).insert([{
            "account_id": event.account_id, "user_id": int(recipient.address), "ticket_id": event.ticket_id,
            "event_id": event.id, "kind": notify.kind, "title": message.title, "body": message.text,
            "data": {"reason": notify.reason, "eventType": event.event_type},
        } for recipient in targets])
        return await DeliveryRepository(session).mark_all_sent(event.id, "in_app", [r.target for r in targets])

    async def _targets(self, recipients: RecipientRepository, account_id: int, notify: NotifyRequest,
                       channel: str, channels: AccountChannels) -> tuple[list[Recipient], str | None]:
        """The channel's recipients, and why the channel is skipped (None: it is not)."""
        if channel == "slack":
            team = await recipients.team(account_id, notify.team_id) if notify.team_id is not None else None
            if team is not None and team.slack_webhook_url:
                return [Recipient(f"team:{team.id}", team.slack_webhook_url)], None
            if channels.slack is not None:
                return [Recipient("account", channels.slack.webhook_url.get_secret_value())], None
            target = f"team:{notify.team_id}" if notify.team_id is not None else "account"
            where = f"team {notify.team_id} has no slackWebhookUrl and " if notify.team_id is not None else ""
            return [Recipient(target, "")], f"skipped: {where}the account has no Slack settings"
        user_ids = list(notify.user_ids)
        if not user_ids and notify.team_id is not None:
            team = await recipients.team(account_id, notify.team_id)
            user_ids = await recipients.team_member_ids(team.id) if team is not None else []
        users = await recipients.active_users(account_id, user_ids)
        targets: dict[str, Recipient] = {}
        if channel == "in_app":
            for user in users:
                targets[f"user:{user.id}"] = Recipient(f"user:{user.id}", str(user.id))
            return list(targets.values()), None
        if channel == "email":
            for address in [user.email for user in users] + list(notify.emails):
                if address and "@" in address.strip():
                    targets.setdefault(address.strip().lower(), Recipient(address.strip(), address.strip()))
            skip = None if channels.email is not None else "skipped: the account has no email (SMTP) settings"
        else:
            for phone in [user.phone for user in users]:
                if phone and phone.strip():
                    targets.setdefault(phone.strip(), Recipient(phone.strip(), phone.strip()))
            skip = None if channels.sms is not None else "skipped: the account has no SMS gateway settings"
        return list(targets.values()), skip


def _no_recipients(channel: str) -> str:
    what = {"email": "an email address", "sms": "a phone number", "in_app": "an active user"}.get(channel, "a target")
    return f"skipped: no recipient with {what}"


def _secrets(channels: AccountChannels) -> list[str]:
    found = []
    if channels.email and channels.email.password:
        found.append(channels.email.password.get_secret_value())
    if channels.sms:
        found.append(channels.sms.auth_token.get_secret_value())
    if channels.slack:
        found.append(channels.slack.webhook_url.get_secret_value())
    return [secret for secret in found if secret]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    return text


async def deliver(sessions: SessionFactory, event_id: int, channel: str, http: httpx.AsyncClient | None = None,
                  smtp_factory: SmtpFactory | None = None) -> DeliveryReport:
    """One-shot form of ``NotificationDelivery(sessions, http, smtp_factory).deliver(event_id, channel)``."""
    delivery = NotificationDelivery(sessions, http, smtp_factory)
    try:
        return await delivery.deliver(event_id, channel)
    finally:
        await delivery.aclose()
