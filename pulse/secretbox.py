"""Secrets at rest: AES-256-GCM under a key from the settings (``PULSE_SECRETS_KEY``, 32 bytes in
URL-safe base64; ``python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"``).

A stored value is ``v1:<base64(nonce ‖ ciphertext ‖ tag)>``, bound to what it is (``context``:
account and field) so a ciphertext copied into another account's row or another field does not
decrypt. The key stays out of the database; without a key Pulse refuses to store such secrets.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pulse.domain.errors import DomainError

PREFIX = "v1:"


class SecretsKeyMissing(DomainError):
    status, code = 503, "not_configured"


class UnreadableSecret(DomainError):
    """A stored secret that this key cannot open (the key changed, or the row was altered)."""

    status, code = 500, "secret_unreadable"


def parse_key(encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("PULSE_SECRETS_KEY is not base64") from None
    if len(key) != 32:
        raise ValueError("PULSE_SECRETS_KEY must hold 32 bytes (base64 of 32 random bytes)")
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    def __init__(self, encoded_key: str | None) -> None:
        self._aead = AESGCM(parse_key(encoded_key)) if encoded_key else None

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            raise SecretsKeyMissing("this server has no key to encrypt secrets with: set PULSE_SECRETS_KEY "
                                    "(32 random bytes, URL-safe base64) and restart it")
        return self._aead

    def seal(self, plain: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, plain.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, context: str) -> str:
        if not stored.startswith(PREFIX):
            raise UnreadableSecret("a stored secret is in an unknown format; set it again")
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
            return self._cipher().decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise UnreadableSecret("a stored secret cannot be decrypted with this server's PULSE_SECRETS_KEY "
                                   "(was the key changed?); set the secret again") from None
