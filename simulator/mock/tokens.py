"""Signed tokens (JWT, HS256) for agents and customers, sans I/O.

A :class:`TokenIssuer` holds the server's secret (``serve --jwt-secret``, or
:func:`new_secret` per run) and the merchant id. :meth:`TokenIssuer.issue`
signs the claims of one participant; :meth:`TokenIssuer.verify` checks a
token and returns its :class:`Claims`, or raises one of
:class:`~simulator.errors.TokenMalformed`, :class:`~simulator.errors.TokenForged`,
:class:`~simulator.errors.TokenExpired` (HTTP 401) or
:class:`~simulator.errors.TokenWrongRole` (403), each with a one-line,
value-free message. Time is the ``now`` argument (epoch seconds); token ids
(``jti``) come from ``secrets`` unless a test injects a source.

Claims: ``iss`` (``webchat-sim``), ``sub`` (participant ARN), ``role``
(``agent`` / ``customer``), ``name``, ``merchant_id``, ``participant_uuid``,
``iat``, ``exp``, ``jti``; agents add ``user_id`` and ``queues``, customers
may add ``email`` and ``lang``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from ..errors import TokenExpired, TokenForged, TokenMalformed, TokenWrongRole
from .conversation import Role, participant_arn

__all__ = ["ISSUER", "Claims", "TokenIssuer", "looks_like_jwt", "new_secret"]

ISSUER = "webchat-sim"
_ALGORITHM = "HS256"
_REQUIRED = ("iss", "sub", "role", "name", "merchant_id", "participant_uuid", "iat", "exp", "jti")
_B64URL_PART = r"[A-Za-z0-9_-]+"
_JWT_SHAPE = re.compile(rf"{_B64URL_PART}\.{_B64URL_PART}\.{_B64URL_PART}")


def new_secret() -> str:
    """A fresh signing secret (256 bits from the CSPRNG)."""
    return secrets.token_urlsafe(32)


def _token_id() -> str:
    return secrets.token_urlsafe(16)


def looks_like_jwt(text: str) -> bool:
    """True for three dot-separated base64url parts (a JWS compact token).
    Resume tokens (``secrets.token_urlsafe``) never contain a dot."""
    return _JWT_SHAPE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """What a verified token says about its bearer."""

    role: Role
    participant_uuid: str
    participant_arn: str
    name: str
    merchant_id: str
    issued_at: int
    expires_at: int
    token_id: str
    user_id: int | None = None
    """Agents: the UltraCart user id (``ConversationAgentAuth.user_id``)."""
    queues: tuple[str, ...] = ()
    """Agents: the queues the token logs in to (empty: every queue)."""
    email: str | None = None
    language_iso_code: str | None = None


class TokenIssuer:
    """Issues and verifies the server's JWTs (see the module documentation)."""

    def __init__(
        self,
        secret: str | bytes,
        merchant_id: str,
        ttl: float,
        *,
        token_id: Callable[[], str] = _token_id,
    ) -> None:
        if not secret:
            raise ValueError("secret: must not be empty")
        if ttl <= 0:
            raise ValueError(f"ttl: must be > 0 seconds, got {ttl}")
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.merchant_id = merchant_id
        self.ttl = ttl
        self._token_id = token_id

    def issue(
        self,
        role: Role,
        participant_uuid: str,
        name: str,
        now: float,
        *,
        user_id: int | None = None,
        queues: tuple[str, ...] = (),
        email: str | None = None,
        language_iso_code: str | None = None,
    ) -> str:
        """A signed token for this participant, valid from ``now`` for ``ttl`` seconds."""
        issued = int(now)
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": participant_arn(self.merchant_id, role, participant_uuid),
            "role": role.value,
            "name": name,
            "merchant_id": self.merchant_id,
            "participant_uuid": participant_uuid,
            "iat": issued,
            "exp": issued + max(1, round(self.ttl)),
            "jti": self._token_id(),
        }
        if role is Role.AGENT:
            payload["user_id"] = user_id
            payload["queues"] = list(queues)
        if email is not None:
            payload["email"] = email
        if language_iso_code is not None:
            payload["lang"] = language_iso_code
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str, now: float, *, role: Role | None = None) -> Claims:
        """The claims of a genuine, unexpired token of this merchant (and of
        ``role``, if given); else a :class:`~simulator.errors.TokenError`."""
        if not looks_like_jwt(token):
            raise TokenMalformed("token: not a JWT (expected three dot-separated base64url parts)")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": list(_REQUIRED)},
            )
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidIssuerError):
            reason = "token: signature does not verify (forged, tampered or from another server run)"
            raise TokenForged(reason) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenMalformed(f"token: claim {exc.claim!r} missing") from None
        except jwt.InvalidTokenError:
            raise TokenMalformed("token: not a valid JWT") from None
        claims = _claims(payload)
        if now >= claims.expires_at:
            raise TokenExpired("token: expired; ask for a new one")
        if claims.merchant_id != self.merchant_id:
            raise TokenWrongRole("token: issued for another merchant")
        if role is not None and claims.role is not role:
            raise TokenWrongRole(f"token: a {claims.role.value} token cannot be used here ({role.value} required)")
        return claims


def _claims(payload: dict[str, Any]) -> Claims:
    """Typed claims from a decoded, signature-checked payload."""
    try:
        role = Role(payload["role"])
    except (ValueError, TypeError):
        raise TokenWrongRole("token: role is neither agent nor customer") from None
    strings = ("sub", "name", "merchant_id", "participant_uuid", "jti")
    if not all(isinstance(payload[k], str) for k in strings):
        raise TokenMalformed("token: a claim has the wrong type")
    ints = (payload["iat"], payload["exp"])
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
        raise TokenMalformed("token: iat and exp must be integers")
    user_id = payload.get("user_id")
    queues = payload.get("queues", [])
    email, lang = payload.get("email"), payload.get("lang")
    if (
        (user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)))
        or not isinstance(queues, list)
        or not all(isinstance(q, str) for q in queues)
        or not all(v is None or isinstance(v, str) for v in (email, lang))
    ):
        raise TokenMalformed("token: a claim has the wrong type")
    return Claims(
        role=role,
        participant_uuid=payload["participant_uuid"],
        participant_arn=payload["sub"],
        name=payload["name"],
        merchant_id=payload["merchant_id"],
        issued_at=payload["iat"],
        expires_at=payload["exp"],
        token_id=payload["jti"],
        user_id=user_id,
        queues=tuple(queues),
        email=email,
        language_iso_code=lang,
    )
