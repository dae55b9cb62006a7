"""The built-in router as Kubernetes objects: ConfigMap (the manifest), Deployment (the
router image, restricted security context), Service, HorizontalPodAutoscaler and
PodDisruptionBudget, from ``templates/router/kubernetes.yaml.tmpl``.

Every backend is kept (the router signs for managed endpoints itself), but cloud auth
kinds and control-plane health need the provider distributions in the image: the default
router image carries only ``none`` and ``bearer`` and active/passive health. When the
manifest needs providers, the default image is the one ``deployer router image --with
PROVIDERS`` builds, and a note names that command and the tag.
"""

from __future__ import annotations

import textwrap
from string import Template
from typing import Any

import yaml

from deployer.errors import DeployerError, UsageError
from deployer.router.manifest import PLUGIN_AUTH, Manifest, dump
from deployer_router.render import Rendered
from deployer_router.resources import read_template

KINDS = ("ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


def default_image() -> str:
    """The default router image tag this deployer builds (``deployer-router:VERSION-HASH``)."""
    from deployer_router.image import router_image_tag
    from deployer_router.image_providers import default_base

    return router_image_tag(default_base())


def needed_providers(manifest: Manifest) -> list[str]:
    """Providers whose plugin the router needs: cloud auth kinds, control-plane health."""
    return sorted(
        {
            b.provider
            for b in manifest.backends
            if b.auth.kind in PLUGIN_AUTH or b.health_source == "control-plane"
        }
    )


def recommended_image(providers: list[str], image: str | None) -> tuple[str, str]:
    """The image to run (``image``, else the one built ``--with`` the providers) and a note
    naming the command that builds it."""
    from deployer_router.image_providers import providers_tag

    command = f"deployer router image --with {','.join(providers)}"
    names = " and ".join(
        [", ".join(providers[:-1]), providers[-1]] if providers[:-1] else providers
    )
    plural = "s" if len(providers) > 1 else ""
    why = f"backends need the {names} provider plugin{plural} in the router image"
    if image is not None:
        return image, f"{why}: {image} must be built with `{command}` (or contain them)"
    try:
        tag = providers_tag(providers)
    except DeployerError as exc:
        return default_image(), (
            f"{why}, which the default image lacks: build one with `{command}` and pass it "
            f"as --image ({exc.message})"
        )
    return tag, (
        f"{why}: the image is {tag}; build it with `{command}`, add `--push REGISTRY` and pass "
        "the pushed ref as --image when the cluster pulls from a registry"
    )


def render(
    manifest: Manifest,
    *,
    image: str | None = None,
    namespace: str = "default",
    replicas: int = 2,
    max_replicas: int = 10,
    cpu: str = "250m",
    service_account: str | None = None,
    **_: Any,
) -> Rendered:
    if not 1 <= replicas <= max_replicas:
        raise UsageError(f"replicas {replicas} must be between 1 and max replicas {max_replicas}")
    notes: list[str] = []
    in_cluster = manifest.model_copy(
        update={"listen": manifest.listen.model_copy(update={"host": "0.0.0.0", "port": 8080})}
    )
    providers = needed_providers(manifest)
    if providers:
        image, note = recommended_image(providers, image)
        notes.append(note)
    cloud = sorted({b.auth.kind for b in manifest.backends if b.auth.kind in PLUGIN_AUTH})
    if cloud:
        notes.append(
            f"backends use {', '.join(cloud)} auth: give the pods cloud credentials (IRSA, "
            "Workload Identity, Azure workload identity) through --service-account"
        )
    if manifest.busy_poll.enabled:
        notes.append(
            "busy_poll keeps each pod's core busy while requests flow, so the CPU-based HPA "
            "reads the pods as saturated: give them --cpu 1 and fixed replicas, or turn it off"
        )
    app = f"{manifest.name}-router"
    text = Template(read_template("kubernetes.yaml.tmpl")).substitute(
        name=manifest.name,
        app=app,
        namespace=namespace,
        image=image or default_image(),
        replicas=replicas,
        max_replicas=max_replicas,
        cpu=cpu,
        automount="true" if service_account else "false",
        service_account=f"      serviceAccountName: {service_account}\n" if service_account else "",
        config=textwrap.indent(dump(in_cluster), "    "),
    )
    problems = validate(list(yaml.safe_load_all(text)))
    if problems:  # a bug in this renderer
        raise AssertionError("rendered Kubernetes objects are invalid: " + "; ".join(problems))
    return Rendered("kubernetes", text, f"{app}.yaml", [], notes)


def validate(docs: list[Any]) -> list[str]:
    """Structural checks of the rendered objects (kinds, names, selectors, security)."""
    problems = []
    kinds = [d.get("kind") for d in docs if isinstance(d, dict)]
    if kinds != list(KINDS):
        problems.append(f"expected {list(KINDS)}, got {kinds}")
    for doc in docs:
        if not isinstance(doc, dict):
            problems.append("a document is not a mapping")
            continue
        kind = doc.get("kind")
        if not doc.get("apiVersion") or not (doc.get("metadata") or {}).get("name"):
            problems.append(f"{kind}: apiVersion and metadata.name are required")
        if kind == "Deployment":
            spec = doc["spec"]
            labels = spec["template"]["metadata"]["labels"]
            selector = spec["selector"]["matchLabels"]
            if any(labels.get(k) != v for k, v in selector.items()):
                problems.append("Deployment: the selector does not match the pod labels")
            pod = spec["template"]["spec"]
            container = pod["containers"][0]
            context = container.get("securityContext", {})
            if not pod.get("securityContext", {}).get("runAsNonRoot"):
                problems.append("Deployment: pods must run as non-root (restricted profile)")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append("Deployment: allowPrivilegeEscalation must be false")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append("Deployment: capabilities must drop ALL")
        if kind == "ConfigMap":
            from deployer.router.manifest import parse

            parse(doc["data"]["router.yaml"], "ConfigMap router.yaml")
    return problems
