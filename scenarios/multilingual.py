"""Multilingual: a customer who writes Spanish, French or German
(``language_iso_code`` set accordingly) chats with an agent who answers in
the customer's language; a reply whose ``language_iso_code`` differs from the
customer's is reported as a failure.

Exercises: language propagation through queue entry, participants and
messages; non-ASCII text through the codec.
"""

from __future__ import annotations

from simulator.load.sessions import KPI, CustomerSession


def run(customer: CustomerSession) -> None:
    customer.use_language(customer.rng.choice(["es", "fr", "de"]))
    customer.connect()
    customer.start_chat()
    customer.wait_for_agent()
    for reply in customer.chat(customer.rng.randint(2, 4)):
        language = reply.message.language_iso_code if reply.message else None
        if language not in (None, customer.language):
            customer.report_failure(KPI.REPLY_LANGUAGE, f"expected {customer.language}, got {language}")
    customer.goodbye()
