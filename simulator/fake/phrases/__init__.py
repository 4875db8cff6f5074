"""The phrasebooks, one module per language.

To add a language, write ``phrases/<code>.py`` defining ``PHRASEBOOK`` (see
:class:`~simulator.fake.phrasebook.Phrasebook`; its ``products`` must stay
aligned with :data:`simulator.fake.providers.CATALOG`) and list it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..phrasebook import Phrasebook
from . import de, en, es, fr

__all__ = ["PHRASEBOOKS"]

PHRASEBOOKS: Mapping[str, Phrasebook] = MappingProxyType(
    {book.language: book for book in (en.PHRASEBOOK, es.PHRASEBOOK, fr.PHRASEBOOK, de.PHRASEBOOK)}
)
