"""The dialect: how a load-generator session talks to one kind of backend.

Everything that depends on *which* server the sessions drive lives here: the
URL layout, how a participant identifies itself, which frames start, route,
answer and close a chat and how to recognise the server's answers. Sessions
and scenarios only use these methods, so adapting the load generator to
another backend means subclassing :class:`Dialect` (see README, "Pointing it
at another backend") and passing the subclass to the users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

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

__all__ = ["Dialect"]


class Dialect:
    """This project's dialect (docs/protocol.md part B) in development mode."""

    #: websocket path on the host given with ``--host``
    path = "/ws"
    #: codec context checks on received frames (turn off for laxer backends)
    strict_frames = True

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

    def agent_url(self, host: str, *, name: str, queues: Sequence[str]) -> str:
        return self._url(host, {"role": "agent", "name": name, "queues": ",".join(queues)})

    def headers(self, role: str) -> dict[str, str]:
        """Extra HTTP headers of the opening handshake (e.g. ``Authorization``)."""
        return {}

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
