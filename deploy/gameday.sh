#!/usr/bin/env bash
# The CronJob's entry point: run every drill against the kind cluster named by KIND_CLUSTER
# (reached through the Docker API at DOCKER_HOST), then write the HTML report. Reports and the
# trend history live in /reports (a volume), one directory per run plus `latest`.
set -uo pipefail
cluster="${KIND_CLUSTER:?set KIND_CLUSTER to the kind cluster's name}"
run="$(date -u +%Y%m%dT%H%M%SZ)"
out="/reports/${run}"
mkdir -p "${out}"
cd /opt/kubedrill
kubedrill heal || true # a previous run killed mid-fault (node restart, OOM) left undo records
pytest -p no:cacheprovider drills/ -v --target kind --kind-cluster "${cluster}" \
  --allow-target "kind/${cluster}" --kubedrill-reports "${out}" \
  --alluredir "${out}/allure-results" --junitxml "${out}/junit.xml"
status=$?
kubedrill report --results "${out}/allure-results" --output "${out}/html" \
  --history /reports/history.jsonl || true
ln -sfn "${out}" /reports/latest
exit "${status}"
