"""An account's channel settings: what is stored, what the API shows, and how a PUT merges.

Secrets (``password``, ``authToken``, ``webhookUrl``) are write-only: they are kept in
``SecretStr`` (so a repr or a log line never shows them), rendered as ``****`` + their last four
characters, and a PUT that leaves one out — or sends back the masked value it was shown — keeps
the stored one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from pulse.domain.errors import ValidationFailed
from pulse.domain.settings_records import http_url, mask_secret, write_only_secret
from pulse.domain.ticket_fields import plausible_email

Channel = Literal["email", "sms", "slack", "in_app"]
CHANNELS: tuple[str, ...] = ("email", "sms", "slack", "in_app")
CONFIGURED_CHANNELS: tuple[str, ...] = ("email", "sms", "slack")
SECRETS = {"email": "password", "sms": "auth_token", "slack": "webhook_url"}


mask = mask_secret


class ChannelSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def stored(self) -> dict[str, Any]:
        """What goes into the database (secrets in clear: the row is the one place they live)."""
        values = self.model_dump(mode="python")
        return {key: value.get_secret_value() if isinstance(value, SecretStr) else value
                for key, value in values.items()}

    def shown(self) -> dict[str, Any]:
        """What the API renders: camelCase, secrets masked."""
        values = self.model_dump(mode="python", by_alias=True)
        return {key: mask(value.get_secret_value()) if isinstance(value, SecretStr) else value
                for key, value in values.items()}


class EmailSettings(ChannelSettings):
    smtp_host: str = Field(min_length=1, max_length=255, pattern=r"^[^\s/]+$")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = Field(default=None, min_length=1, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=1000)
    from_address: str = Field(min_length=3, max_length=320)

    _from = field_validator("from_address")(plausible_email)


class SmsSettings(ChannelSettings):
    gateway_url: str = Field(min_length=1, max_length=2000)
    account_sid: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    auth_token: SecretStr = Field(min_length=1, max_length=500)
    from_number: str = Field(min_length=1, max_length=50)

    _url = field_validator("gateway_url")(http_url)


class SlackSettings(ChannelSettings):
    webhook_url: SecretStr = Field(min_length=1, max_length=2000)

    @field_validator("webhook_url")
    @classmethod
    def webhook_url_is_http(cls, value: SecretStr) -> SecretStr:
        http_url(value.get_secret_value())
        return value


SETTINGS_MODELS: dict[str, type[ChannelSettings]] = {"email": EmailSettings, "sms": SmsSettings, "slack": SlackSettings}


class AccountChannels(BaseModel):
    """The parsed settings of one account (a channel is None while unconfigured)."""

    email: EmailSettings | None = None
    sms: SmsSettings | None = None
    slack: SlackSettings | None = None

    @classmethod
    def from_stored(cls, email: dict[str, Any] | None, sms: dict[str, Any] | None,
                    slack: dict[str, Any] | None) -> "AccountChannels":
        return cls(email=EmailSettings.model_validate(email) if email else None,
                   sms=SmsSettings.model_validate(sms) if sms else None,
                   slack=SlackSettings.model_validate(slack) if slack else None)

    def shown(self) -> dict[str, Any]:
        return {channel: (getattr(self, channel).shown() if getattr(self, channel) else None)
                for channel in CONFIGURED_CHANNELS}


def merge_channel(channel: str, sent: dict[str, Any] | None, stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A PUT of one channel: ``sent`` (snake_case, the fields the client sent) replaces the stored
    fields, except that an omitted secret, or one sent back masked, keeps the stored secret.
    ``None`` clears the channel. Raises a 422 naming each bad field (never echoing a value)."""
    if sent is None:
        return None
    secret = SECRETS[channel]
    merged = dict(sent)
    kept = write_only_secret(sent, secret, (stored or {}).get(secret))
    if kept is None and secret not in sent:
        merged.pop(secret, None)
    else:
        merged[secret] = kept
    if channel == "email" and merged.get("password") is not None and not merged.get("username"):
        raise ValidationFailed("email.username: a password needs a username",
                               details=[{"field": "email.username", "message": "a password needs a username"}])
    try:
        return SETTINGS_MODELS[channel].model_validate(merged).stored()
    except ValidationError as error:
        details = [{"field": ".".join([channel, *(to_camel(str(part)) for part in e["loc"])]),
                    "message": _message(e, to_camel(secret))}
                   for e in error.errors(include_input=False, include_url=False)]
        raise ValidationFailed(f"invalid {channel} settings", details=details) from None


def _message(error: Any, secret_field: str) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        on_file = to_camel(str(error["loc"][-1])) == secret_field
        return "required (none is stored yet)" if on_file else "required"
    return str(error["msg"]).removeprefix("Value error, ")
