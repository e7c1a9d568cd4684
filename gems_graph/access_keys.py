"""Which clients a GEMS server lets in: one rule for ``gems serve-generator`` and the Agent Server.

A server reads the keys it accepts from ``GEMS_SERVER_KEYS``: entries separated by
commas, each ``owner:key`` (the owner names who holds the key; runs on the Agent
Server belong to it) or a bare ``key`` (its owner is ``key-`` and the first 12 hex
digits of the key's sha256, so no part of the key itself is ever shown). A client sends
a key as ``Authorization: Bearer KEY`` (``images-api:`` clients send
``GEMS_IMAGES_API_KEY`` so) or as ``X-Api-Key: KEY`` (what ``langgraph_sdk`` sends for
``api_key=``). Keys are compared in constant time and never logged.

With no keys set a server accepts loopback clients only: that is what makes
authentication on by default whenever a server is reachable from another machine.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gems_graph.errors import SERVER_KEYS_VARIABLE

__all__ = ["SERVER_KEYS_VARIABLE", "AccessKeyError", "AccessKeys", "admit", "is_loopback", "key_owner", "presented_key"]
#: Shortest key accepted: a key anyone could guess is no key.
MIN_KEY_CHARS = 16
#: Who a loopback client is when the server has no keys.
LOCAL_OWNER = "local"


class AccessKeyError(ValueError):
    """``GEMS_SERVER_KEYS`` cannot be read; the message names the entry's position, never the key."""


def key_owner(key: str) -> str:
    """The owner of a bare key: a fingerprint that does not reveal the key."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class AccessKeys:
    """The keys a server accepts, each with its owner; empty means loopback clients only."""

    owners: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AccessKeys:
        entries = []
        for position, raw in enumerate((text or "").split(","), start=1):
            entry = raw.strip()
            if not entry:
                continue
            owner, sep, key = entry.partition(":")
            if not sep:
                owner, key = key_owner(entry), entry
            owner, key = owner.strip(), key.strip()
            if not owner or len(key) < MIN_KEY_CHARS:
                raise AccessKeyError(
                    f"{SERVER_KEYS_VARIABLE} entry {position} is not 'owner:key' or 'key' with a key of at least "
                    f"{MIN_KEY_CHARS} characters (make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            entries.append((owner, key))
        return cls(tuple(entries))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccessKeys:
        return cls.parse((os.environ if environ is None else environ).get(SERVER_KEYS_VARIABLE))

    def __bool__(self) -> bool:
        return bool(self.owners)

    def owner_of(self, presented: str | None) -> str | None:
        """The owner of the key a client presented, or None; every key is compared, in constant time."""
        if not presented:
            return None
        found = None
        for owner, key in self.owners:
            if hmac.compare_digest(presented.encode(), key.encode()):
                found = owner
        return found


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in ``Authorization: Bearer KEY`` or ``X-Api-Key: KEY`` (header names in any case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    scheme, _, token = (lowered.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return (lowered.get("x-api-key") or "").strip() or None


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    if not host:
        return False
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def admit(keys: AccessKeys, headers: Mapping[str, str], peer: str | None) -> str:
    """The owner a request acts for; ``PermissionError`` with the reason a client reads when it may not.

    With keys set, the request must present one of them; without keys, only a loopback peer is let in.
    """
    if keys:
        owner = keys.owner_of(presented_key(headers))
        if owner is None:
            presented = presented_key(headers) is not None
            raise PermissionError("the API key is not valid" if presented else "an API key is required (Authorization: Bearer KEY)")
        return owner
    if is_loopback(peer):
        return LOCAL_OWNER
    raise PermissionError(f"this server has no {SERVER_KEYS_VARIABLE} set and accepts loopback clients only")
