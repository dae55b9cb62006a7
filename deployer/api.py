"""The public Python API: what release scripts import. The CLI is a thin layer over this.

from deployer import Project
project = Project.load("deployer.yaml")
report = project.validate()
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from deployer.image.build import Image, Progress
    from deployer.image.conformance import CheckReport
    from deployer.orchestrate import Event, Policy, PushResult
    from deployer.providers import Deployment, Invocation, Plan, Provider, Release, Status
from deployer.flavors import LoadedModel, detect_flavor, load_model
from deployer.lockfile import Lock, sha256_of
from deployer.project import DEFAULT_FILE, ProjectConfig, load_config
from deployer.serving.settings import ServingSettings


@dataclass(frozen=True)
class ValidationReport:
    """What ``validate`` found: the resolved flavour, the model's hash and signature."""

    project: str
    file: str
    flavor: str
    model_path: str | None
    model_sha256: str | None
    signature: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Project:
    """A loaded, validated deployer.yaml and the model it names."""

    def __init__(self, config: ProjectConfig, file: Path) -> None:
        self.config = config
        self.file = file
        self.root = file.resolve().parent

    @classmethod
    def load(cls, path: str | Path = DEFAULT_FILE) -> Project:
        """Read and validate ``path``; raises ConfigError naming each bad field."""
        file = Path(path)
        return cls(load_config(file), file)

    @classmethod
    def init(
        cls,
        model: str | Path,
        path: str | Path = DEFAULT_FILE,
        *,
        name: str | None = None,
        flavor: str | None = None,
        predictor: str | None = None,
        force: bool = False,
    ) -> Project:
        """Write a commented deployer.yaml for ``model`` (and deployer.lock), then load it."""
        from deployer.scaffold import render_project_file

        file = Path(path)
        if file.exists() and not force:
            raise UsageError(f"{file} already exists", hint="pass --force to overwrite it")
        text = render_project_file(
            Path(model), file.resolve().parent, name=name, flavor=flavor, predictor=predictor
        )
        file.write_text(text, encoding="utf-8")
        project = cls.load(file)
        project.lock()
        return project

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model_path(self) -> Path | None:
        path = self.config.model.path
        return (self.root / path) if path else None

    @cached_property
    def flavor(self) -> str:
        """The configured flavour, or the one detected from the model file."""
        model = self.config.model
        if model.flavor:
            return model.flavor
        detected = detect_flavor(str(self.model_path))
        if detected is None:
            raise ConfigError(
                str(self.file),
                [f"model.flavor: cannot tell the flavour of {model.path}; set it explicitly"],
            )
        return detected

    @property
    def flavor_options(self) -> dict[str, Any]:
        """Options passed to the flavour's loader (paths resolved against the project)."""
        model = self.config.model
        options: dict[str, Any] = {
            k: v for k, v in model.signature.model_dump().items() if v is not None
        }
        if model.predictor:
            options["predictor"] = model.predictor
            options["code_paths"] = [str(self.code_folder(c)) for c in model.code or (".",)]
        return options

    def code_folder(self, entry: str) -> Path:
        """The folder a ``model.code`` entry puts on sys.path: itself, or a file's folder."""
        path = self.root / entry
        return path.parent if path.is_file() else path

    def model_sha256(self) -> str | None:
        path = self.model_path
        if path is None:
            return None
        if not path.exists():
            raise ConfigError(str(self.file), [f"model.path: {path} does not exist"])
        return sha256_of(path)

    def artifact_sha256(self) -> str:
        """sha256 of what the image serves: the model file, or a custom predictor's code."""
        sha = self.model_sha256()
        if sha:
            return sha
        code = self.config.model.code or (".",)
        return sha256_of(self.root / code[0])

    def load_model(self) -> LoadedModel:
        """Load the model in this process (what the server does at start-up)."""
        path = self.model_path
        if path is not None and not path.exists():
            raise ConfigError(str(self.file), [f"model.path: {path} does not exist"])
        return load_model(self.flavor, str(path) if path else None, self.flavor_options)

    def validate(self, *, load: bool = True) -> ValidationReport:
        """Check the model file exists (and loads, unless ``load`` is False)."""
        sha256 = self.model_sha256()
        warnings: list[str] = []
        lock = Lock.read(self.root)
        if lock and sha256 and lock.model_sha256 != sha256:
            warnings.append(
                "the model file changed since deployer.lock was written; run `deployer lock`"
            )
        signature = None
        if load:
            loaded = self.load_model().signature
            method = self.config.model.method
            if method and method not in loaded.methods:
                raise ConfigError(
                    str(self.file),
                    [
                        f"model.method: {method!r} is not an output of this model; "
                        f"expected one of {', '.join(loaded.methods)}"
                    ],
                )
            signature = loaded.to_dict()
        return ValidationReport(
            project=self.name,
            file=str(self.file),
            flavor=self.flavor,
            model_path=str(self.model_path) if self.model_path else None,
            model_sha256=sha256,
            signature=signature,
            warnings=warnings,
        )

    def lock(self) -> Path:
        """Write deployer.lock: the model's sha256, flavour and signature."""
        model = self.load_model()
        return Lock(
            model_path=self.config.model.path or "",
            model_sha256=self.model_sha256() or "",
            flavor=self.flavor,
            signature=model.signature.to_dict(),
        ).write(self.root)

    def serving_settings(
        self, *, host: str = "127.0.0.1", port: int | None = None, workers: int | None = None
    ) -> ServingSettings:
        """The model server's settings for this project."""
        serving = self.config.serving
        model = self.config.model
        batching = {"auto": None, "on": True, "off": False}[serving.batching.enabled]
        sha = self.model_sha256()
        return ServingSettings(
            model_name=self.name,
            model_version=model.version or (sha[:12] if sha else "1"),
            flavor=self.flavor,
            model_path=str(self.model_path) if self.model_path else None,
            flavor_options=self.flavor_options,
            default_method=model.method,
            host=host,
            port=port or serving.port,
            workers=workers or serving.workers,
            max_body_bytes=int(serving.max_body_mb * 1024 * 1024),
            batching=batching,
            max_batch_size=serving.batching.max_batch_size,
            max_batch_wait_ms=serving.batching.max_wait_ms,
            access_log=serving.access_log,
        )

    def serve(
        self, *, host: str = "127.0.0.1", port: int | None = None, workers: int | None = None
    ) -> None:
        """Run the model server in this process until interrupted (no Docker)."""
        from deployer.serving.server import run

        settings = self.serving_settings(host=host, port=port, workers=workers)
        run(settings, port=port)

    def image_ref(self) -> str:
        """The tag ``build`` gives the image: REPOSITORY:MODEL_SHA12."""
        repository = self.config.image.repository or self.name
        return f"{repository}:{self.artifact_sha256()[:12]}"

    def build(
        self,
        *,
        platform: str | None = None,
        tag: str | None = None,
        progress: Progress | None = None,
        refresh_wheels: bool = False,
        no_cache: bool = False,
    ) -> Image:
        """Build the serving image with the local Docker engine and return it."""
        import tempfile

        from deployer.image import context, wheelhouse
        from deployer.image.build import docker_build, ensure_base_image
        from deployer.image.engine import docker_client

        say = progress or (lambda _line: None)
        image_config = self.config.image
        platform = platform or image_config.platform
        self.load_model()  # fail before the slow part if the model does not load here
        client = docker_client()
        requirements = wheelhouse.image_requirements(self.flavor, image_config.requirements)
        say(
            f"resolving {len(requirements)} requirements for {platform}, "
            f"Python {image_config.python}"
        )
        wheels = wheelhouse.download(
            requirements, platform, image_config.python, refresh=refresh_wheels
        )
        ensure_base_image(client, context.base_image(self), say)
        with tempfile.TemporaryDirectory(prefix="deployer-build-") as folder:
            build_context = context.assemble(self, wheels, Path(folder), self.artifact_sha256())
            return docker_build(
                client, str(build_context.path), tag or self.image_ref(), platform, say, no_cache
            )

    def check(self, image: str | None = None) -> CheckReport:
        """Run the image and prove every serving contract (see deployer.image.conformance)."""
        from deployer.image.conformance import check_image
        from deployer.image.engine import docker_client, require_image

        client = docker_client()
        ref = image or self.image_ref()
        require_image(client, ref)
        return check_image(client, ref, self.name)

    # -- targets -----------------------------------------------------------------------

    def providers(self, names: list[str] | None = None) -> dict[str, Provider]:
        """Provider instances for the named targets (all targets when ``names`` is None)."""
        from deployer.image.context import base_image
        from deployer.providers import ProjectInfo, Target, provider_class

        targets = self.config.targets
        chosen = list(targets) if names is None else names
        unknown = [n for n in chosen if n not in targets]
        if unknown:
            known = ", ".join(targets) or "none"
            raise UsageError(
                f"no target {unknown[0]!r} in {self.file} (targets: {known})",
                hint="add it under 'targets:' in deployer.yaml",
            )
        if not chosen:
            raise UsageError(f"{self.file} defines no targets", hint="add one under 'targets:'")
        image = self.config.image
        info = ProjectInfo(self.name, base_image(self), image.platform, image.python)
        result: dict[str, Provider] = {}
        for name in chosen:
            config = targets[name]
            target = Target(name, config.provider, config.model_dump())
            result[name] = provider_class(config.provider)(target, info)
        return result

    def release(self, image: Image) -> Release:
        """The release of ``image``, with a two-row sample shaped like the input for smoke tests."""
        from deployer.providers import Release

        signature = self.load_model().signature
        zero: Any = "0" if signature.datatype == "BYTES" else 0
        sample = [[zero] * (signature.width or 1) for _ in range(2)]
        return Release(self.name, image, sample, signature.to_dict())

    def push(
        self,
        to: list[str],
        *,
        strategy: str = "all-at-once",
        bake_seconds: float = 0.0,
        on_failure: Policy = "rollback",
        dry_run: bool = False,
        timeout: float = 1800.0,
        progress: Progress | None = None,
        events: Event | None = None,
        journal_dir: str | Path | None = ".deployer/journal",
        router_file: str | Path | None = "router.yaml",
    ) -> PushResult:
        """Build once, then deploy to every target in ``to`` in parallel.

        Each target is published, deployed with ``strategy`` (``all-at-once``,
        ``canary:N``, ``linear:N``; ``bake_seconds`` between steps), waited for and
        smoke-tested. ``on_failure`` is ``rollback`` (every changed target goes back) or
        ``keep`` (the release is degraded). The journal is also written as JSON under
        ``journal_dir`` (relative to the project; None to skip). When every target
        succeeded, ``router_file`` (relative to the project; None to skip) is updated with
        the pushed targets' backends, keeping the other backends and hand edits.
        """
        import time

        from deployer.orchestrate import POLICIES, Journal, PushResult, plan_targets, push_all
        from deployer.providers import Strategy

        if on_failure not in POLICIES:
            raise UsageError(f"unknown --on-failure {on_failure!r}; expected rollback or keep")
        parsed = Strategy.parse(strategy, bake_seconds)
        providers = self.providers(to)
        started = time.monotonic()
        image = self.build(progress=progress)
        release = self.release(image)
        base = PushResult(self.name, release.version, image.to_dict(), [], on_failure, str(parsed))
        if dry_run:
            base.dry_run = True
            base.plans = [p.to_dict() for p in plan_targets(providers, release)]
            return base
        journal = Journal(events)
        base.targets = push_all(providers, release, parsed, on_failure, timeout, journal)
        base.journal = journal.entries
        base.seconds = round(time.monotonic() - started, 2)
        if journal_dir is not None:
            self._write_journal(base, Path(journal_dir))
        if router_file is not None and base.ok:
            base.router_manifest = str(self._update_router(providers, self.root / router_file))
        return base

    def _update_router(self, pushed: dict[str, Provider], file: Path) -> Path:
        """router.yaml after a successful push: the pushed targets' routes plus the
        backends it already listed (their weights, tiers and health kept)."""
        from deployer.providers import Backend
        from deployer.router import manifest

        existing = manifest.load(file) if file.exists() else None
        kept = [
            Backend(b.name, b.provider, b.url, b.auth.kind, b.region)
            for b in (existing.backends if existing else [])
            if b.name not in pushed
        ]
        routes = [provider.route() for provider in pushed.values()]
        options = {name: self.config.targets[name].model_dump() for name in pushed}
        updated = manifest.from_backends(self.name, [*kept, *routes], existing, options=options)
        return manifest.write(updated, file)

    def _write_journal(self, result: PushResult, folder: Path) -> Path:
        import json
        import time

        target = self.root / folder
        target.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = target / f"{stamp}-{result.version}.json"
        path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return path

    def plan(self, to: list[str], *, progress: Progress | None = None) -> list[Plan]:
        """What a push would change on each target; changes nothing there."""
        from deployer.orchestrate import plan_targets

        providers = self.providers(to)
        return plan_targets(providers, self.release(self.build(progress=progress)))

    def render(
        self,
        to: str,
        *,
        image: str | None = None,
        out: str | Path | None = None,
        progress: Progress | None = None,
    ) -> str | list[Path]:
        """The target's manifests (GitOps): YAML text, or files written to ``out``.

        ``image`` renders for an already pushed image ref; without it the project is
        built and the release rendered as ``push`` would deploy it.
        """
        from deployer.providers import RendersManifests

        provider = self.providers([to])[to]
        if not isinstance(provider, RendersManifests):
            raise UsageError(f"target {to!r} ({provider.name}) has no manifests to render")
        source: Any = image or self.release(self.build(progress=progress))
        if out is not None:
            return list(provider.write_manifests(source, Path(out)))
        return str(provider.render_yaml(source))

    def status(self, to: list[str] | None = None) -> list[Status]:
        return [provider.status() for provider in self.providers(to).values()]

    def predict(
        self,
        to: str,
        body: bytes,
        content_type: str = "application/json",
        accept: str | None = None,
    ) -> Invocation:
        """Send one request through the target's real invoke path."""
        return self.providers([to])[to].invoke(body, content_type, accept)

    def rollback(self, to: list[str], *, progress: Progress | None = None) -> list[Deployment]:
        say = progress or (lambda _line: None)
        return [provider.rollback(say) for provider in self.providers(to).values()]

    def destroy(
        self,
        to: list[str],
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        router_file: str | Path | None = "router.yaml",
    ) -> DestroyResult:
        """Remove everything deployer created on each target in ``to``, then the targets'
        backends from ``router_file`` (relative to the project; None to skip) when it
        exists. The result maps each target to what was removed.

        ``dry_run`` destroys nothing and says which backends would leave router.yaml. When
        a target fails, router.yaml is left as it was (like push, it changes only when
        every target succeeded); an invalid router.yaml fails before anything is removed.
        """
        providers = self.providers(to)
        file = None if router_file is None else self.root / router_file
        routed = self._routed(providers, file)
        if dry_run:
            return DestroyResult(
                {name: [] for name in providers}, _changed_file(file, routed), routed, dry_run=True
            )
        say = progress or (lambda _line: None)
        removed = {name: provider.destroy(say) for name, provider in providers.items()}
        if routed and file is not None:
            routed = self._unroute(routed, file)
            if routed:
                say(f"removed {', '.join(routed)} from {file}")
        return DestroyResult(removed, _changed_file(file, routed), routed)

    def _routed(self, providers: dict[str, Provider], file: Path | None) -> list[str]:
        """The backends of router.yaml that are these targets (same name and provider)."""
        from deployer.router import manifest

        if file is None or not file.exists():
            return []
        kinds = {name: self.config.targets[name].provider for name in providers}
        return [b.name for b in manifest.load(file).backends if kinds.get(b.name) == b.provider]

    def _unroute(self, names: list[str], file: Path) -> list[str]:
        """Take ``names`` out of router.yaml as it is now (it may have been edited meanwhile);
        the names actually removed. A running router reloads the file by itself."""
        from deployer.router import manifest

        current = manifest.load(file)
        gone = [b.name for b in current.backends if b.name in names]
        if gone:
            kept = [b for b in current.backends if b.name not in gone]
            manifest.write(manifest.replace_backends(current, kept), file)
        return gone


def _changed_file(file: Path | None, routed: list[str]) -> str | None:
    """router.yaml's path when backends left it (or would), else None."""
    return str(file) if file is not None and routed else None


class DestroyResult(Mapping[str, list[str]]):
    """What ``Project.destroy`` did: a mapping of each target to the resources removed,
    plus the backends taken out of (or, in a dry run, that would leave) router.yaml."""

    def __init__(
        self,
        removed: dict[str, list[str]],
        router_manifest: str | None = None,
        router_backends: list[str] | None = None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.removed = removed
        self.router_manifest = router_manifest  # the file changed, or that would change
        self.router_backends = list(router_backends or [])
        self.dry_run = dry_run

    def __getitem__(self, target: str) -> list[str]:
        return self.removed[target]

    def __iter__(self) -> Iterator[str]:
        return iter(self.removed)

    def __len__(self) -> int:
        return len(self.removed)

    def __repr__(self) -> str:
        return f"DestroyResult({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "router_manifest": self.router_manifest,
            "router_backends": self.router_backends,
            "dry_run": self.dry_run,
        }
