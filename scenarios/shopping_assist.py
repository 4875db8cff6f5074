"""Shopping assist: a customer with a cart sends its webchat context (cart id,
ucacid, storefront url), asks a coupon or product question, and the agent
pushes a coupon and cart items that the customer receives and reads.

Exercises: webchat context relay (held for the agent), add coupon, add item.
With the mock's autopilot agents start the server with a coupon/item
probability > 0 (``webchat-sim load`` does); with ``AgentUser`` agents the
agent pushes them on coupon and product topics.
"""

from __future__ import annotations

from simulator.fake import Topic
from simulator.load.sessions import CustomerSession


def run(customer: CustomerSession) -> None:
    customer.connect()
    topic = customer.rng.choice([Topic.COUPONS, Topic.PRODUCT])
    customer.start_chat(topic=topic)
    customer.send_context()
    customer.wait_for_agent()
    customer.chat(customer.rng.randint(2, 4))
    customer.goodbye()
