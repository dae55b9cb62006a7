"""``deployer router ...``: create, edit, check, show, serve and render router.yaml.

Mounted as ``deployer router`` through the ``deployer.commands`` entry point (see
deployer/commands.py); it never imports deployer.cli. Thin like the rest of the CLI: the
logic lives in deployer.router.manifest and deployer_router's app, render and image.
Every command takes ``-o json`` and exits 0 ok, 1 failed, 2 bad input, 3 missing package.
Nothing heavy is imported until a command runs (no cloud SDK ever).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployer import output
from deployer.output import Format, handles_errors

if TYPE_CHECKING:
    from deployer.router.manifest import Manifest

router_app = typer.Typer(
    name="router",
    help=(
        "One endpoint in front of every deployed backend: weighted, least-latency or "
        "tiered failover, cloud signing, health checks, retries with a budget.\n\n"
        "[bold]deployer push[/] writes router.yaml; [bold]deployer router serve[/] runs it; "
        "[bold]deployer router render --format haproxy|nginx|envoy|kubernetes|route53[/] "
        "hands it to an engine that runs at scale."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

FileArgument = Annotated[
    Path,
    typer.Argument(envvar="DEPLOYER_ROUTER_FILE", help="The router manifest.", show_default=True),
]
FileOption = Annotated[
    Path, typer.Option("--file", "-f", envvar="DEPLOYER_ROUTER_FILE", help="The router manifest.")
]
OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="text for people, json for CI.")
]


def _load(file: Path) -> Manifest:
    from deployer.router.manifest import load

    return load(file)


def _save(manifest: Manifest, file: Path, message: str, output_format: Format) -> None:
    from deployer.router.manifest import lint, to_dict, write

    write(manifest, file)
    if output_format == Format.json:
        output.emit_json({"ok": True, "file": str(file), "manifest": to_dict(manifest)})
        return
    output.ok(message)
    for warning in lint(manifest):
        output.warn(warning)


@router_app.command()
@handles_errors
def init(
    file: FileArgument = Path("router.yaml"),
    name: Annotated[str, typer.Option(help="The project the router fronts.")] = "router",
    policy: Annotated[str, typer.Option(help="weighted or least-latency.")] = "weighted",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    output_format: OutputOption = Format.text,
) -> None:
    """Write an empty router.yaml (deployer push fills it; or add backends by hand)."""
    from deployer.errors import UsageError
    from deployer.router.manifest import new

    if file.exists() and not force:
        raise UsageError(f"{file} exists", hint="pass --force to overwrite it")
    _save(new(name, policy=policy, host=host, port=port), file, f"wrote {file}", output_format)


@router_app.command()
@handles_errors
def add(
    name: Annotated[str, typer.Argument(help="Backend name (unique in the manifest).")],
    url: Annotated[str, typer.Option(help="Base URL, or a managed endpoint's invoke URL.")],
    file: FileOption = Path("router.yaml"),
    provider: Annotated[str, typer.Option(help="http, kubernetes, local, sagemaker ...")] = "http",
    auth: Annotated[
        str | None,
        typer.Option(help="none, bearer, sigv4, google-oauth, azure-key, azure-token."),
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="bearer: the environment variable holding the token.")
    ] = None,
    token_file: Annotated[
        str | None, typer.Option(help="bearer: the file holding the token (re-read each minute).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="The backend's cloud region.")] = None,
    weight: Annotated[int, typer.Option(help="Share within its tier, 0-256.")] = 1,
    tier: Annotated[int, typer.Option(help="0 serves first; 1 only when every 0 is down.")] = 0,
    health: Annotated[
        str | None, typer.Option(help="active, control-plane or none (default: by provider).")
    ] = None,
    health_path: Annotated[str, typer.Option(help="Path of active checks.")] = "/ping",
    replace: Annotated[bool, typer.Option(help="Replace a backend of the same name.")] = False,
    output_format: OutputOption = Format.text,
) -> None:
    """Add a backend by hand. It is pinned: push keeps it even when no target lists it."""
    from deployer.router.manifest import default_auth, default_health, with_backend

    kind = auth or default_auth(provider)
    entry: dict[str, Any] = {
        "name": name,
        "provider": provider,
        "url": url,
        "region": region,
        "auth": {"kind": kind, "token_env": token_env, "token_file": token_file},
        "weight": weight,
        "tier": tier,
        "health": {
            "source": health or default_health(provider).source,
            "path": health_path,
        },
        "pinned": True,
    }
    entry["auth"] = {k: v for k, v in entry["auth"].items() if v is not None}
    manifest = with_backend(_load(file), entry, replace=replace, source=str(file))
    _save(manifest, file, f"added {name} to {file}", output_format)


@router_app.command()
@handles_errors
def remove(
    name: Annotated[str, typer.Argument(help="Backend name.")],
    file: FileOption = Path("router.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Remove a backend."""
    from deployer.router.manifest import without_backend

    _save(
        without_backend(_load(file), name, source=str(file)),
        file,
        f"removed {name} from {file}",
        output_format,
    )


@router_app.command("set")
@handles_errors
def set_(
    name: Annotated[str | None, typer.Argument(help="Backend name.")] = None,
    file: FileOption = Path("router.yaml"),
    weight: Annotated[int | None, typer.Option(help="New weight, 0-256 (0 drains).")] = None,
    tier: Annotated[int | None, typer.Option(help="New tier, 0-9.")] = None,
    policy: Annotated[str | None, typer.Option(help="weighted or least-latency.")] = None,
    output_format: OutputOption = Format.text,
) -> None:
    """Change a backend's weight or tier, or the policy. A running router reloads the file
    by itself within a second."""
    from deployer.errors import UsageError
    from deployer.router.manifest import with_settings

    if name is None and (weight is not None or tier is not None):
        raise UsageError("--weight and --tier need a backend name")
    if weight is None and tier is None and policy is None:
        raise UsageError("nothing to set: pass --weight, --tier or --policy")
    manifest = with_settings(
        _load(file), name, weight=weight, tier=tier, policy=policy, source=str(file)
    )
    _save(manifest, file, f"updated {file}", output_format)


@router_app.command()
@handles_errors
def validate(
    file: FileArgument = Path("router.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Check router.yaml: exit 0 when valid, 2 when not. Warns about cloud auth kinds
    whose provider plugin is not installed here."""
    from deployer.errors import DeployerError
    from deployer.router import plugins
    from deployer.router.manifest import PLUGIN_AUTH, lint

    manifest = _load(file)
    warnings = lint(manifest)
    for provider in sorted({b.provider for b in manifest.backends if b.auth.kind in PLUGIN_AUTH}):
        try:
            cls = plugins.lookup(provider)
        except DeployerError as exc:
            warnings.append(f"{provider}: {exc.message}; the router cannot sign for it here")
            continue
        if not hasattr(cls, "router_signer"):
            warnings.append(
                f"{provider}: the installed provider has no router signer "
                f"(upgrade {plugins.distribution(provider)})"
            )
    if output_format == Format.json:
        output.emit_json(
            {
                "ok": True,
                "file": str(file),
                "backends": len(manifest.backends),
                "warnings": warnings,
            }
        )
        return
    output.ok(f"{file}: valid, {len(manifest.backends)} backends, policy {manifest.policy}")
    for warning in warnings:
        output.warn(warning)


@router_app.command()
@handles_errors
def show(
    file: FileArgument = Path("router.yaml"),
    live: Annotated[
        str | None,
        typer.Option(help="A running router's URL: show its live health instead of the file."),
    ] = None,
    output_format: OutputOption = Format.text,
) -> None:
    """The backends: from the file, or with --live from a running router."""
    from rich.table import Table

    if live:
        import httpx

        from deployer.errors import DeployerError

        try:
            answer = httpx.get(live.rstrip("/") + "/-/router/health", timeout=5.0)
        except httpx.HTTPError as exc:
            raise DeployerError(f"cannot reach the router at {live}: {exc}") from None
        data = answer.json()
        rows = data["backends"]
    else:
        from deployer.router.manifest import to_dict

        manifest = _load(file)
        data = to_dict(manifest)
        rows = [
            {
                "name": b.name,
                "provider": b.provider,
                "tier": b.tier,
                "weight": b.weight,
                "url": b.url,
                "health_source": b.health_source,
                "auth": b.auth.kind,
            }
            for b in manifest.backends
        ]
    if output_format == Format.json:
        output.emit_json({"ok": True, **data})
        return
    table = Table(title=f"{data.get('name')} ({data.get('policy')})", title_justify="left")
    columns = ["name", "provider", "tier", "weight", "health_source", "url"]
    columns += ["available", "reason"] if live else ["auth"]
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        cells = [str(row.get(c, "")) for c in columns]
        table.add_row(*cells)
    output.out.print(table)


@router_app.command()
@handles_errors
def serve(
    file: FileArgument = Path("router.yaml"),
    host: Annotated[str | None, typer.Option(help="Address (default: listen.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: listen.port).")] = None,
    access_log: Annotated[
        bool | None,
        typer.Option("--access-log/--no-access-log", help="Default: access_log.enabled."),
    ] = None,
    busy_poll: Annotated[
        bool | None,
        typer.Option(
            "--busy-poll/--no-busy-poll",
            help="Poll without sleeping while requests flow: lower latency on VMs, one core "
            "busy under load. Default: busy_poll.enabled.",
        ),
    ] = None,
    grace: Annotated[float, typer.Option(help="Seconds to finish requests on SIGTERM.")] = 20.0,
) -> None:
    """Run the built-in router. SIGHUP (or editing the file) reloads the manifest without
    dropping a request; SIGTERM drains and stops. Routes of its own: /-/router/health,
    /-/router/live, /-/router/ready and /metrics (health and metrics move to admin.port,
    or off, per router.yaml's admin). Bounds on clients: router.yaml's limits."""
    from deployer.router.manifest import load
    from deployer_router.app import run

    load(file)  # a bad file fails here with exit 2, before anything starts
    run(file, host=host, port=port, access_log=access_log, busy_poll=busy_poll, grace=grace)


@router_app.command()
@handles_errors
def render(
    file: FileArgument = Path("router.yaml"),
    fmt: Annotated[
        str,
        typer.Option("--format", "-F", help="haproxy, nginx, envoy, kubernetes or route53."),
    ] = "haproxy",
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
    listen: Annotated[
        str | None, typer.Option(help="haproxy/nginx: HOST:PORT to listen on (default: listen).")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="kubernetes: the router image (default: this version's).")
    ] = None,
    namespace: Annotated[str, typer.Option(help="kubernetes: namespace.")] = "default",
    replicas: Annotated[int, typer.Option(help="kubernetes: minimum replicas.")] = 2,
    max_replicas: Annotated[int, typer.Option(help="kubernetes: HPA maximum.")] = 10,
    service_account: Annotated[
        str | None, typer.Option(help="kubernetes: service account (cloud credentials).")
    ] = None,
    dns_name: Annotated[str | None, typer.Option(help="route53: the record name.")] = None,
    hosted_zone_id: Annotated[
        str, typer.Option(help="route53: the zone (for alias records).")
    ] = "HOSTED_ZONE_ID",
    output_format: OutputOption = Format.text,
) -> None:
    """Write router.yaml as a config for another engine: haproxy, nginx, envoy (plain-HTTP
    backends; the rest are listed as skipped), kubernetes (the router itself), route53."""
    from deployer_router.render import render as render_manifest

    rendered = render_manifest(
        _load(file),
        fmt,
        bind=listen,
        listen=listen,
        image=image,
        namespace=namespace,
        replicas=replicas,
        max_replicas=max_replicas,
        service_account=service_account,
        dns_name=dns_name,
        hosted_zone_id=hosted_zone_id,
    )
    if out is not None:
        out.write_text(rendered.text, encoding="utf-8")
    if output_format == Format.json:
        document = rendered.to_dict()
        if out is not None:
            document = {**document, "text": None, "file": str(out)}
        output.emit_json({"ok": True, **document})
        return
    if out is None:
        output.out.file.write(rendered.text)
    else:
        output.ok(f"wrote {out} ({fmt})")
    for name, reason in rendered.skipped:
        output.warn(f"skipped {name}: {reason}")
    for note in rendered.notes:
        output.err.print(f"[dim]note:[/] {note}")


@router_app.command("image")
@handles_errors
def image_(
    with_: Annotated[
        str | None,
        typer.Option(
            "--with",
            help="Providers the router signs for and asks for endpoint status, comma-separated: "
            "sagemaker, vertex, azureml. Without it: the default image (none and bearer auth).",
        ),
    ] = None,
    tag: Annotated[
        str | None, typer.Option(help="Also tag the image as this, e.g. team/router:1.")
    ] = None,
    push: Annotated[
        str | None,
        typer.Option(help="Push to this registry, e.g. registry.example.com/team; prints the ref."),
    ] = None,
    registry_username_env: Annotated[
        str | None,
        typer.Option(help="--push: environment variable holding the user (else docker login)."),
    ] = None,
    registry_password_env: Annotated[
        str | None, typer.Option(help="--push: environment variable holding the password.")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="Base image (default: DEPLOYER_BASE_IMAGE, else python:3.11-slim)."),
    ] = None,
    platform: Annotated[str, typer.Option(help="linux/amd64 or linux/arm64.")] = "linux/amd64",
    python: Annotated[str, typer.Option(help="The base image's Python version.")] = "3.11",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be built (tag, contents); build nothing."),
    ] = False,
    output_format: OutputOption = Format.text,
) -> None:
    """Build the router image, once per content: the default one, or --with providers so the
    router signs for those clouds (the image `render --format kubernetes` names).

    Wheels are built and downloaded on this machine and installed in the image with no
    network. An unchanged rebuild does nothing. Prints the image ref on stdout."""
    from deployer.errors import DeployerError
    from deployer.image.engine import docker_client
    from deployer_router.image import make
    from deployer_router.image_providers import parse_providers

    providers = parse_providers((with_ or "").split(","))  # bad names: exit 2, before Docker
    auth = _registry_auth(registry_username_env, registry_password_env)
    try:
        client = docker_client()  # no engine: exit 3, before any wheel is built
    except DeployerError:
        if not dry_run:
            raise
        client = None  # a dry run says what would be built all the same
    quiet = output_format == Format.json
    result = make(
        client,
        providers,
        base=base,
        platform=platform,
        python=python,
        tag=tag,
        push=push,
        auth=auth,
        dry_run=dry_run,
        progress=(lambda _line: None) if quiet else output.progress_line,
    )
    if quiet:
        output.emit_json({"ok": True, **result.to_dict()})
        return
    size = f"{result.size / 1e6:.1f} MB" if result.size is not None else "size unknown"
    what = f"signs for {', '.join(result.providers)}" if result.providers else "none/bearer auth"
    if result.dry_run:
        state = f"already built, {size}" if result.id else "would be built"
        output.ok(f"{result.tag} ({what}): {state}")
    else:
        verb = "built" if result.built else "up to date:"
        output.ok(f"{verb} {result.tag} ({size}, {what})")
    for name, version in result.distributions.items():
        output.progress_line(f"  {name} {version}")
    output.progress_line(f"  requirements: {', '.join(result.requirements)}")
    for extra in result.tags:
        output.ok(f"tagged {extra}")
    if result.pushed:
        output.ok(f"pushed {result.pushed}")
    output.out.print(result.ref)


def _registry_auth(username_env: str | None, password_env: str | None) -> Any:
    """RegistryAuth from the named environment variables; None: the engine's own."""
    import os

    from deployer.errors import MissingDependencyError, UsageError
    from deployer.image.registry import RegistryAuth

    if username_env is None and password_env is None:
        return None
    if username_env is None or password_env is None:
        raise UsageError("--registry-username-env and --registry-password-env go together")
    missing = [f"${n}" for n in (username_env, password_env) if not os.environ.get(n)]
    if missing:
        raise MissingDependencyError(f"registry credentials missing: {', '.join(missing)} unset")
    return RegistryAuth(os.environ[username_env], os.environ[password_env])


def main() -> None:
    """``python -m deployer_router.cli``: the router commands on their own (no traceback
    unless DEPLOYER_DEBUG is set, like ``deployer``)."""
    output.run_cli(router_app)


if __name__ == "__main__":
    main()
