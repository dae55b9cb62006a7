"""Fault injection for the local target: ``DEPLOYER_FAULT=<step>`` makes the process kill
itself (SIGKILL, as a crash or an OOM kill would) when it reaches that step boundary.

Only the local provider reads it. tests/adversarial/test_local_crashes.py kills
``deployer`` at every boundary listed here, then checks that ``status`` tells the truth and
that the next command converges.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "DEPLOYER_FAULT"

PUSH_STEPS = (
    "push:front-ready",  # the network and the front are up
    "push:model-started",  # the new model container is running, not yet healthy
    "push:model-healthy",  # ... healthy, the front not switched yet
    "push:switched",  # the front forwards to the new container
    "push:old-stopped",  # the version it replaced is stopped (kept for rollback)
    "push:pruned",  # every other model container is removed
)
CANARY_STEPS = (  # a canary:N or linear:N push, after push:model-healthy
    "push:canary",  # the front sends the canary its share; the bake has not begun
)
ROLLBACK_STEPS = (
    "rollback:previous-started",
    "rollback:model-healthy",
    "rollback:switched",
    "rollback:old-stopped",
    "rollback:pruned",
)
DESTROY_STEPS = (
    "destroy:front-removed",
    "destroy:model-removed",  # after the first model container
    "destroy:volume-removed",
    "destroy:network-removed",
)
STEPS = (*PUSH_STEPS, *CANARY_STEPS, *ROLLBACK_STEPS, *DESTROY_STEPS)


def boundary(step: str) -> None:
    """Die here, as ``kill -9`` would, when ``DEPLOYER_FAULT`` names this step."""
    if os.environ.get(VARIABLE) == step:
        os.kill(os.getpid(), signal.SIGKILL)
