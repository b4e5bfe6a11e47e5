#!/usr/bin/env bash
# Renders every overlay in k8s/overlays with kubectl's kustomize and
# validates what comes out, offline: against the Kubernetes schemas
# (kubernetes-validate, strict: unknown fields fail), then against the rules
# of scripts/k8s/rules.py that schemas cannot express. The rendered
# manifests are left in target/k8s/<overlay>.yaml.
set -euo pipefail

cd "$(dirname "$0")/../.."

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh
ensure_k8s_tools

# The Kubernetes version whose schemas the manifests must satisfy: the
# oldest one they need (the preStop sleep action is 1.30+), as kubectl here.
kubernetes_version=1.32.0

mkdir -p target/k8s
for overlay in k8s/overlays/*/; do
    name="$(basename "$overlay")"
    rendered="target/k8s/$name.yaml"
    kubectl kustomize "$overlay" >"$rendered"
    kubernetes-validate --strict --quiet --kubernetes-version "$kubernetes_version" "$rendered"
    python3 scripts/k8s/rules.py "$rendered"
    echo "k8s/overlays/$name: $(grep -c '^kind:' "$rendered") objects valid ($rendered)"
done
