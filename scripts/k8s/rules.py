"""Rules for Herald's rendered Kubernetes manifests that schemas cannot check.

    python3 scripts/k8s/rules.py RENDERED.yaml

Exits 1 listing every broken rule. The rules are what k8s/README.md promises:
no Secret is ever committed and every one the pods read is documented; every
workload has probes, requests, a memory limit and a disruption budget; the
Herald images are set by the overlay and run as non-root; the edges' and
routers' grace periods cover their preStop sleep and their drain.
"""

import pathlib
import re
import sys

import yaml

# Seconds herald allows past the edge's drain to say goodbye on NATS.
EDGE_GOODBYE_S = 5
# The longest a draining router waits for a request (MAX_ROUTE_TIMEOUT).
ROUTER_DRAIN_S = 60
README = pathlib.Path(__file__).resolve().parents[2] / "k8s" / "README.md"


def main(path):
    objects = [o for o in yaml.safe_load_all(open(path)) if o]
    problems = []
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    names = lambda kind: {o["metadata"]["name"] for o in by_kind.get(kind, [])}
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in by_kind.get("ConfigMap", [])}
    readme = README.read_text()

    if by_kind.get("Secret"):
        problems.append("a Secret is rendered: secrets are created by hand, never committed")
    namespaces = names("Namespace")
    for o in objects:
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") not in namespaces:
            problems.append(f"{o['kind']}/{o['metadata']['name']} is not in a namespace the manifests create")

    budgets = [o["spec"]["selector"]["matchLabels"] for o in by_kind.get("PodDisruptionBudget", [])]
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in by_kind.get("HorizontalPodAutoscaler", [])}
    for workload in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        template = workload["spec"]["template"]
        labels = template["metadata"]["labels"]
        if not any(all(labels.get(k) == v for k, v in selector.items()) for selector in budgets):
            problems.append(f"{name} has no PodDisruptionBudget")
        if workload["kind"] == "Deployment" and workload["metadata"]["name"] not in scaled:
            problems.append(f"{name} has no HorizontalPodAutoscaler")
        for container in template["spec"]["containers"]:
            where = f"{name} container {container['name']}"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{where} has no {probe}")
            resources = container.get("resources", {})
            if "requests" not in resources or "memory" not in resources.get("limits", {}):
                problems.append(f"{where} needs resource requests and a memory limit")
            if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where} must set allowPrivilegeEscalation: false")
            for env in container.get("env", []):
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret and not re.search(rf"create secret generic {secret['name']}\b", readme):
                    problems.append(f"{where} reads Secret {secret['name']}, which k8s/README.md does not say how to create")
            if container.get("args", [None])[0] in ("edge", "router"):
                problems += herald_rules(where, workload, template, container, config_maps)
    return problems


def herald_rules(where, workload, template, container, config_maps):
    """The rules of a container running `herald edge` or `herald router`."""
    problems = []
    role = container["args"][0]
    if ":" not in container["image"] or container["image"].startswith("herald:"):
        problems.append(f"{where} has the base's placeholder image {container['image']!r}: the overlay sets it")
    if template["spec"].get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append(f"{where} must run as non-root")
    annotations = template["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true":
        problems.append(f"{where} has no Prometheus scrape annotations")
    settings = {}
    for source in container.get("envFrom", []):
        settings.update(config_maps.get(source["configMapRef"]["name"], {}))
    settings.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = template["spec"].get("terminationGracePeriodSeconds", 30)
    if role == "edge":
        drain = int(settings.get("HERALD_DRAIN_TIMEOUT_MS", 10000)) / 1000
        needed = pre_stop + drain + EDGE_GOODBYE_S
    else:
        needed = pre_stop + ROUTER_DRAIN_S
    if grace <= needed:
        problems.append(f"{where}: terminationGracePeriodSeconds {grace} must exceed preStop + drain ({needed:g} s)")
    if pre_stop == 0:
        problems.append(f"{where} needs a preStop sleep, so it leaves the endpoints before it stops accepting")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1])
    for problem in found:
        print(f"{sys.argv[1]}: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
