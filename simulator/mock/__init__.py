"""The mock webchat server wing: the sans-I/O engine (queues, routing,
conversations, statistics), its accept rules, the autopilot agents, and the
asyncio/websockets shell that serves them. Never imports gevent or Locust."""
