"""How the runner, the distributed mode and ``demo`` start Locust as a child
process: one place for the interpreter, ``-m locust`` and the locustfile.
Imports nothing of Locust or gevent (``demo`` runs it from the mock's process)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["PACKAGED_LOCUSTFILE", "locust_invocation"]

PACKAGED_LOCUSTFILE = Path(__file__).with_name("locustfile.py")
"""simulator/load/locustfile.py: CustomerUser and AgentUser."""


def locust_invocation(locustfile: Path = PACKAGED_LOCUSTFILE) -> list[str]:
    """``python -m locust -f LOCUSTFILE``, to which each caller adds its options."""
    return [sys.executable, "-m", "locust", "-f", str(locustfile)]
