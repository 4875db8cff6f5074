"""What participants send each other (part of the engine).

docs/protocol.md, section 3, rows 4-9 and 13: chat messages (stored,
stamped, acknowledged to the sender by its own copy), typing, read receipts,
an agent's coupons and cart items, the customer's page context and rrweb
recording, and ``ping``. Every handler but ``ping`` gets the conversation the
frame names and the sender's membership in it, already checked against
:data:`~.rules.RULES` by ``Engine.receive``; payloads the server relays are
rebuilt from the fields it knows, and every field the sender names is
checked against :data:`~.rules.LIMITS` first (``field_too_long``). What a
handler holds (messages, recordings) goes on the byte account, which
:class:`~.retention.Retention` keeps within its budget.

:meth:`RelayMixin._on_message` is the hot path of a chat (and of the relay
benchmark): keep it free of extra calls and allocations.
"""

from __future__ import annotations

from typing import Any

from ..protocol import (
    CartItem,
    ConversationEventAddCoupon,
    ConversationEventAddItem,
    ConversationEventReadMessage,
    ConversationEventRRWeb,
    ConversationEventTyping,
    ConversationEventWebchatContext,
    ErrorCode,
    EventType,
    Frame,
    epoch_ms,
)
from .base import Delivery, EngineBase
from .conversation import Client, ConnId, Conversation, Member, Role, State, cached_dts
from .journal import CLIENT, CONTEXT, MEMBER, MSG, READ, RRWEB
from .rules import LIMITS, Refused, check_length, clip
from .wire import prepare, summary_bytes, summary_frame

_ID_LIMIT = LIMITS.identifier
_LANGUAGE_LIMIT = LIMITS.language
_URL_LIMIT = LIMITS.url
_NEW_MESSAGE = EventType.NEW_MESSAGE
_PARTICIPANT_UPDATE = EventType.PARTICIPANT_UPDATE

__all__ = ["RelayMixin"]


class RelayMixin(EngineBase):
    """Rows 4-9 and 13."""

    def _on_ping(self, client: Client, frame: Frame, now: float) -> list[Delivery]:
        """Row 13: ``ping`` -> ``{"type": "ping"}`` to the sender."""
        return [Delivery(self._to(client), self._ping)]

    def _on_message(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 4: store, stamp and deliver a chat message to every participant.
        A ``client_message_id`` the sender already used in this conversation is
        a resend: its stored message goes back to the sender alone."""
        cfg = self.config
        client = member.client
        message = frame.message
        if message is None:
            raise Refused(ErrorCode.MISSING_FIELD, 'message: required when type is "message"')
        client_id = message.client_message_id
        if client_id is not None:
            if len(client_id) > _ID_LIMIT:
                check_length("message.client_message_id", client_id, _ID_LIMIT)
            if (earlier := conv.by_client_id.get((member, client_id))) is not None:
                return [Delivery(self._to(client), earlier.frame)]  # idempotent: the stored one again
        body, media = message.body, message.media_urls
        if not body and not media:
            reason = "message.body: empty, and no message.media_urls"
            raise Refused(ErrorCode.EMPTY_MESSAGE, reason, object_id=client_id)
        if body is not None and len(body) > cfg.max_body_length:
            reason = f"message.body: {len(body)} characters, limit {cfg.max_body_length}"
            raise Refused(ErrorCode.MESSAGE_TOO_LONG, reason, object_id=client_id)
        if media is not None:
            if len(media) > cfg.max_media_urls:
                reason = f"message.media_urls: {len(media)} urls, limit {cfg.max_media_urls}"
                raise Refused(ErrorCode.TOO_MANY_MEDIA_URLS, reason, object_id=client_id)
            for index, url in enumerate(media):
                check_length(f"message.media_urls[{index}]", url, _URL_LIMIT, object_id=client_id)
        if conv.dropped + len(conv.messages) >= cfg.max_messages_per_conversation:
            reason = f"the conversation has reached {cfg.max_messages_per_conversation} messages"
            raise Refused(ErrorCode.CONVERSATION_FULL, reason, object_id=client_id)
        language = message.language_iso_code
        if language is not None and len(language) > _LANGUAGE_LIMIT:
            check_length("message.language_iso_code", language, _LANGUAGE_LIMIT, object_id=client_id)
        language_changed = language is not None and language != member.language
        if language_changed:
            member.language = client.language = language
        stored = conv.store(
            member,
            message_uuid=self._uuid(),
            now_ms=epoch_ms(now),
            body=body,
            client_message_id=client_id,
            media_urls=media,
        )
        self._retention.wrote(conv)
        if (journal := self.journal) is not None:
            journal.append((MSG, stored))
            if language_changed:
                journal += ((MEMBER, conv, member), (CLIENT, client))
        # The frames of the chat path are written as bytes, not models (:mod:`.wire`): the message
        # once for the sender's copy and every other participant, the summary once for the agents.
        everyone: list[ConnId] = []
        agents: list[ConnId] = []
        for m in conv.members.values():
            if m.left_ms is None and (conn := m.client.conn) is not None:
                everyone.append(conn)
                if m.client.role is Role.AGENT:
                    agents.append(conn)
        if conv.wire is None:
            prepare(conv)  # its members' parts are made below: on the account with the conversation's
        out = [Delivery(tuple(everyone), stored.frame)] if everyone else []
        if agents or language_changed:
            summary = summary_bytes(conv, closed=conv.state is State.CLOSED)
            if agents:
                out.append(Delivery(tuple(agents), summary_frame(conv, _NEW_MESSAGE, "event_new_message", summary)))
            if language_changed and everyone:
                update = summary_frame(conv, _PARTICIPANT_UPDATE, "event_participant_update", summary)
                out.append(Delivery(tuple(everyone), update))
        return out

    def _on_typing(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 5: relay typing to the other participants, stamped with the author."""
        client = member.client
        value = frame.event_typing.value if frame.event_typing is not None else None
        check_length("event_typing.value", value, LIMITS.text)
        typing = ConversationEventTyping(
            author_conversation_participant_arn=client.arn,
            author_conversation_participant_name=client.name,
            value=value,
        )
        out: list[Delivery] = []
        others = (m.client for m in conv.present() if m is not member)
        self._send(out, others, conv.event(EventType.TYPING, event_typing=typing))
        return out

    def _on_read(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 6: a read receipt; the author's copy gets transport status ``read``."""
        request = frame.event_read_message
        message_uuid = request.conversation_message_uuid if request is not None else None
        if message_uuid is None:
            raise Refused(ErrorCode.MISSING_FIELD, "event_read_message.conversation_message_uuid: required")
        stored = conv.by_uuid.get(message_uuid)
        if stored is None:
            reason = f"no message {clip(message_uuid)} in this conversation"
            raise Refused(ErrorCode.MESSAGE_NOT_FOUND, reason, object_id=message_uuid[:200])
        if not conv.mark_read(stored, member, epoch_ms(now)):
            return []  # own message, or read before: nothing changes
        if self.journal is not None:
            self.journal.append((READ, conv, stored, member))
        receipt = ConversationEventReadMessage(
            conversation_message_uuid=message_uuid, message_dts=cached_dts(stored.epoch), message_epoch=stored.epoch
        )
        out: list[Delivery] = []
        others = (m.client for m in conv.present() if m is not member)
        self._send(out, others, conv.event(EventType.READ_MESSAGE, event_read_message=receipt))
        if stored.author.present:
            updated = conv.event(EventType.UPDATED_MESSAGE, event_updated_message=stored.model)
            self._send(out, (stored.author.client,), updated)
        return out

    def _on_add_coupon(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 7: an agent offers a coupon to the customer."""
        code = frame.event_add_coupon.coupon_code if frame.event_add_coupon is not None else None
        if not code:
            raise Refused(ErrorCode.MISSING_FIELD, "event_add_coupon.coupon_code: required")
        check_length("event_add_coupon.coupon_code", code, LIMITS.code)
        agent = member.client
        payload = ConversationEventAddCoupon(agent_arn=agent.arn, agent_name=agent.name, coupon_code=code)
        return self._to_customers(conv, conv.event(EventType.ADD_COUPON, event_add_coupon=payload))

    def _on_add_item(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 7: an agent adds items to the customer's cart."""
        items = frame.event_add_item.items if frame.event_add_item is not None else None
        if not items:
            raise Refused(ErrorCode.MISSING_FIELD, "event_add_item.items: required, at least one item")
        _check_entries("event_add_item.items", items)
        for index, item in enumerate(items):
            _check_item(item, f"event_add_item.items[{index}]")
        agent = member.client
        payload = ConversationEventAddItem(agent_arn=agent.arn, agent_name=agent.name, items=items)
        return self._to_customers(conv, conv.event(EventType.ADD_ITEM, event_add_item=payload))

    def _on_webchat_context(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 8: the customer's page context, to agents now and to agents who join later."""
        context = frame.event_webchat_context
        if context is None:
            raise Refused(ErrorCode.MISSING_FIELD, "event_webchat_context: required")
        check_length("event_webchat_context.url", context.url, _URL_LIMIT)
        check_length("event_webchat_context.cart_id", context.cart_id, _ID_LIMIT)
        check_length("event_webchat_context.ucacid", context.ucacid, _ID_LIMIT)
        conv.context = ConversationEventWebchatContext(cart_id=context.cart_id, ucacid=context.ucacid, url=context.url)
        if self.journal is not None:
            self.journal.append((CONTEXT, conv))
        out: list[Delivery] = []
        relayed = conv.event(EventType.WEBCHAT_CONTEXT, event_webchat_context=conv.context)
        self._send(out, self._agents_in(conv), relayed)
        return out

    def _on_rrweb(self, conv: Conversation, member: Member, frame: Frame, now: float) -> list[Delivery]:
        """Row 9: verify an rrweb chunk's hashes, then relay it to the agents."""
        cfg = self.config
        part = frame.event_rrweb
        if part is None:
            raise Refused(ErrorCode.MISSING_FIELD, "event_rrweb: required")
        total_sha256 = part.data_total_sha256
        if total_sha256 is not None and len(total_sha256) > LIMITS.digest:
            index = str(part.event_index) if part.event_index is not None else None
            length, limit = len(total_sha256), LIMITS.digest
            reason = f"event_rrweb.data_total_sha256: {length} characters, limit {limit} (a hex SHA-256)"
            raise Refused(ErrorCode.INVALID_RRWEB, reason, object_id=index)
        refusal = conv.rrweb.check(part, max_parts=cfg.max_rrweb_parts, max_bytes=cfg.max_rrweb_bytes)
        if refusal is not None:
            index = str(part.event_index) if part.event_index is not None else None
            raise Refused(refusal.code, refusal.reason, object_id=index)
        relayed = conv.event(
            EventType.RRWEB,
            event_rrweb=ConversationEventRRWeb(
                data=part.data,
                data_part=part.data_part,
                data_sha256=part.data_sha256,
                data_total_parts=part.data_total_parts,
                data_total_sha256=part.data_total_sha256,
                event_index=part.event_index,
                type=part.type,
            ),
        )
        conv.hold_rrweb(part, relayed, limit=cfg.rrweb_hold_bytes)
        self._retention.wrote(conv)
        if self.journal is not None:
            self.journal.append((RRWEB, conv, relayed))
        out: list[Delivery] = []
        self._send(out, self._agents_in(conv), relayed)
        return out


# ---------------------------------------------------------------------------
# Cart items: relayed as received, so every string and list in them is checked


def _check_entries(path: str, entries: list[Any]) -> None:
    if len(entries) > LIMITS.entries:
        raise Refused(ErrorCode.FIELD_TOO_LONG, f"{path}: {len(entries)} entries, limit {LIMITS.entries}")


def _check_item(item: CartItem, path: str) -> None:
    """Every string of a cart item (its extra properties included) within its
    limit: ``item_id`` a code, ``*_url`` a url, anything else free text;
    every list within ``LIMITS.entries``."""
    _check_value(item.model_dump(exclude_none=True), path, "")


def _check_value(value: Any, path: str, key: str) -> None:
    if isinstance(value, str):
        limit = LIMITS.code if key == "item_id" else _URL_LIMIT if key.endswith("_url") else LIMITS.text
        check_length(path, value, limit)
    elif isinstance(value, list):
        _check_entries(path, value)
        for index, entry in enumerate(value):
            _check_value(entry, f"{path}[{index}]", key)
    elif isinstance(value, dict):
        for name, entry in value.items():
            check_length(f"{path} (a key)", name, LIMITS.name)
            _check_value(entry, f"{path}.{name}", name)
