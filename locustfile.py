"""What ``locust -f locustfile.py`` loads: the packaged locustfile,
:mod:`simulator.load.locustfile` (its docstring is this one)."""

from __future__ import annotations

import simulator.load.locustfile as _packaged
from simulator.load.locustfile import AgentUser, CustomerUser

__doc__ = _packaged.__doc__
__all__ = ["AgentUser", "CustomerUser"]
