"""The dialect: how a load-generator session talks to one kind of backend.

Everything that depends on *which* server the sessions drive lives here: the
URL layout, how a participant identifies itself, which frames start, route,
answer and close a chat and how to recognise the server's answers. Sessions
and scenarios only use these methods, so adapting the load generator to
another backend means subclassing :class:`Dialect` (see README, "Pointing it
at another backend") and passing the subclass to the users.

Authenticating (``--auth rest``) is UltraCart's REST flow, sans I/O here: the
dialect builds the requests (:meth:`Dialect.agent_auth_request`,
:meth:`Dialect.customer_auth_request`), reads their answers
(:meth:`Dialect.parse_auth`) and says how the websocket presents the JWT
(:meth:`Dialect.authenticated_url`, :meth:`Dialect.authenticated_headers`);
the session sends them (:meth:`Session.authenticate
<simulator.load.session.Session.authenticate>`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..protocol import (
    CartItem,
    ConversationEventAddCoupon,
    ConversationEventAddItem,
    ConversationEventReadMessage,
    ConversationEventRRWeb,
    ConversationEventTyping,
    ConversationEventWebchatContext,
    ConversationMessage,
    ConversationWebchatQueueStatusQueueEntry,
    EventType,
    Frame,
    FrameType,
)
from .templates import Template

__all__ = ["Auth", "AuthError", "AuthRequest", "AuthSettings", "Dialect"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """How sessions authenticate through REST (``--auth rest``): the REST base
    URL (``None``: derived from the websocket host, :meth:`Dialect.rest_url`)
    and the API key(s) sent as credentials."""

    api_key: str | None = None
    rest_url: str | None = None


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """One HTTP request of the REST auth flow."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Auth:
    """What a REST auth answered: the JWT and the websocket to open with it."""

    jwt: str
    websocket_url: str
    participant_arn: str | None = None
    participant_name: str | None = None


class AuthError(Exception):
    """An auth answer the dialect cannot use; the message carries no per-user values."""


_JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


def _plain(*values: object) -> bool:
    return all(type(value) is str for value in values)


class _Templates:
    """The base dialect's frames sent per exchange, as :class:`~.templates.Template` (made on first use)."""

    def __init__(self) -> None:
        base = Dialect()
        self.message = Template(base.message, 4)
        self.message_no_language = Template(lambda c, b, m: base.message(c, b, m, None), 3)
        self.typing = Template(base.typing, 2)
        self.read = Template(base.read, 2)


_made: list[_Templates] = []


def _templates() -> _Templates:
    if not _made:
        _made.append(_Templates())
    return _made[0]


class Dialect:
    """This project's dialect (docs/protocol.md part B) in development mode."""

    #: websocket path on the host given with ``--host``
    path = "/ws"
    #: codec context checks on received frames (turn off for laxer backends)
    strict_frames = True
    #: REST base path on the HTTP side (``--auth rest``), UltraCart's ``/rest/v2``
    rest_path = "/rest/v2"
    #: where the websocket handshake carries the JWT of a REST auth: an
    #: ``Authorization: Bearer`` header or the ``token`` query parameter (a
    #: resume, whose ``token`` is the resume token, sends the header anyway)
    token_in: Literal["header", "query"] = "header"

    # Connecting --------------------------------------------------------------

    def _url(self, host: str, params: Mapping[str, str]) -> str:
        parts = urlsplit(host if "://" in host else f"ws://{host}")
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        path = parts.path if parts.path not in ("", "/") else self.path
        return urlunsplit((scheme, parts.netloc, path, urlencode(params), ""))

    def customer_url(
        self,
        host: str,
        *,
        name: str | None = None,
        email: str | None = None,
        language: str | None = None,
        resume_token: str | None = None,
        since: int | None = None,
    ) -> str:
        params = {"role": "customer"}
        for key, value in (("name", name), ("email", email), ("lang", language), ("token", resume_token)):
            if value:
                params[key] = value
        if since is not None:
            params["since"] = str(since)
        return self._url(host, params)

    def agent_url(self, host: str, *, name: str, queues: Sequence[str], resume_token: str | None = None) -> str:
        """An agent's URL; ``resume_token``: the secret its first connection was
        given, without which the server refuses a name still held (4.4)."""
        params = {"role": "agent", "name": name, "queues": ",".join(queues)}
        if resume_token:
            params["token"] = resume_token
        return self._url(host, params)

    def headers(self, role: str) -> dict[str, str]:
        """Extra HTTP headers of the opening handshake (e.g. ``Authorization``)."""
        return {}

    # Authenticating through REST (--auth rest) --------------------------------

    def rest_url(self, host: str) -> str:
        """The REST base URL next to the websocket ``host``: the mock's HTTP
        side listens on the websocket port + 1 (``ws://H:P/ws`` →
        ``http://H:P+1/rest/v2``); a host without a port keeps it
        (``wss://chat.example.com/ws`` → ``https://chat.example.com/rest/v2``)."""
        parts = urlsplit(host if "://" in host else f"ws://{host}")
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        netloc = parts.netloc.rpartition("@")[2]
        if parts.port is not None:
            name = parts.hostname or ""
            name = f"[{name}]" if ":" in name else name
            netloc = f"{name}:{parts.port + 1}"
        return urlunsplit((scheme, netloc, self.rest_path, "", ""))

    def credentials(self, api_key: str) -> dict[str, str]:
        """The REST credential headers of an API key (the SDK's simple key)."""
        return {"x-ultracart-simple-key": api_key}

    def agent_auth_request(self, rest_url: str, api_key: str | None) -> AuthRequest:
        """``PUT /conversation/agent/auth``: an agent's JWT and websocket URL."""
        headers = {**_JSON_HEADERS, **(self.credentials(api_key) if api_key else {})}
        return AuthRequest("PUT", rest_url.rstrip("/") + "/conversation/agent/auth", headers)

    def customer_auth_request(
        self,
        rest_url: str,
        api_key: str | None,
        *,
        name: str | None = None,
        email: str | None = None,
        language: str | None = None,
    ) -> AuthRequest:
        """The mock's ``POST /webchat-sim/customer_auth`` (a storefront's
        backend asking for a customer token, with its key when it has one)."""
        body = {k: v for k, v in (("name", name), ("email", email), ("language_iso_code", language)) if v}
        headers = {**_JSON_HEADERS, **(self.credentials(api_key) if api_key else {})}
        return AuthRequest("POST", rest_url.rstrip("/") + "/webchat-sim/customer_auth", headers, orjson.dumps(body))

    def parse_auth(self, role: str, body: bytes) -> Auth:
        """The JWT and websocket URL of a successful auth answer
        (``agent_auth`` or ``customer_auth``); :class:`AuthError` otherwise."""
        key = "agent_auth" if role == "agent" else "customer_auth"
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise AuthError("answer is not JSON") from None
        auth = data.get(key) if isinstance(data, dict) else None
        if not isinstance(auth, dict):
            raise AuthError(f"answer without {key}")
        jwt, url = auth.get("jwt"), auth.get("websocket_url")
        if not isinstance(jwt, str) or not jwt:
            raise AuthError(f"{key} without jwt")
        if not isinstance(url, str) or not url:
            raise AuthError(f"{key} without websocket_url")
        arn, name = auth.get("conversation_participant_arn"), auth.get("conversation_participant_name")
        return Auth(
            jwt=jwt,
            websocket_url=url,
            participant_arn=arn if isinstance(arn, str) else None,
            participant_name=name if isinstance(name, str) else None,
        )

    @staticmethod
    def error_reason(body: bytes) -> str | None:
        """The message of an ``ErrorResponse`` body, if it is one."""
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            return None
        message = error.get("developer_message") or error.get("user_message")
        return message if isinstance(message, str) and message else None

    def _jwt_in_query(self, resume_token: str | None) -> bool:
        return self.token_in == "query" and resume_token is None

    def authenticated_url(
        self, auth: Auth, role: str, *, resume_token: str | None = None, since: int | None = None
    ) -> str:
        """The websocket URL the auth answered, with the JWT (when carried in
        the query) or a customer's resume token and epoch."""
        parts = urlsplit(auth.websocket_url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        if self._jwt_in_query(resume_token):
            params.append(("token", auth.jwt))
        elif resume_token:
            params.append(("token", resume_token))
        if since is not None:
            params.append(("since", str(since)))
        path = parts.path or self.path
        return urlunsplit((parts.scheme, parts.netloc, path, urlencode(params), ""))

    def authenticated_headers(self, auth: Auth, role: str, *, resume_token: str | None = None) -> dict[str, str]:
        """The handshake headers with the JWT (``Authorization: Bearer``)
        unless it is carried in the query; :meth:`headers` added."""
        extra = self.headers(role)
        if self._jwt_in_query(resume_token):
            return extra
        return {**extra, "Authorization": f"Bearer {auth.jwt}"}

    # Customer frames ---------------------------------------------------------

    def start_chat(self, entry: ConversationWebchatQueueStatusQueueEntry) -> Frame:
        return Frame(type=FrameType.EVENT, event_type=EventType.WEBCHAT_START_CONVERSATION, event_engage_customer=entry)

    def check_queue_position(self, conversation_uuid: str) -> Frame:
        return Frame(type=FrameType.CHECK_QUEUE_POSITION, conversation_uuid=conversation_uuid)

    def webchat_context(self, conversation_uuid: str, context: ConversationEventWebchatContext) -> Frame:
        return Frame(
            type=FrameType.EVENT,
            event_type=EventType.WEBCHAT_CONTEXT,
            conversation_uuid=conversation_uuid,
            event_webchat_context=context,
        )

    def rrweb(self, conversation_uuid: str, chunk: ConversationEventRRWeb) -> Frame:
        return Frame(
            type=FrameType.EVENT, event_type=EventType.RRWEB, conversation_uuid=conversation_uuid, event_rrweb=chunk
        )

    # Both sides --------------------------------------------------------------

    def message(self, conversation_uuid: str, body: str, client_message_id: str, language: str | None) -> Frame:
        return Frame(
            type=FrameType.MESSAGE,
            conversation_uuid=conversation_uuid,
            message=ConversationMessage(body=body, client_message_id=client_message_id, language_iso_code=language),
        )

    def message_wire(
        self, conversation_uuid: str, body: str, client_message_id: str, language: str | None
    ) -> Frame | bytes:
        """What a session sends for :meth:`message`: its bytes written from a
        template (:mod:`.templates`) when this class's own :meth:`message`
        builds it and the values are plain strings, else :meth:`message`'s frame."""
        if type(self).message is Dialect.message and _plain(conversation_uuid, body, client_message_id):
            if language is None:
                return _templates().message_no_language.fill(conversation_uuid, body, client_message_id)
            if type(language) is str:
                return _templates().message.fill(conversation_uuid, body, client_message_id, language)
        return self.message(conversation_uuid, body, client_message_id, language)

    def typing_wire(self, conversation_uuid: str, value: str) -> Frame | bytes:
        """:meth:`typing`, as :meth:`message_wire` is :meth:`message`."""
        if type(self).typing is Dialect.typing and _plain(conversation_uuid, value):
            return _templates().typing.fill(conversation_uuid, value)
        return self.typing(conversation_uuid, value)

    def read_wire(self, conversation_uuid: str, message_uuid: str) -> Frame | bytes:
        """:meth:`read`, as :meth:`message_wire` is :meth:`message`."""
        if type(self).read is Dialect.read and _plain(conversation_uuid, message_uuid):
            return _templates().read.fill(conversation_uuid, message_uuid)
        return self.read(conversation_uuid, message_uuid)

    def typing(self, conversation_uuid: str, value: str) -> Frame:
        return Frame(
            type=FrameType.EVENT,
            event_type=EventType.TYPING,
            conversation_uuid=conversation_uuid,
            event_typing=ConversationEventTyping(value=value),
        )

    def read(self, conversation_uuid: str, message_uuid: str) -> Frame:
        return Frame(
            type=FrameType.EVENT,
            event_type=EventType.READ_MESSAGE,
            conversation_uuid=conversation_uuid,
            event_read_message=ConversationEventReadMessage(conversation_message_uuid=message_uuid),
        )

    def close_chat(self, conversation_uuid: str) -> Frame:
        return Frame(
            type=FrameType.EVENT, event_type=EventType.CONVERSATION_CLOSED, conversation_uuid=conversation_uuid
        )

    def leave(self, conversation_uuid: str) -> Frame:
        """``participant left`` (the mock's row 11): leave the conversation."""
        return Frame(type=FrameType.EVENT, event_type=EventType.PARTICIPANT_LEFT, conversation_uuid=conversation_uuid)

    def ping(self) -> Frame:
        return Frame(type=FrameType.PING)

    # Agent frames ------------------------------------------------------------

    def engage(self, queue_uuid: str) -> Frame:
        return Frame(
            type=FrameType.EVENT,
            event_type=EventType.ENGAGE_CUSTOMER,
            event_engage_customer=ConversationWebchatQueueStatusQueueEntry(conversation_webchat_queue_uuid=queue_uuid),
        )

    def add_coupon(self, conversation_uuid: str, coupon_code: str) -> Frame:
        return Frame(
            type=FrameType.EVENT,
            event_type=EventType.ADD_COUPON,
            conversation_uuid=conversation_uuid,
            event_add_coupon=ConversationEventAddCoupon(coupon_code=coupon_code),
        )

    def add_items(self, conversation_uuid: str, items: Sequence[CartItem]) -> Frame:
        return Frame(
            type=FrameType.EVENT,
            event_type=EventType.ADD_ITEM,
            conversation_uuid=conversation_uuid,
            event_add_item=ConversationEventAddItem(items=list(items)),
        )

    # Recognising the server's frames ------------------------------------------

    @staticmethod
    def conversation_of(frame: Frame) -> str | None:
        if frame.conversation_uuid is not None:
            return frame.conversation_uuid
        summary = frame.event_new_conversation
        return summary.conversation_uuid if summary is not None else None

    def is_new_conversation(self, frame: Frame) -> bool:
        return frame.event_type is EventType.NEW_CONVERSATION or (
            frame.event_type is EventType.WEBCHAT_START_CONVERSATION and frame.event_new_conversation is not None
        )

    @staticmethod
    def resume_token(frame: Frame) -> str | None:
        extra = frame.model_extra or {}
        token = extra.get("resume_token")
        return token if isinstance(token, str) else None

    @staticmethod
    def is_error(frame: Frame) -> bool:
        return frame.error is not None

    @staticmethod
    def joined_participant_arn(frame: Frame) -> str | None:
        if frame.event_type is EventType.PARTICIPANT_JOIN and frame.event_participant_join_participant is not None:
            return frame.event_participant_join_participant.conversation_participant_arn
        return None

    @staticmethod
    def queue_position(frame: Frame) -> int | None:
        if frame.event_type is EventType.QUEUE_POSITION and frame.event_queue_position is not None:
            return frame.event_queue_position.position
        return None
