"""The load generator wing: the gevent websocket transport, the dialect, the
chat sessions and their KPI meter, Locust users, scenario loading and the
runner behind ``webchat-sim load``. Never imports the mock's asyncio shell
(the runner starts the mock as a separate process)."""
