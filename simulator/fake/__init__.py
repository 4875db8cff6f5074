"""Fake chat data: personas, support lines in several languages, cart items,
webchat context and rrweb recordings, all seedable per instance.

Use :class:`ChatFaker`; the Faker providers it registers
(:class:`ChatTextProvider`, :class:`ShopProvider`, :class:`RRWebProvider`)
and the phrasebooks are exported for those who build their own ``Faker``.
"""

from __future__ import annotations

from .chat import LANGUAGES, ChatFaker, Persona, parse_languages
from .phrasebook import Phrasebook, Topic, normalize
from .phrases import PHRASEBOOKS
from .providers import CATALOG, ChatTextProvider, ShopProvider, format_money
from .rrweb import RRWebProvider, join_recording, sha256_hex, split_recording

__all__ = [
    "CATALOG",
    "LANGUAGES",
    "PHRASEBOOKS",
    "ChatFaker",
    "ChatTextProvider",
    "Persona",
    "Phrasebook",
    "RRWebProvider",
    "ShopProvider",
    "Topic",
    "format_money",
    "join_recording",
    "normalize",
    "parse_languages",
    "sha256_hex",
    "split_recording",
]
