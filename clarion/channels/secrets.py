"""Channel secrets at rest: AES-256-GCM under an operator key, so a copy of the database alone reveals no credential.

A sealed value reads `v1:<key id>:<base64 of nonce + ciphertext>`. The key id (a digest of the key, never the key)
says which key sealed it, so an operator can rotate: the new key becomes `delivery.secret_key`, the old one moves to
`delivery.retired_secret_keys`, and values are re-sealed under the new key (docs/channels.md). Each value is bound
to the row it belongs to (associated data), so a sealed secret copied into another project's row does not open.

The key comes from `delivery.secret_key` or, when that is unset, from a key file generated once in the data
directory with 0600 permissions. Backups must include that file; several processes on PostgreSQL must share the
configured key instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clarion.channels.config import DeliverySettings
from clarion.private_files import tighten, write_private_file

KEY_FILE = "channel-secrets.key"
KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = "v1"


class SecretKeyError(Exception):
    """A key is malformed, or a sealed value cannot be opened with the keys this process has."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"clarion channel secrets\0" + key).hexdigest()[:12]


def decode_key(text: str, where: str) -> bytes:
    """A key as operators write it: 32 random bytes in base64 (`openssl rand -base64 32`)."""
    try:
        key = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{where} is not base64; generate one with `openssl rand -base64 32`") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{where} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


@dataclass(frozen=True)
class SecretBox:
    """Seals with the current key; opens with the current key or any retired one."""

    current_id: str
    _ciphers: dict[str, AESGCM]
    _keys: dict[str, bytes]

    @classmethod
    def from_keys(cls, current: bytes, retired: Iterable[bytes] = ()) -> SecretBox:
        keys = {key_id(key): key for key in [*retired, current]}
        return cls(key_id(current), {kid: AESGCM(key) for kid, key in keys.items()}, keys)

    def keyed_digest(self, data: bytes, purpose: str) -> tuple[str, bytes]:
        """HMAC-SHA256 of `data` under a key derived for `purpose` from the current key, and that key's id: a digest
        only holders of the operator key can make or check, such as a one-time password's (clarion/otp/)."""
        return self.current_id, self._digest(self._keys[self.current_id], data, purpose)

    def matches_keyed_digest(self, data: bytes, purpose: str, made_by: str, digest: bytes) -> bool | None:
        """Whether `digest` is `data`'s keyed digest under the key `made_by` names, compared in constant time;
        None when this process does not have that key."""
        key = self._keys.get(made_by)
        if key is None:
            return None
        return hmac.compare_digest(self._digest(key, data, purpose), digest)

    @staticmethod
    def _digest(key: bytes, data: bytes, purpose: str) -> bytes:
        derived = hmac.new(key, b"clarion derived key\0" + purpose.encode(), hashlib.sha256).digest()
        return hmac.new(derived, data, hashlib.sha256).digest()

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current_id].encrypt(nonce, plaintext, context.encode())
        return f"{FORMAT}:{self.current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> bytes:
        version, _, rest = sealed.partition(":")
        sealed_by, _, payload = rest.partition(":")
        if version != FORMAT or not payload:
            raise SecretKeyError(f"The stored secrets of {context} are not in a format this Clarion reads")
        cipher = self._ciphers.get(sealed_by)
        if cipher is None:
            raise SecretKeyError(
                f"The stored secrets of {context} were sealed with key {sealed_by}, which this server does not have "
                f"(its keys: {', '.join(sorted(self._ciphers))}); set delivery.secret_key, or list the old key in "
                "delivery.retired_secret_keys"
            )
        raw = base64.b64decode(payload)
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SecretKeyError(
                f"The stored secrets of {context} do not open with key {sealed_by}: they were altered or belong "
                "to another row"
            ) from None

    def sealed_with_current(self, sealed: str) -> bool:
        return sealed.split(":", 2)[1:2] == [self.current_id]


def load_secret_box(delivery: DeliverySettings, data_dir: Path) -> SecretBox:
    """The configured key, or the data directory's key file (made on first use)."""
    retired = [
        decode_key(text.get_secret_value(), f"delivery.retired_secret_keys[{index}]")
        for index, text in enumerate(delivery.retired_secret_keys)
    ]
    if delivery.secret_key is not None and delivery.secret_key.get_secret_value():
        current = decode_key(delivery.secret_key.get_secret_value(), "delivery.secret_key")
    else:
        current = _key_file(data_dir / KEY_FILE)
    return SecretBox.from_keys(current, retired)


def _key_file(path: Path) -> bytes:
    """Read the key file (0600, tightened if an older install left it wider), creating it with a fresh random key if
    absent; processes starting together all end up reading the first complete key written."""
    if not path.exists():
        key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n"
        write_private_file(path, key.encode(), keep_existing=True)
    tighten(path)
    return decode_key(path.read_text(), str(path))
