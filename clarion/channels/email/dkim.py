"""DKIM signing (RFC 6376, relaxed/relaxed) with rsa-sha256 or ed25519-sha256 (RFC 8463), on `cryptography`.

dkimpy signs in pure Python (about 6 ms per RSA-2048 signature); `cryptography` takes a quarter of a millisecond,
so signing stays off the delivery critical path. Tests verify what this writes with dkimpy.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from clarion.channels.config import DkimSettings

# Signed when present, in this order; From is mandatory (RFC 6376 §5.4). Listing a header that is absent is
# harmless and protects against it being added later, but we list only what the message carries.
SIGNED_HEADERS = (
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
)

_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_TRAILING_EMPTY_LINES = re.compile(rb"(\r\n)+\Z")


def canonical_header(name: bytes, value: bytes) -> bytes:
    """Relaxed header canonicalization (§3.4.2): lower-case name, unfold, collapse blanks, trim."""
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


def canonical_body(body: bytes) -> bytes:
    """Relaxed body canonicalization (§3.4.4): collapse blanks, drop trailing blanks and trailing empty lines.

    Done on the whole buffer (a few C-level passes) rather than line by line: it runs for every message."""
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    body = _WSP_RUN.sub(b" ", body).replace(b" \r\n", b"\r\n")
    body = _TRAILING_EMPTY_LINES.sub(b"", body)
    return body + b"\r\n" if body else b""


def split_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """A header block as (lower-case name, raw value including folds) pairs, in order."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower(), value))
    return fields


class DkimSigner:
    """Adds a DKIM-Signature header to a serialized message (CRLF line endings)."""

    def __init__(self, domain: str, selector: str, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError("DKIM keys must be RSA or Ed25519")
        self._key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = key
        self.algorithm = "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"
        self.domain = domain
        self.selector = selector

    @classmethod
    def from_settings(cls, settings: DkimSettings) -> DkimSigner:
        pem = settings.private_key.encode() if settings.private_key else Path(settings.private_key_path).read_bytes()
        return cls(settings.domain, settings.selector, pem)

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463 §3: Ed25519 signs the SHA-256 digest of the canonicalized data.
        return self._key.sign(hashlib.sha256(data).digest())

    def sign(self, message: bytes, timestamp: int) -> bytes:
        """The message with a DKIM-Signature header in front."""
        head, _, body = message.partition(b"\r\n\r\n")
        # A verifier pairs each h= name with the bottom-most instance of that header (§5.4.2): later ones win.
        last = dict(split_headers(head))
        signed = [name for name in SIGNED_HEADERS if name.encode() in last]
        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest()).decode()
        unsigned_value = (
            f" v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector};\r\n"
            f"\tt={timestamp}; h={':'.join(signed)};\r\n\tbh={body_hash};\r\n\tb="
        ).encode()
        data = b"".join(canonical_header(name.encode(), last[name.encode()]) for name in signed)
        data += canonical_header(b"DKIM-Signature", unsigned_value).removesuffix(b"\r\n")
        signature = base64.b64encode(self._sign(data))
        folded = b"\r\n\t ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return b"DKIM-Signature:" + unsigned_value + folded + b"\r\n" + message


def dns_record(public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> str:
    """The TXT record to publish at <selector>._domainkey.<domain> for a key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
