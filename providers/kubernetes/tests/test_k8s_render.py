"""Rendered manifests: valid for every Kubernetes minor we claim (kubernetes-validate, strict
mode: unknown fields fail), the restricted Pod Security profile, probes on the image's
routes, labels tying every object to project and version, and scaling left to the HPA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_support import VERSIONS, ProviderFactory, image_ref, release

from deployer.serving import routes
from deployer_kubernetes.templating import template_names

# A strict subset of the Gateway API v1 HTTPRoute schema (the fields deployer renders), after
# the standard-channel CRD: HTTPRoute is a CRD, so kubernetes-validate has no schema for it.
HTTPROUTE_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "httproute-v1-subset.schema.json").read_text()
)

OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "fixed replicas, NodePort, pull secret, min available": {
        "replicas": 3,
        "service_type": "NodePort",
        "image_pull_secret": "regcred",
        "pdb_min_available": "50%",
        "service_account": "model-server",
    },
    "autoscaling, ingress with TLS, LoadBalancer": {
        "autoscaling": {"min": 2, "max": 6, "target_cpu_percent": 60},
        "ingress": {"host": "iris.example.com", "class_name": "nginx", "tls_secret": "iris-tls"},
        "service_type": "LoadBalancer",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    },
    "http route": {
        "http_route": {
            "gateway": "infra/public",
            "hostnames": ["iris.example.com"],
            "section_name": "https",
        },
        "replicas": 1,
        "pdb_min_available": 1,
    },
}


def rendered(make_provider: ProviderFactory, **options: Any) -> list[dict[str, Any]]:
    return make_provider(**options).render(release(1))


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_every_manifest_validates_strictly_for_each_claimed_minor(
    make_provider: ProviderFactory, name: str
) -> None:
    manifests = rendered(make_provider, **OPTION_SETS[name])
    assert kubernetes_validate.utils.all_versions()  # the schemas ship with the package
    for manifest in manifests:
        if manifest["kind"] == "HTTPRoute":
            jsonschema.validate(manifest, HTTPROUTE_SCHEMA)  # a CRD: not in kubernetes-validate
            continue
        for version in VERSIONS:
            assert kubernetes_validate.validate(manifest, version, strict=True) == version


def test_strict_validation_catches_an_unknown_field(make_provider: ProviderFactory) -> None:
    deployment = next(m for m in rendered(make_provider) if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33", strict=True)


def test_apply_order_and_kinds(make_provider: ProviderFactory) -> None:
    kinds = [
        m["kind"]
        for m in rendered(
            make_provider, **OPTION_SETS["autoscaling, ingress with TLS, LoadBalancer"]
        )
    ]
    assert kinds == [
        "PodDisruptionBudget",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
    ]
    kinds = [m["kind"] for m in rendered(make_provider, **OPTION_SETS["http route"])]
    assert kinds == ["PodDisruptionBudget", "Service", "Deployment", "HTTPRoute"]


def test_pods_meet_the_restricted_profile(make_provider: ProviderFactory) -> None:
    deployment = next(m for m in rendered(make_provider) if m["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    assert not any("hostPath" in v for v in pod["volumes"])
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_probes_requests_and_limits(make_provider: ProviderFactory) -> None:
    deployment = next(
        m for m in rendered(make_provider, startup_seconds=600) if m["kind"] == "Deployment"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": routes.OIP_READY, "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": routes.OIP_LIVE, "port": "http"}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == routes.OIP_READY
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 600  # slow model loads
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }


def test_every_object_carries_project_target_and_version(make_provider: ProviderFactory) -> None:
    the_release = release(1)
    for manifest in make_provider(
        **OPTION_SETS["autoscaling, ingress with TLS, LoadBalancer"]
    ).render(the_release):
        labels = manifest["metadata"]["labels"]
        assert labels["deployer-project"] == "iris"
        assert labels["deployer-target"] == "k8s"
        assert labels["deployer-version"] == the_release.version
        assert labels["app.kubernetes.io/managed-by"] == "deployer"
        assert manifest["metadata"]["namespace"] == "default"
    deployment = next(m for m in make_provider().render(the_release) if m["kind"] == "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["deployer-version"] == the_release.version
    # the selector is immutable: it never names the version
    assert "deployer-version" not in deployment["spec"]["selector"]["matchLabels"]


def test_an_hpa_owns_replicas(make_provider: ProviderFactory) -> None:
    manifests = rendered(make_provider, autoscaling={"min": 3, "max": 9})
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    hpa = next(m for m in manifests if m["kind"] == "HorizontalPodAutoscaler")
    assert "replicas" not in deployment["spec"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris-k8s",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    fixed = next(m for m in rendered(make_provider, replicas=4) if m["kind"] == "Deployment")
    assert fixed["spec"]["replicas"] == 4
    assert not any(
        m["kind"] == "HorizontalPodAutoscaler" for m in rendered(make_provider, replicas=4)
    )


def test_render_takes_an_image_reference_too(make_provider: ProviderFactory) -> None:
    provider = make_provider(registry="registry.example.com/team/iris")
    from_release = provider.render(release(1))
    image = from_release[2]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example.com/team/iris:{release(1).version}"
    ref = image_ref(7)
    by_ref = provider.render(ref)
    assert by_ref[2]["spec"]["template"]["spec"]["containers"][0]["image"] == ref
    assert by_ref[2]["metadata"]["labels"]["deployer-version"] == ref.split(":")[-1][:12]
    assert (
        provider.render("registry.example.com/iris:v3")[0]["metadata"]["labels"]["deployer-version"]
        == "v3"
    )


def test_render_yaml_and_files_round_trip(make_provider: ProviderFactory, tmp_path: Path) -> None:
    provider = make_provider(autoscaling={"min": 2, "max": 4})
    text = provider.render_yaml(release(1))
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert documents == provider.render(release(1))
    files = provider.write_manifests(release(1), tmp_path / "out")
    assert [f.name for f in files] == [
        "01-poddisruptionbudget-iris-k8s.yaml",
        "02-service-iris-k8s.yaml",
        "03-deployment-iris-k8s.yaml",
        "04-horizontalpodautoscaler-iris-k8s.yaml",
    ]
    assert [yaml.safe_load(f.read_text()) for f in files] == documents


def test_templates_ship_inside_the_package() -> None:
    assert template_names() == [
        "deployment.yaml",
        "hpa.yaml",
        "httproute.yaml",
        "ingress.yaml",
        "job.yaml",
        "pdb.yaml",
        "service.yaml",
    ]


def test_long_names_fit_kubernetes_limits(make_provider: ProviderFactory) -> None:
    provider = make_provider(
        target="a-very-long-target-name-for-production-eu-west",
        project="an-unusually-long-project-name",
    )
    names = {m["metadata"]["name"] for m in provider.render(release(1))}
    assert all(len(n) <= 56 for n in names)
    assert len(provider.names.canary) <= 63
    assert (
        provider.names.base
        != make_provider(
            target="a-very-long-target-name-for-production-eu-wes",
            project="an-unusually-long-project-name",
        ).names.base
    )


def test_canary_manifests_validate(make_provider: ProviderFactory) -> None:
    provider = make_provider(**OPTION_SETS["http route"])
    from deployer_kubernetes.manifests import Version

    version = Version(image_ref(2), release(2).version, image_ref(1), release(1).version)
    canary = provider.renderer.deployment(version, "canary", 1)
    service = provider.renderer.service(release(2).version, "canary")
    for manifest in (canary, service):
        for minor in VERSIONS:
            kubernetes_validate.validate(manifest, minor, strict=True)
    assert canary["metadata"]["name"] == "iris-k8s-canary"
    assert canary["spec"]["selector"]["matchLabels"]["deployer-track"] == "canary"
    route = provider.renderer.http_route(release(1).version, canary_weight=10)
    jsonschema.validate(route, HTTPROUTE_SCHEMA)
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"iris-k8s": 90, "iris-k8s-canary": 10}


def test_render_needs_no_cluster_and_no_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployer.providers import ProjectInfo, Target
    from deployer_kubernetes.provider import KubernetesProvider

    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    target = Target("prod", "kubernetes", {"provider": "kubernetes", "namespace": "ml"})
    provider = KubernetesProvider(target, ProjectInfo("iris"))
    manifests = provider.render(image_ref(1))
    assert {m["metadata"]["namespace"] for m in manifests} == {"ml"}
    assert provider.cluster._api_client is None  # never connected
