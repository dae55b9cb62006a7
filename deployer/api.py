"""The public Python API: ``Project``, a facade over deployer.yaml (deployer.config), the
image build (deployer.image), the targets' providers (deployer.targets) and the push
orchestrator (deployer.orchestrate). What release scripts import; the CLI is a thin
layer over it.

from deployer import Project
project = Project.load("deployer.yaml")
report = project.validate()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, UsageError, file_or_folder_problem

if TYPE_CHECKING:
    from deployer.image.build import Image, Progress
    from deployer.image.conformance import CheckReport
    from deployer.journal import Event
    from deployer.providers import Deployment, Invocation, Plan, Provider, Release, Status
    from deployer.results import Policy, PushResult
from deployer.config import DEFAULT_FILE, ProjectConfig, load_config
from deployer.flavors import LoadedModel, detect_flavor, image_needs, load_model
from deployer.flavors.base import sample_instances, specs_from_example
from deployer.image.spec import BuildSpec, base_image
from deployer.lockfile import Lock, lock_warnings, sha256_of
from deployer.results import DestroyResult
from deployer.serving.settings import ServingSettings
from deployer.threshold_lock import DecisionThreshold, checked_model, read_threshold


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
        detected = detect_flavor(str(self.checked_path(self.model_path, "model", "path")))
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
        example = options.pop("example", None)
        if example:  # read here: the image carries the inputs it names, not the file
            options["inputs"] = self._example_inputs(example)
        options.update(model.options)  # the flavour rejects options it does not take
        if model.predictor:
            options["predictor"] = model.predictor
            options["code_paths"] = [str(self.code_folder(c)) for c in model.code or (".",)]
        return options

    def _example_inputs(self, example: str) -> list[dict[str, Any]]:
        """model.signature.example's arrays as named inputs; a ConfigError at its line."""
        path = self.checked_path(self.root / example, "model", "signature", "example")
        try:
            return [spec.to_dict() for spec in specs_from_example(str(path))]
        except ValueError as exc:
            where = self.config.located("model", "signature", "example")
            raise ConfigError(str(self.file), [f"{where}model.signature.example: {exc}"]) from None

    def checked_path(self, path: Path | None, *field: str | int) -> Path:
        """``path`` (of the deployer.yaml field ``field``) if it is a file or a folder; else
        a ConfigError at the field's line. Only ``stat``: a FIFO or device never blocks."""
        problem = "is not set" if path is None else file_or_folder_problem(path)
        if problem or path is None:
            name = ".".join(str(part) for part in field)
            raise ConfigError(
                str(self.file),
                [
                    f"{self.config.located(*field)}{name}: {path} {problem}; "
                    "expected a regular file or a folder"
                ],
            )
        return path

    def code_folder(self, entry: str) -> Path:
        """The folder a ``model.code`` entry puts on sys.path: itself, or a file's folder."""
        path = self.root / entry
        return path.parent if path.is_file() else path

    def model_sha256(self) -> str | None:
        path = self.model_path
        if path is None:
            return None
        return sha256_of(self.checked_path(path, "model", "path"))

    def artifact_sha256(self) -> str:
        """sha256 of what the image serves: the model file, or a custom predictor's code."""
        sha = self.model_sha256()
        if sha:
            return sha
        code = self.config.model.code
        if not code:
            return sha256_of(self.root)
        return sha256_of(self.checked_path(self.root / code[0], "model", "code", 0))

    def load_model(self) -> LoadedModel:
        """Load the model in this process (what the server does at start-up)."""
        path = self.model_path
        if path is not None:
            self.checked_path(path, "model", "path")
        return load_model(self.flavor, str(path) if path else None, self.flavor_options)

    def validate(self, *, load: bool = True) -> ValidationReport:
        """Check the targets' options as ``plan`` does, that the model file exists (and
        loads, unless ``load`` is False)."""
        if self.config.targets:
            self.providers()  # each provider validates its options, errors at their lines
        sha256 = self.model_sha256()
        threshold = self.decision_threshold()
        return ValidationReport(
            project=self.name,
            file=str(self.file),
            flavor=self.flavor,
            model_path=str(self.model_path) if self.model_path else None,
            model_sha256=sha256,
            signature=self._checked_signature() if load else None,
            warnings=[*lock_warnings(Lock.read(self.root), sha256), *threshold.warnings],
        )

    def decision_threshold(self) -> DecisionThreshold:
        """deployer.lock's ``evaluation.threshold`` when it belongs to this model (else
        nothing applies, with a warning): what ``build``, ``push`` and ``serve`` carry."""
        return read_threshold(self.root, self.model_sha256())

    def served_model(self) -> LoadedModel:
        """The model as the server answers: loaded, with the decision threshold applied; a
        ConfigError naming deployer.lock when this model cannot take the threshold."""
        return checked_model(self.load_model(), self.decision_threshold(), self.root)

    def _checked_signature(self) -> dict[str, Any]:
        """The loaded model's signature, once ``model.method`` is known to be one of its
        outputs and the decision threshold, if any, is known to fit it."""
        loaded = self.served_model().signature
        method = self.config.model.method
        if method and method not in loaded.methods:
            expected = ", ".join(loaded.methods)
            problem = f"model.method: {method!r} is not an output of this model"
            raise ConfigError(str(self.file), [f"{problem}; expected one of {expected}"])
        return loaded.to_dict()

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
            decision_threshold=self.decision_threshold().settings,
            host=host,
            port=port or serving.port,
            workers=workers or serving.workers,
            max_body_bytes=int(serving.max_body_mb * 1024 * 1024),
            batching=batching,
            max_batch_size=serving.batching.max_batch_size,
            max_batch_wait_ms=serving.batching.max_wait_ms,
            access_log=serving.access_log,
            **serving.limits.settings(),
        )

    def serve(
        self, *, host: str = "127.0.0.1", port: int | None = None, workers: int | None = None
    ) -> None:
        """Run the model server in this process until interrupted (no Docker)."""
        from deployer.serving.server import run

        self.served_model()  # a threshold the model cannot take fails here, not in the server
        settings = self.serving_settings(host=host, port=port, workers=workers)
        run(settings, port=port)

    def image_ref(self) -> str:
        """The tag ``build`` gives the image: REPOSITORY:SHA12, the model's sha256 (hashed
        with the decision threshold when one applies)."""
        repository = self.config.image.repository or self.name
        return f"{repository}:{self._tag_hash()[:12]}"

    def _tag_hash(self) -> str:
        return self.decision_threshold().tag_hash(self.artifact_sha256())

    def build_spec(self, *, platform: str | None = None, tag: str | None = None) -> BuildSpec:
        """What ``build`` builds: this project's model, code, settings and image options."""
        image = self.config.image
        model = self.config.model
        sha256 = self.artifact_sha256()
        return BuildSpec(
            name=self.name,
            tag=tag or self.image_ref(),
            flavor=self.flavor,
            artifact_sha256=sha256,
            model_path=self.model_path,
            code=tuple(self.root / c for c in model.code or (".",)) if model.predictor else (),
            settings=self.serving_settings(),
            base=base_image(image.base),
            accelerator=image.accelerator,
            cuda=image.cuda,
            torch=image.torch,
            platform=platform or image.platform,
            python=image.python,
            requirements=(*image.requirements, *self.model_requirements()),
            source=self.root,
        )

    def model_requirements(self) -> tuple[str, ...]:
        """What this model needs beyond its flavour's runtime: an MLflow model brings the
        runtime of the native flavour it maps to, or mlflow-skinny and its own requirements."""
        from deployer.serving.requirements import FLAVOR_REQUIREMENTS

        path = self.model_path
        options = self.config.model.options
        runtime, extra = image_needs(self.flavor, str(path) if path else None, options)
        if runtime == self.flavor:
            return extra
        return (*FLAVOR_REQUIREMENTS.get(runtime, ()), *extra)

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
        from deployer.image.build import build_image

        self.served_model()  # fail before the slow part if the model does not load here
        spec = self.build_spec(platform=platform, tag=tag)
        return build_image(spec, progress, refresh_wheels=refresh_wheels, no_cache=no_cache)

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
        from deployer.targets import providers_for

        return providers_for(self.config, self.file, names)

    def release(self, image: Image) -> Release:
        """The release of ``image``, with a sample for smoke tests: the model's own input
        example when it recorded one (MLflow), else two rows of zeros shaped like the input."""
        from deployer.providers import Release

        loaded = self.load_model()
        signature = loaded.signature
        sample = loaded.extra.get("sample") or sample_instances(signature, 2)
        return Release(self.name, image, sample, signature.to_dict())

    def push(
        self,
        to: list[str],
        *,
        strategy: str = "all-at-once",
        bake_seconds: float = 0.0,
        on_failure: Policy = "rollback",
        dry_run: bool = False,
        timeout: float | None = None,
        progress: Progress | None = None,
        events: Event | None = None,
        journal_dir: str | Path | None = ".deployer/journal",
        router_file: str | Path | None = "router.yaml",
    ) -> PushResult:
        """Build once, then deploy to every target in ``to`` in parallel.

        Each target is published, deployed with ``strategy`` (``all-at-once``,
        ``canary:N``, ``linear:N``; ``bake_seconds`` between steps), waited for and
        smoke-tested. ``on_failure`` is ``rollback`` (every changed target goes back) or
        ``keep`` (the release is degraded). ``timeout`` (seconds per target; None: the
        time the strategy needs on each target, see ``orchestrate.push_timeouts``) shorter
        than the strategy's bakes is a UsageError, raised before the build. The journal
        is also written as JSON under ``journal_dir`` (relative to the project; None to
        skip). When every target succeeded, ``router_file`` (relative to the project;
        None to skip) is updated with the pushed targets' backends, keeping the other
        backends and hand edits.
        """
        from deployer.orchestrate import push_options, push_release

        parsed, policy = push_options(strategy, bake_seconds, on_failure)
        providers = self.providers(to)
        return push_release(
            self.name,
            providers,
            lambda: self.release(self.build(progress=progress)),
            strategy=parsed,
            policy=policy,
            dry_run=dry_run,
            timeout=timeout,
            events=events,
            journal_dir=self._path(journal_dir),
            router_file=self._path(router_file),
            target_options={n: self.config.targets[n].model_dump() for n in providers},
        )

    def _path(self, path: str | Path | None) -> Path | None:
        """``path`` relative to the project's folder (None stays None)."""
        return None if path is None else self.root / path

    def plan(
        self,
        to: list[str],
        *,
        strategy: str = "all-at-once",
        bake_seconds: float = 0.0,
        progress: Progress | None = None,
    ) -> list[Plan]:
        """What a push with ``strategy`` would change on each target; changes nothing
        there. A target that would refuse the strategy says why in ``Plan.problems``."""
        from deployer.orchestrate import plan_targets, push_options

        parsed = push_options(strategy, bake_seconds, "rollback")[0]
        providers = self.providers(to)
        plans = plan_targets(providers, self.release(self.build(progress=progress)), parsed)
        note = self.decision_threshold().note()
        return [replace(p, notes=[*p.notes, note]) for p in plans] if note else plans

    def push_timeouts(
        self,
        to: list[str],
        *,
        strategy: str = "all-at-once",
        bake_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> dict[str, float]:
        """Each target's push timeout for ``strategy`` (see ``orchestrate.push_timeouts``):
        what ``push`` would wait; a ``timeout`` shorter than the strategy needs raises."""
        from deployer.orchestrate import push_options, push_timeouts

        parsed = push_options(strategy, bake_seconds, "rollback")[0]
        return push_timeouts(self.providers(to), parsed, timeout)

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
        from deployer.orchestrate import destroy_targets

        providers = self.providers(to)
        kinds = {name: self.config.targets[name].provider for name in providers}
        return destroy_targets(
            providers, kinds, self._path(router_file), dry_run=dry_run, progress=progress
        )
