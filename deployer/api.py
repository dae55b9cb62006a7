"""The public Python API: ``Project``, a facade over deployer.yaml (deployer.config), the
image build (deployer.image), the targets' providers (deployer.targets) and the push
orchestrator (deployer.orchestrate). What release scripts import; the CLI is a thin
layer over it.

from deployer import Project
project = Project.load("deployer.yaml")
report = project.validate()
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, DeployerError, UsageError, file_or_folder_problem

if TYPE_CHECKING:
    from deployer.audit import AuditLog, AuditTrail
    from deployer.audit.history import TargetHistory
    from deployer.batch.job import BatchRun
    from deployer.evaluation.run import EvaluationProgress, EvaluationResult
    from deployer.gates import GateReport
    from deployer.image.build import Image, Progress
    from deployer.image.conformance import CheckReport
    from deployer.journal import Event
    from deployer.monitoring.drift import DriftReport
    from deployer.monitoring.labels import LabelsResult
    from deployer.monitoring.table import Progress as RowsProgress
    from deployer.providers import Deployment, Invocation, Plan, Provider, Release, Status
    from deployer.providers.monitoring import CaptureSpec
    from deployer.providers.types import Strategy
    from deployer.results import Policy
from deployer.config import DEFAULT_FILE, ProjectConfig, load_config
from deployer.flavors import LoadedModel, detect_flavor, image_needs, load_model
from deployer.flavors.base import sample_instances, specs_from_example
from deployer.image.baseline import lock_baseline
from deployer.image.baseline import tag_hash as baseline_tag_hash
from deployer.image.spec import BuildSpec, base_image
from deployer.lockfile import Lock, lock_warnings, sha256_of, valid_baseline, valid_evaluation
from deployer.results import DestroyResult, PushResult
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
        """Write deployer.lock: the model's sha256, flavour and signature; an ``evaluation``
        already there is kept while it belongs to this model, else dropped."""
        return self._fresh_lock(keep_evaluation=True).write(self.root)

    def _fresh_lock(self, *, keep_evaluation: bool = False) -> Lock:
        model = self.load_model()
        sha256 = self.model_sha256() or ""
        kept = baseline = None
        try:
            existing = Lock.read(self.root)
        except ConfigError:  # an unreadable lock is rewritten, its evaluation lost
            existing = None
        if keep_evaluation:
            kept = valid_evaluation(existing, self.evaluated_sha256())
        baseline = valid_baseline(existing, self.evaluated_sha256())
        return Lock(
            model_path=self.config.model.path or "",
            model_sha256=sha256,
            flavor=self.flavor,
            signature=model.signature.to_dict(),
            evaluation=kept,
            baseline=baseline,
        )

    def evaluated_sha256(self) -> str:
        """The sha256 an evaluation belongs to: the model file's (a custom predictor with
        no model file: its code's)."""
        return self.model_sha256() or self.artifact_sha256()

    def evaluate(
        self,
        data: str | Path,
        label: str,
        *,
        to: str | None = None,
        task: str | None = None,
        positive: str | None = None,
        choose_threshold: str | None = None,
        data_format: str | None = None,
        batch_size: int | None = None,
        report: str | Path | None = None,
        record: bool = True,
        progress: EvaluationProgress | None = None,
    ) -> EvaluationResult:
        """Run the model over the labelled ``data`` (CSV, JSON Lines, Parquet; a local path or
        a ``scheme://`` URI) and measure it with ``sklearn.metrics``: in this process, or
        through the running target ``to``. ``choose_threshold`` (``precision>=X``,
        ``recall>=X``, ``f1=max``) picks a binary classifier's decision threshold. The
        result is recorded as ``evaluation`` in deployer.lock unless ``record`` is False;
        ``report`` writes PNG charts and an index.html into that folder."""
        from deployer.evaluation import run, scoring

        loaded = self.load_model()
        if to is None:
            scorer = scoring.in_process(loaded)
        else:
            provider = self.providers([to])[to]
            scorer = scoring.through_target(
                loaded, to, lambda body: provider.invoke(body, "application/json")
            )
        size = batch_size or (run.DEFAULT_BATCH if to is None else run.TARGET_BATCH)
        options = run.Options(label, data_format, task, positive, choose_threshold, size)
        result = run.evaluate(
            scorer,
            str(data),
            options,
            project=self.name,
            model_sha256=self.evaluated_sha256(),
            progress=progress,
        )
        if report is not None:
            from deployer.evaluation.report import write_report

            result.report = str(write_report(result, Path(report)))
        if record:
            from deployer.evaluation.record import record as write_record

            result.recorded = str(write_record(self.root, result.lock_entry(), self._fresh_lock))
        return result

    # -- monitoring: baseline, drift, concept drift (deployer.monitoring) --------------

    def baseline(
        self,
        data: str | Path,
        *,
        label: str | None = None,
        data_format: str | None = None,
        record: bool = True,
        progress: RowsProgress | None = None,
    ) -> dict[str, Any]:
        """Each feature's distribution in the training ``data`` (every column but ``label``)
        and the served model's predictions' on it (with deployer.lock's decision threshold,
        as the image answers), recorded as ``baseline`` in deployer.lock unless
        ``record`` is False (kept by ``lock`` while it belongs to this model)."""
        from deployer.evaluation import scoring
        from deployer.monitoring.baseline import build_baseline

        scorer = scoring.in_process(self.served_model())  # as served: its threshold too
        entry = build_baseline(
            str(data),
            scorer,
            label=label,
            data_format=data_format,
            model_sha256=self.evaluated_sha256(),
            progress=progress,
        )
        if record:
            from deployer.monitoring.record import record as write_record

            write_record(self.root, entry, self._fresh_lock)
        return entry

    def capturing(self, to: str) -> Any:
        """The provider of target ``to`` when it reads back captured predictions."""
        from deployer.providers.monitoring import CapturesPredictions

        provider = self.providers([to])[to]
        if not isinstance(provider, CapturesPredictions):
            raise UsageError(
                f"target {to!r} ({provider.name}) cannot read back captured predictions",
                hint="set monitoring.capture in deployer.yaml and push again "
                "(a provider that captures implements captured())",
            )
        return provider

    def drift(
        self, to: str, *, since: str | None = None, report: str | Path | None = None
    ) -> DriftReport:
        """The target's captured traffic since ``since`` (``24h`` or an ISO time; None: all)
        against deployer.lock's baseline: statistics and a verdict per feature and for the
        predictions (thresholds: ``monitoring.drift``); ``report`` writes PNGs and HTML."""
        from deployer.monitoring import timespec
        from deployer.monitoring.drift import measure
        from deployer.monitoring.record import recorded

        start = timespec.since(since)
        baseline = recorded(self.root, self.evaluated_sha256())
        provider = self.capturing(to)
        limits = self.config.monitoring.drift
        result = measure(to, baseline, provider.captured(start), limits, since)
        if report is not None:
            from deployer.monitoring.report import write_report

            result.report = str(write_report(result, Path(report)))
        return result

    def evaluate_labels(
        self,
        to: str,
        labels: str | Path,
        *,
        id_column: str = "request_id",
        label_column: str = "label",
        window: str = "1h",
        data_format: str | None = None,
    ) -> LabelsResult:
        """Concept drift: the target's captured predictions joined by request id with the
        true labels in ``labels``, precision/recall/F1 per ``window`` and overall."""
        from deployer.monitoring import timespec
        from deployer.monitoring.labels import evaluate_labels

        span = timespec.duration(window, "--window")
        provider = self.capturing(to)
        return evaluate_labels(
            to,
            provider.captured(None),
            str(labels),
            id_column=id_column,
            label_column=label_column,
            window=span,
            window_text=window,
            data_format=data_format,
        )

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
            max_concurrent_batches=serving.batching.max_concurrent_batches,
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
        baseline = self.baked_baseline()
        if baseline is not None:  # the drift gauges in /metrics, as the image has them
            path = self.root / ".deployer" / "serve-baseline.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(baseline), encoding="utf-8")
            settings = replace(settings, baseline_path=str(path))
        run(settings, port=port)

    def image_ref(self) -> str:
        """The tag ``build`` gives the image: REPOSITORY:SHA12, the model's sha256 (hashed
        with the decision threshold when one applies)."""
        repository = self.config.image.repository or self.name
        return f"{repository}:{self._tag_hash()[:12]}"

    def _tag_hash(self) -> str:
        base = self.decision_threshold().tag_hash(self.artifact_sha256())
        return baseline_tag_hash(base, self.baked_baseline())

    def baked_baseline(self) -> dict[str, Any] | None:
        """deployer.lock's ``baseline`` while it is this model's: the image bakes it."""
        return lock_baseline(self.root, self.model_sha256())

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
            baseline=self.baked_baseline(),
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
        return Release(self.name, image, sample, signature.to_dict(), capture=self.capture_spec())

    def capture_spec(self) -> CaptureSpec | None:
        """monitoring.capture of deployer.yaml in the providers' terms (None: no capture)."""
        from deployer.providers.monitoring import CaptureSpec

        capture = self.config.monitoring.capture
        if capture is None:
            return None
        return CaptureSpec(
            sample=capture.sample,
            inputs=capture.inputs,
            outputs=capture.outputs,
            destination=capture.destination,
            drop=capture.redact.drop,
            hash=capture.redact.hash,
            max_file_mb=capture.max_file_mb,
            max_total_mb=capture.max_total_mb,
        )

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
        reason: str | None = None,
        override_gates: bool = False,
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

        First, before the build, the release gates (``check_gates``): a failing one
        returns a ``blocked`` result, unless ``override_gates`` (which needs a
        ``reason``). Every push but a dry run appends to the audit log
        (``deployer.audit``), with ``reason``, and annotates the release.
        """
        from deployer.alerting.apply import after_push
        from deployer.orchestrate import push_options, push_release

        parsed, policy = push_options(strategy, bake_seconds, on_failure)
        parsed = self._watched(parsed)
        providers = self.providers(to)
        gates = self.check_gates(to, reason=reason, override=override_gates, providers=providers)
        trail = None if dry_run else self.audit_trail(reason, gates, push=True)
        if gates.blocked:
            if trail is not None:
                trail.blocked(list(providers), str(parsed))
            result = PushResult(self.name, "", {}, [], policy, str(parsed), dry_run)
            result.blocked, result.gates = True, gates.to_dicts()
            return result
        result = push_release(
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
            recorder=trail,
            after_push=after_push(self.config.monitoring),
        )
        result.gates = gates.to_dicts()
        result.override = {"reason": gates.override} if gates.override else None
        return result

    def check_gates(
        self,
        to: list[str],
        *,
        reason: str | None = None,
        override: bool = False,
        providers: dict[str, Provider] | None = None,
    ) -> GateReport:
        """deployer.yaml's release gates against the model's recorded metrics and each
        target's live and previous versions' (read-only). ``override`` lets failures
        through and needs a ``reason`` (a UsageError otherwise)."""
        from deployer.gates import GateReport
        from deployer.release_checks import check_gates

        if override and not (reason and reason.strip()):
            raise UsageError('--override-gates needs --reason "why" (it is recorded)')
        if not self.config.release.gates:
            return GateReport()  # nothing to override
        return check_gates(
            self.config.release.gates,
            Lock.read(self.root),
            self.model_sha256(),
            providers if providers is not None else self.providers(to),
            self.root,
            reason if override else None,
        )

    def audit_trail(
        self, reason: str | None = None, gates: GateReport | None = None, *, push: bool = False
    ) -> AuditTrail:
        """The records of one action in the audit log; a ``push``'s carry the model's
        sha256 and its recorded metrics (a rollback or destroy reads no model file)."""
        from deployer.audit import AuditTrail
        from deployer.release_checks import model_metrics

        if not push:
            return AuditTrail(self.root, self.name, reason)
        sha = self.model_sha256() if self.config.model.path else None
        metrics = model_metrics(Lock.read(self.root), sha)[0] or {}
        return AuditTrail(self.root, self.name, reason, sha, metrics, gates)

    @property
    def audit_log(self) -> AuditLog:
        """The project's audit log, ``.deployer/audit.jsonl``."""
        from deployer.audit import AuditLog

        return AuditLog(self.root)

    def history(self, to: list[str] | None = None, *, live: bool = True) -> list[TargetHistory]:
        """Each target's versions over time from the audit log; with ``live``, merged with
        each target's status (its live version and that version's annotations)."""
        from deployer.audit.history import logged_targets, target_history

        records = self.audit_log.records()
        names = to or list(dict.fromkeys([*self.config.targets, *logged_targets(records)]))
        found = []
        for name in names:
            status, note = None, None
            if live and name in self.config.targets:
                try:
                    status = self.providers([name])[name].status()
                except DeployerError as exc:
                    note = f"status unavailable: {exc.message}"
            found.append(target_history(records, name, status, note))
        return found

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

        parsed = self._watched(push_options(strategy, bake_seconds, "rollback")[0])
        providers = self.providers(to)
        plans = plan_targets(providers, self.release(self.build(progress=progress)), parsed)
        note = self.decision_threshold().note()
        return [replace(p, notes=[*p.notes, note]) for p in plans] if note else plans

    def _watched(self, strategy: Strategy) -> Strategy:
        """``strategy`` with the live gates of deployer.yaml's ``release.live``, if any."""
        from deployer.providers.live import LiveRules

        live = self.config.release.live
        if live is None:
            return strategy
        return replace(strategy, live=LiveRules(**live.model_dump()))

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

    def batch(
        self,
        to: str | None,
        input: str,
        output: str,
        *,
        format: str | None = None,
        keep: list[str] | None = None,
        label: str | None = None,
        in_process: bool = False,
        wait: bool = True,
        **options: Any,
    ) -> BatchRun:
        """Score every row of ``input`` into ``output`` with the image ``push`` would deploy
        on target ``to`` (a provider with RunsBatch), or in this process (``in_process``:
        runs to the end, resumable), or here with predictions from the target's running
        deployment (``endpoint=True``); deployer.batch.start has the other options."""
        from deployer.batch.start import start

        return start(
            self,
            to,
            input,
            output,
            format=format,
            keep=keep,
            label=label,
            in_process=in_process,
            wait=wait,
            **options,
        )

    def batch_job(self, job_id: str) -> BatchRun:
        """A batch job started earlier (its record in .deployer/batch)."""
        from deployer.batch.start import reopen

        return reopen(self, job_id)

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

    def rollback(
        self, to: list[str], *, progress: Progress | None = None, reason: str | None = None
    ) -> list[Deployment]:
        """Return each target to its previous version, recorded in the audit log."""
        say = progress or (lambda _line: None)
        return self.audit_trail(reason).rollback(self.providers(to), say)

    def destroy(
        self,
        to: list[str],
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        router_file: str | Path | None = "router.yaml",
        reason: str | None = None,
    ) -> DestroyResult:
        """Remove everything deployer created on each target in ``to``, then the targets'
        backends from ``router_file`` (relative to the project; None to skip) when it
        exists. The result maps each target to what was removed.

        ``dry_run`` destroys nothing and says which backends would leave router.yaml. When
        a target fails, router.yaml is left as it was (like push, it changes only when
        every target succeeded); an invalid router.yaml fails before anything is removed.
        A destroy (not a dry run) is recorded in the audit log, with ``reason``.
        """
        from deployer.orchestrate import destroy_targets

        providers = self.providers(to)
        kinds = {name: self.config.targets[name].provider for name in providers}

        def run() -> DestroyResult:
            return destroy_targets(
                providers, kinds, self._path(router_file), dry_run=dry_run, progress=progress
            )

        if dry_run:
            return run()
        return self.audit_trail(reason).destroy(list(providers), run)
