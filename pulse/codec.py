"""Workflow payloads encrypted at rest in Temporal: an AES-GCM payload codec with a key ring.

``PULSE_PAYLOAD_KEYS`` = ``id:base64key[,id:base64key…]`` (32-byte keys): the first encrypts, all
decrypt, so a key is rotated by putting a new one first and dropping the old one once no history
still needs it. Every payload the API and the workers write (workflow inputs, updates, results,
activity inputs and outputs, summaries) is stored as ``binary/encrypted`` with the key's id; a
payload without that encoding (histories from before encryption) is read as it is. The Temporal
UI and CLI read the histories through Pulse's codec endpoint (``pulse.api.routers.codec``).
"""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class KeyRingError(ValueError):
    """The configured key ring is malformed, or a payload names a key it does not hold."""


def new_key_ring(key_id: str = "k1") -> str:
    """A fresh ``PULSE_PAYLOAD_KEYS`` value with one random key."""
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyRingError(f"the active key {active!r} is not in the ring")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active = active

    @classmethod
    def from_setting(cls, text: str) -> "EncryptionCodec":
        keys: dict[str, bytes] = {}
        for entry in (part.strip() for part in text.split(",") if part.strip()):
            key_id, _, encoded = entry.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise KeyRingError(f"key {key_id!r} is not base64") from None
            if not key_id or len(key) != 32:
                raise KeyRingError(f"key {key_id!r} must be id:base64 of 32 bytes")
            keys[key_id] = key
        if not keys:
            raise KeyRingError("no keys given")
        return cls(keys, next(iter(keys)))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(payload) for payload in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.active.encode()}, data=nonce + sealed)

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyRingError(f"payload encrypted with key {key_id!r}, which the key ring does not hold")
        plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        return Payload.FromString(plain)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """Pulse's converter (pydantic), with the codec when one is configured."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def codec_from(keys: str | None) -> EncryptionCodec | None:
    return EncryptionCodec.from_setting(keys) if keys else None
