"""The front door: who may call REST and who a websocket handshake is, sans I/O.

:class:`FrontDoor` holds the API keys (``serve --api-key KEY[=AGENT NAME]``,
each mapped to one agent account) and the :class:`~.tokens.TokenIssuer`.

* **REST credentials**, as UltraCart's SDK sends them: header
  ``x-ultracart-simple-key``, ``x-ultracart-browser-key``, or
  ``Authorization: Bearer`` carrying an API key or an agent JWT
  (:meth:`FrontDoor.rest_agent`). With no key configured (**development
  mode**, also under ``--auth required``) any key is accepted and names an agent of its own
  (``Agent <hash of the key>``); a missing key is refused (401) in every mode.
* **Websocket handshake** (:meth:`FrontDoor.websocket_identity`): a JWT as
  query parameter ``token`` or as ``Authorization: Bearer``. The ``token``
  parameter is also the customer's resume token: a value of JWT shape (three
  dot-separated base64url parts, :func:`~.tokens.looks_like_jwt`) is a JWT,
  anything else a resume token (resume tokens never contain a dot). A bad JWT
  is refused (401: malformed, forged, expired; 403: wrong role or merchant,
  or ``?role=`` contradicting the token). Without a JWT, the query string
  identifies the participant (:func:`parse_identity`) in development mode
  only; otherwise 401. In development mode an ``Authorization`` header that
  carries no JWT (another backend's credentials) is ignored, and an agent
  named by the query string gets the participant uuid of that name's agent
  account, so its ARN is the one REST and the account's JWT give.
* **Lengths**: a query-string ``name``, ``email`` or ``lang`` over its
  :data:`~.rules.LIMITS` is refused (400, :class:`~simulator.errors.IdentityError`),
  as is a ``since`` that is not a 64-bit number of milliseconds.

Participant uuids of accounts and customers authenticated here come from
``uuid.uuid4`` (the OS CSPRNG), never from the engine's seeded generator.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qs

from ..errors import AccessDenied, IdentityError, TokenWrongRole
from .base import Identity
from .conversation import Role, participant_arn
from .rest_models import strict_int
from .rules import LIMITS, length_error
from .tokens import Claims, TokenIssuer, looks_like_jwt

__all__ = ["AgentAccount", "FrontDoor", "parse_api_key", "parse_identity"]

_KEY_HEADERS = ("x-ultracart-simple-key", "x-ultracart-browser-key")


def _new_uuid() -> str:
    return str(uuid.uuid4())


def parse_api_key(text: str) -> tuple[str, str | None]:
    """``KEY`` or ``KEY=AGENT NAME`` (``serve --api-key``) as (key, name or None)."""
    key, sep, name = text.partition("=")
    key, name = key.strip(), name.strip()
    if not key or (sep and not name):
        raise ValueError(f"expected KEY or KEY=AGENT NAME, got {text!r}")
    return key, name or None


def parse_identity(query: str) -> Identity:
    """The participant a development-mode query string names."""
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=False).items()}
    role_text = params.get("role", "customer")
    try:
        role = Role(role_text)
    except ValueError:
        raise IdentityError(f'role: "{role_text}" is not one of "customer", "agent"') from None
    since = _since(params)
    queues = tuple(q for q in params.get("queues", "").split(",") if q)
    if role is Role.AGENT and not params.get("name"):
        raise IdentityError("name: required for role=agent")
    for key, limit in (("name", LIMITS.name), ("email", LIMITS.email), ("lang", LIMITS.language)):
        if reason := length_error(key, params.get(key), limit):
            raise IdentityError(reason)
    return Identity(
        role=role,
        name=params.get("name"),
        email=params.get("email"),
        language_iso_code=params.get("lang"),
        queues=queues,
        resume_token=params.get("token"),
        resume_since=since,
    )


def _since(params: Mapping[str, str]) -> int | None:
    since_text = params.get("since")
    if since_text is None:
        return None
    since = strict_int(since_text)
    if since is None or not 0 <= since < 2**63:
        raise IdentityError(f"since: expected epoch milliseconds in ASCII digits, got {since_text[:40]!r}")
    return since


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAccount:
    """An agent who may call REST: its name (the engine's agent identity),
    UltraCart user id and participant uuid (stable for the server's run)."""

    name: str
    user_id: int
    participant_uuid: str
    merchant_id: str

    @property
    def participant_arn(self) -> str:
        return participant_arn(self.merchant_id, Role.AGENT, self.participant_uuid)


class FrontDoor:
    """API keys, agent accounts and token checks (see the module documentation)."""

    def __init__(
        self,
        issuer: TokenIssuer,
        api_keys: Mapping[str, str | None] | None = None,
        *,
        auth_required: bool = False,
        new_uuid: Callable[[], str] = _new_uuid,
    ) -> None:
        self.issuer = issuer
        self._new_uuid = new_uuid
        self._keys: dict[str, AgentAccount] = {}
        self._by_user_id: dict[int, AgentAccount] = {}
        self._by_name: dict[str, AgentAccount] = {}
        for index, (key, name) in enumerate((api_keys or {}).items(), 1):
            self._keys[key] = self._account(name or f"Agent {index}")
        self.any_key = not self._keys
        """No ``--api-key`` given: any API key is accepted (its own agent) and
        a storefront gets customer tokens without one."""
        self.development = self.any_key and not auth_required
        """Query-string identities are allowed on the websocket (``--auth required`` turns them off)."""

    @property
    def merchant_id(self) -> str:
        return self.issuer.merchant_id

    def _account(self, name: str) -> AgentAccount:
        account = self._by_name.get(name)
        if account is None:
            account = AgentAccount(
                name=name,
                user_id=len(self._by_name) + 1,
                participant_uuid=self._new_uuid(),
                merchant_id=self.merchant_id,
            )
            self._by_name[name] = account
            self._by_user_id[account.user_id] = account
        return account

    def agent_by_user_id(self, user_id: int) -> AgentAccount | None:
        return self._by_user_id.get(user_id)

    # REST

    def agent_for_key(self, key: str) -> AgentAccount:
        """The agent an API key belongs to (development mode: any key, its own agent)."""
        account = self._keys.get(key)
        if account is not None:
            return account
        if self.any_key and key:
            return self._account(f"Agent {hashlib.sha256(key.encode()).hexdigest()[:6]}")
        raise AccessDenied("credentials: unknown API key")

    def rest_agent(self, headers: Mapping[str, str], now: float) -> AgentAccount:
        """The agent calling REST, from the SDK's credential headers (401 without)."""
        for header in _KEY_HEADERS:
            if key := headers.get(header, "").strip():
                return self.agent_for_key(key)
        bearer = _bearer(headers.get("authorization"))
        if bearer is None:
            raise AccessDenied(
                "credentials: required (x-ultracart-simple-key, x-ultracart-browser-key or Authorization: Bearer)"
            )
        if looks_like_jwt(bearer):
            claims = self.issuer.verify(bearer, now, role=Role.AGENT)
            return self._account(claims.name)
        return self.agent_for_key(bearer)

    def agent_token(self, account: AgentAccount, now: float) -> str:
        return self.issuer.issue(Role.AGENT, account.participant_uuid, account.name, now, user_id=account.user_id)

    def customer_token(
        self, now: float, *, name: str, email: str | None = None, language_iso_code: str | None = None
    ) -> tuple[str, str]:
        """A new customer participant: (its uuid, its JWT)."""
        participant_uuid = self._new_uuid()
        token = self.issuer.issue(
            Role.CUSTOMER, participant_uuid, name, now, email=email, language_iso_code=language_iso_code
        )
        return participant_uuid, token

    # Websocket handshake

    def websocket_identity(self, query: str, authorization: str | None, now: float) -> Identity:
        """Who opens this websocket: raises :class:`~simulator.errors.AccessDenied`
        (401/403) or :class:`~simulator.errors.IdentityError` (400)."""
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=False).items()}
        token = params.get("token")
        jwt_text: str | None = None
        if authorization is not None:
            bearer = _bearer(authorization)
            if bearer is not None and looks_like_jwt(bearer):
                jwt_text = bearer
            elif not self.development:  # development mode: another backend's header, ignored
                raise AccessDenied("Authorization: expected Bearer <jwt>")
        if jwt_text is None and token is not None and looks_like_jwt(token):
            jwt_text = token
        if jwt_text is None:
            if not self.development:
                raise AccessDenied("token: required (from PUT /rest/v2/conversation/agent/auth or a customer auth)")
            identity = parse_identity(query)
            if identity.role is Role.AGENT and identity.name:  # the ARN REST and its JWT give that name
                identity = replace(identity, participant_uuid=self._account(identity.name).participant_uuid)
            return identity
        claims = self.issuer.verify(jwt_text, now)
        role_text = params.get("role")
        if role_text is not None and role_text != claims.role.value:
            raise TokenWrongRole(f"token: a {claims.role.value} token cannot connect as role={role_text[:20]}")
        resume = token if token is not None and not looks_like_jwt(token) else None
        return _identity(claims, resume, _since(params))


def _identity(claims: Claims, resume_token: str | None, since: int | None) -> Identity:
    return Identity(
        role=claims.role,
        name=claims.name,
        email=claims.email,
        language_iso_code=claims.language_iso_code,
        queues=claims.queues,
        resume_token=resume_token if claims.role is Role.CUSTOMER else None,
        resume_since=since,
        participant_uuid=claims.participant_uuid,
        authenticated=True,
    )


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None
