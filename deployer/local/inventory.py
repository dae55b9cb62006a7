"""What the local target really is, read from the platform: Docker's containers and their
labels, and the upstream the front actually forwards to. Nothing here is remembered
between commands, so a crash at any point cannot make it lie.

- serving: the model container the front forwards to (its health route names it); when
  the front does not answer, the newest running model container stands in for it.
- previous: the version the serving container replaced (label ``deployer-previous``, set
  when it was created), else the newest other container that has served before (only
  a container the front was switched to gets a restart policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from deployer.local.loopback import client as loopback_client

LABEL_PROJECT = "deployer-project"
LABEL_TARGET = "deployer-target"
LABEL_ROLE = "deployer-role"
LABEL_VERSION = "deployer-version"
LABEL_PREVIOUS = "deployer-previous"
FRONT_HEALTH = "/-/front/health"
SERVED_POLICY = "unless-stopped"


def version_of(container: Any | None) -> str | None:
    return container.labels.get(LABEL_VERSION) if container is not None else None


def has_served(container: Any) -> bool:
    policy = container.attrs.get("HostConfig", {}).get("RestartPolicy") or {}
    return bool(policy.get("Name") == SERVED_POLICY)


def read_upstream(front_url: str) -> tuple[bool, str | None]:
    """(whether the front answers, the model container name it forwards to)."""
    answers, upstream, _canary = read_front(front_url)
    return answers, upstream


def read_front(front_url: str) -> tuple[bool, str | None, tuple[str, int] | None]:
    """(whether the front answers, the container it forwards to, (the canary's container,
    its percent) while a canary runs)."""
    try:
        answer = loopback_client().get(front_url + FRONT_HEALTH, timeout=2.0)
        document = answer.json() if answer.status_code == 200 else {}
        upstream = document.get("upstream")
        canary = document.get("canary")
    except (httpx.HTTPError, ValueError, AttributeError):
        return False, None, None
    if answer.status_code != 200:
        return False, None, None
    split = None
    if isinstance(canary, dict) and canary.get("upstream"):
        split = (_container(str(canary["upstream"])), int(canary.get("percent") or 0))
    if not upstream:
        return True, None, None
    return True, _container(str(upstream)), split


def _container(url: str) -> str:
    return url.split("://", 1)[-1].rsplit(":", 1)[0]


@dataclass
class Snapshot:
    """The target's containers and the front's upstream, read once."""

    front: Any | None
    models: list[Any]
    front_answers: bool
    upstream: str | None  # the container name the front forwards to
    canary: tuple[str, int] | None = None  # (container, percent) while a canary runs

    def named(self, name: str | None) -> Any | None:
        return next((c for c in self.models if c.name == name), None)

    def for_version(self, version: str | None) -> Any | None:
        return next((c for c in self.models if version_of(c) == version), None)

    @property
    def front_running(self) -> bool:
        return self.front is not None and self.front.status == "running"

    def serving(self) -> Any | None:
        """The model container the front forwards to (or stands in for it, see above)."""
        if self.front_answers and self.upstream:
            return self.named(self.upstream)
        running = [c for c in self.models if c.status == "running"]
        running.sort(key=lambda c: (has_served(c), c.attrs["Created"]), reverse=True)
        return running[0] if running else None

    def previous(self, serving: Any | None) -> Any | None:
        """The container to keep (stopped) for ``rollback`` while ``serving`` serves."""
        if serving is None:
            return None
        labelled = serving.labels.get(LABEL_PREVIOUS)
        if labelled and labelled != version_of(serving):
            found = self.for_version(labelled)
            if found is not None:
                return found
        others = [c for c in self.models if c.id != serving.id and has_served(c)]
        others.sort(key=lambda c: c.attrs["Created"], reverse=True)
        return others[0] if others else None
