"""The provider conformance kit: checks every provider's tests run against their own fake.

A provider's test suite describes how its fake is wired in a ``Rig`` (a factory for a
provider on the fake, what ``publish`` would return, what the fake holds and what it
was asked to change, how to make a deploy fail, the credentials in play), then runs
every check, for example::

    from deployer.providers import testing

    @pytest.fixture
    def rig(fake) -> testing.Rig:
        return testing.Rig(make=..., image_ref=..., inventory=..., writes=...,
                           fail_deploy=..., secrets=...)

    @pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
    def test_conformance(rig: testing.Rig, check: testing.Check) -> None:
        testing.run(check, rig)

The checks (each a function taking the rig, whose ``make`` is the provider factory):

- ``plan_changes_nothing``: ``plan`` neither writes nor changes what the fake holds, with
  or without a strategy; all at once is never refused, a refused canary is said in
  ``Plan.problems``;
- ``second_push_changes_nothing``: pushing the live version again reports no change
  and writes nothing;
- ``failed_deploy_keeps_previous``: a deploy the fake makes fail leaves the previous
  version serving;
- ``rollback_returns_to_previous``: rollback serves the version before the last push;
- ``destroy_is_scoped_and_idempotent``: destroy removes what carries the project's and
  target's labels (and project-wide resources of that project) and nothing else, and a
  second destroy removes nothing and succeeds;
- ``credentials_stay_out_of_output``: no credential appears in plans, statuses,
  deployments, routes, progress lines, error messages or deployer's log records.

A check a provider cannot pass for a reason of its platform is skipped explicitly:
``Rig(skip={"rollback_returns_to_previous": "why"})``; ``run`` skips it with that reason,
and an unknown name or an empty reason is an error, so nothing is skipped silently.
Only ``run`` needs pytest (imported when it skips).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from deployer.errors import DeployerError
from deployer.providers.protocol import plan_of
from deployer.providers.types import (
    LABEL_PROJECT,
    LABEL_TARGET,
    Deployment,
    Release,
    Status,
    Strategy,
)

PROJECT, OTHER_PROJECT = "iris", "kitother"
TARGET, OTHER_TARGET = "prod", "staging"
Labels = Mapping[str, str]


def release(seed: str, project: str = PROJECT) -> Release:
    """A release whose version derives from ``seed`` (no image is built)."""
    from deployer.image.build import Image

    image_id = "sha256:" + hashlib.sha256(f"kit-image-{seed}".encode()).hexdigest()
    model = hashlib.sha256(f"kit-model-{seed}".encode()).hexdigest()
    image = Image(f"{project}:{seed}", image_id, 1, {"dev.deployer.model.sha256": model})
    return Release(project, image, [[0, 0, 0, 0], [0, 0, 0, 0]], {"width": 4})


@dataclass
class Rig:
    """How a provider's tests wire the kit to their fake.

    - ``make(project, target)``: a provider for that target of that project, on the fake;
    - ``image_ref(release)``: what ``publish`` would return for the release's image (the
      kit deploys without publishing);
    - ``inventory()``: everything the fake holds, resource id -> its labels (tags);
    - ``writes()``: the changing requests the fake has received so far, in order;
    - ``fail_deploy(release, image_ref)``: makes the fake fail the deploy of that release;
    - ``secrets()``: the credential values in play (read after each step: some, such as
      endpoint keys, exist only once something is deployed);
    - ``skip``: check name -> why this provider cannot pass it;
    - ``timeout``: seconds ``wait`` may take; ``project_label``/``target_label``: the
      label keys the provider marks its resources with.
    """

    make: Callable[[str, str], Any]
    image_ref: Callable[[Release], str]
    inventory: Callable[[], Mapping[str, Labels]]
    writes: Callable[[], list[str]]
    fail_deploy: Callable[[Release, str], None]
    secrets: Callable[[], Iterable[str]]
    skip: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    release: Callable[[str, str], Release] = release
    project_label: str = LABEL_PROJECT
    target_label: str = LABEL_TARGET


class Notes:
    """A progress callback that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


def push(rig: Rig, provider: Any, rel: Release, progress: Notes | None = None) -> Status:
    """deploy then wait, as the orchestrator runs them; the status ``wait`` returned."""
    notes = progress if progress is not None else Notes()
    deployment = provider.deploy(rel, rig.image_ref(rel), Strategy(), notes)
    status: Status = provider.wait(deployment, rig.timeout, notes)
    return status


def _pushed(rig: Rig, provider: Any, rel: Release) -> None:
    status = push(rig, provider, rel)
    assert status.healthy and status.version == rel.version, (
        f"the rig's push of {rel.version} did not serve it: {status}"
    )


# -- the checks ---------------------------------------------------------------------------


def plan_changes_nothing(rig: Rig) -> None:
    """``plan`` reads only: before the first push, and with a version live, with or
    without a strategy (``plan_of``). All at once is never refused; what a canary plan
    refuses is said in ``problems`` (text), not raised."""
    provider = rig.make(PROJECT, TARGET)
    v1, v2 = rig.release("1", PROJECT), rig.release("2", PROJECT)
    writes, held = rig.writes(), dict(rig.inventory())
    first = provider.plan(v1)
    assert first.target == TARGET and first.changed, f"a first push changes something: {first}"
    assert plan_of(provider, v1, Strategy()).ok, "a first push all at once is refused"
    assert rig.writes() == writes, f"plan wrote: {rig.writes()[len(writes) :]}"
    assert dict(rig.inventory()) == held, "plan changed what the platform holds"
    _pushed(rig, provider, v1)
    writes, held = rig.writes(), dict(rig.inventory())
    second = provider.plan(v2)
    assert second.changed and any(v2.version in str(c) for c in second.changes), (
        f"a plan for a new version names it: {second}"
    )
    whole = plan_of(provider, v2, Strategy())
    assert whole.ok and whole.changes == second.changes, f"all at once is refused: {whole}"
    canary = plan_of(provider, v2, Strategy.parse("canary:10"))
    assert canary.changes == second.changes, "the strategy changed what plan would change"
    assert all(isinstance(p, str) and p for p in canary.problems), canary.problems
    assert rig.writes() == writes, f"plan wrote: {rig.writes()[len(writes) :]}"
    assert dict(rig.inventory()) == held, "plan changed what the platform holds"
    assert provider.status().version == v1.version


def second_push_changes_nothing(rig: Rig) -> None:
    """Pushing the live version again: ``changed`` False, no write, still serving."""
    provider = rig.make(PROJECT, TARGET)
    v1 = rig.release("1", PROJECT)
    _pushed(rig, provider, v1)
    writes, held = rig.writes(), dict(rig.inventory())
    again = rig.make(PROJECT, TARGET)  # a new process would construct it anew
    deployment = again.deploy(v1, rig.image_ref(v1), Strategy(), Notes())
    assert isinstance(deployment, Deployment)
    assert not deployment.changed, f"a second identical push reported a change: {deployment}"
    assert deployment.version == v1.version
    status = again.wait(deployment, rig.timeout, Notes())
    assert status.healthy and status.version == v1.version
    assert rig.writes() == writes, f"it wrote: {rig.writes()[len(writes) :]}"
    assert dict(rig.inventory()) == held, "it changed what the platform holds"


def failed_deploy_keeps_previous(rig: Rig) -> None:
    """A deploy that fails (the push raises or ``wait`` reports it) leaves the previous
    version serving."""
    provider = rig.make(PROJECT, TARGET)
    v1, v2 = rig.release("1", PROJECT), rig.release("2", PROJECT)
    _pushed(rig, provider, v1)
    rig.fail_deploy(v2, rig.image_ref(v2))
    try:
        status = push(rig, provider, v2)
    except DeployerError:
        pass
    else:
        assert not status.healthy, f"the failing deploy reported healthy: {status}"
    for reader in (provider, rig.make(PROJECT, TARGET)):
        now = reader.status()
        assert now.healthy and now.version == v1.version, (
            f"after a failed deploy {v1.version} should serve: {now}"
        )


def rollback_returns_to_previous(rig: Rig) -> None:
    """Two pushes, then rollback: the first version serves again."""
    provider = rig.make(PROJECT, TARGET)
    v1, v2 = rig.release("1", PROJECT), rig.release("2", PROJECT)
    _pushed(rig, provider, v1)
    _pushed(rig, provider, v2)
    back = provider.rollback(Notes())
    assert isinstance(back, Deployment)
    assert back.version == v1.version and back.previous_version == v2.version, back
    status = provider.status()
    if not status.healthy:  # rollback started it; wait as a push would
        status = provider.wait(back, rig.timeout, Notes())
    assert status.healthy and status.version == v1.version, status
    assert rig.make(PROJECT, TARGET).status().version == v1.version


def destroy_is_scoped_and_idempotent(rig: Rig) -> None:
    """Destroy removes this target's resources (and its project's project-wide ones),
    nothing of another target or project; a second destroy removes nothing."""
    mine = rig.make(PROJECT, TARGET)
    sibling = rig.make(PROJECT, OTHER_TARGET)
    stranger = rig.make(OTHER_PROJECT, TARGET)
    v1, o1 = rig.release("1", PROJECT), rig.release("1", OTHER_PROJECT)
    _pushed(rig, mine, v1)
    _pushed(rig, sibling, v1)
    _pushed(rig, stranger, o1)
    before = dict(rig.inventory())
    owned = {k for k, labels in before.items() if _owned(rig, labels, PROJECT, TARGET)}
    assert owned, f"nothing in the inventory carries {PROJECT}/{TARGET}'s labels: {before}"
    removed = mine.destroy(Notes())
    assert removed, "destroy of a deployed target removed nothing"
    after = dict(rig.inventory())
    gone = set(before) - set(after)
    assert owned <= gone, f"left behind: {sorted(owned - gone)}"
    for key in gone:
        assert _owned(rig, before[key], PROJECT, TARGET, project_wide=True), (
            f"destroy removed {key}, labelled {dict(before[key])}: not this target's"
        )
    assert mine.status().state == "absent"
    writes = rig.writes()
    assert mine.destroy(Notes()) == [], "a second destroy removed something"
    assert rig.make(PROJECT, TARGET).destroy(Notes()) == []
    assert rig.writes() == writes and dict(rig.inventory()) == after
    for other, version in ((sibling, v1.version), (stranger, o1.version)):
        status = other.status()
        assert status.healthy and status.version == version, status


def credentials_stay_out_of_output(rig: Rig) -> None:
    """No credential in anything a provider says: plans, deployments, statuses, routes,
    progress, errors (message and hint), deployer's log records."""
    secrets: set[str] = set()
    said: list[str] = []
    notes = Notes()
    provider = rig.make(PROJECT, TARGET)
    v1, v2, v3 = (rig.release(n, PROJECT) for n in ("1", "2", "3"))

    def step(action: Callable[[], Any]) -> Any:
        try:
            result = action()
        except DeployerError as exc:
            said.extend([exc.message, exc.hint or "", str(exc)])
            result = None
        said.append(repr(result))
        if hasattr(result, "to_dict"):
            said.append(repr(result.to_dict()))
        secrets.update(s for s in rig.secrets() if s)
        return result

    with _deployer_logs() as records:
        step(lambda: provider.plan(v1))
        step(lambda: push(rig, provider, v1, notes))
        step(lambda: push(rig, provider, v2, notes))
        step(provider.status)
        step(provider.route)
        step(lambda: provider.plan(v3))
        rig.fail_deploy(v3, rig.image_ref(v3))
        step(lambda: push(rig, provider, v3, notes))
        step(lambda: provider.rollback(notes))
        step(lambda: provider.invoke(b"[[0, 0, 0, 0]]", "application/json"))
        step(lambda: provider.destroy(notes))
        step(provider.status)
        step(lambda: provider.rollback(notes))  # an error: nothing deployed
    assert secrets, "the rig names no credential to look for"
    text = "\n".join([*said, *notes.lines, *records])
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"credentials in the provider's output: {[s[:4] + '...' for s in leaked]}"


def _owned(
    rig: Rig, labels: Labels, project: str, target: str, *, project_wide: bool = False
) -> bool:
    if labels.get(rig.project_label) != project:
        return False
    marked = labels.get(rig.target_label)
    return marked == target or (project_wide and marked is None)


@contextmanager
def _deployer_logs() -> Iterator[list[str]]:
    """Every record logged under ``deployer*`` loggers (providers' too), formatted."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("deployer"):
                records.append(f"{record.getMessage()} {record.__dict__}")

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.DEBUG) if level else logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# -- running them -------------------------------------------------------------------------

Check = Callable[[Rig], None]
CHECKS: tuple[Check, ...] = (
    plan_changes_nothing,
    second_push_changes_nothing,
    failed_deploy_keeps_previous,
    rollback_returns_to_previous,
    destroy_is_scoped_and_idempotent,
    credentials_stay_out_of_output,
)
NAMES = tuple(check.__name__ for check in CHECKS)


def check_id(check: Check) -> str:
    """The check's name (a pytest id)."""
    return check.__name__


def run(check: Check, rig: Rig) -> None:
    """Run ``check`` against ``rig``, or skip it with the reason the rig gives."""
    unknown = sorted(set(rig.skip) - set(NAMES))
    if unknown:
        raise ValueError(f"Rig.skip names unknown checks {unknown}; the checks: {NAMES}")
    if check.__name__ in rig.skip:
        reason = rig.skip[check.__name__].strip()
        if not reason:
            raise ValueError(f"Rig.skip[{check.__name__!r}] needs a reason")
        import pytest

        pytest.skip(f"{check.__name__}: {reason}")
    check(rig)
