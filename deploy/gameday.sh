#!/usr/bin/env bash
# The entry point of the scheduled game day (of the CronJob, and of `make gameday-minors`).
#
# Default (GAMEDAY_TARGET=lab): every drill on a stacked lab once per Kubernetes minor, the
# default and the previous one (`kubedrill lab versions --gameday`; KUBERNETES_VERSIONS
# overrides, space-separated, the first being the one whose trend is kept), each with the etcd
# it is paired with, then one HTML report showing the minors side by side. The lab is named
# LAB_NAME (default gameday) on LAB_SUBNET (default 10.213.7.0/24), brought up and down by
# each minor's pytest run.
# GAMEDAY_TARGET=kind: every drill against the kind cluster named by KIND_CLUSTER (reached
# through the Docker API at DOCKER_HOST), on the one minor its node image has.
#
# Reports and the trend history live in REPORTS_ROOT (default /reports), one directory per run
# plus `latest`. Exits non-zero if any minor's drills failed.
set -uo pipefail
root="${REPORTS_ROOT:-/reports}"
run="$(date -u +%Y%m%dT%H%M%SZ)"
out="${root}/${run}"
mkdir -p "${out}"
cd "${KUBEDRILL_HOME:-/opt/kubedrill}" || exit 2
kubedrill heal || true # a previous run killed mid-fault (node restart, OOM) left undo records

if [ "${GAMEDAY_TARGET:-lab}" = kind ]; then
  cluster="${KIND_CLUSTER:?set KIND_CLUSTER to the name of the kind cluster}"
  pytest -p no:cacheprovider drills/ -v -m "not (maintenance or wan or zone or edge or lb)" --target kind --kind-cluster "${cluster}" \
    --allow-target "kind/${cluster}" --kubedrill-reports "${out}" \
    --alluredir "${out}/allure-results" --junitxml "${out}/junit.xml"
  status=$?
  kubedrill report --results "${out}/allure-results" --output "${out}/html" \
    --summary "${out}/summary.json" --history "${root}/history.jsonl" \
    --scorecard-history "${root}/scorecard-history.jsonl" || true
else
  read -r -a minors <<<"${KUBERNETES_VERSIONS:-$(kubedrill lab versions --gameday)}"
  status=0
  for version in "${minors[@]}"; do
    dir="${out}/${version}"
    mkdir -p "${dir}"
    printf 'lab:\n  name: %s\n  topology: stacked\n  subnet: %s\n  kubernetes:\n    version: %s\n' \
      "${LAB_NAME:-gameday}" "${LAB_SUBNET:-10.213.7.0/24}" "${version}" >"${dir}/lab.yaml"
    started=${SECONDS}
    pytest -p no:cacheprovider drills/ -v -m "not (maintenance or wan or zone or edge or lb)" --lab-config "${dir}/lab.yaml" \
      --kubedrill-reports "${dir}" --alluredir "${dir}/allure-results" \
      --junitxml "${dir}/junit.xml" || status=1
    echo "game day on ${version}: $((SECONDS - started)) s" | tee -a "${out}/times.txt"
  done
  versus=()
  for version in "${minors[@]:1}"; do
    versus+=(--versus "${out}/${version}/summary.json")
  done
  # The Allure details are those of the first (default) minor, and the results of each minor
  # stay in its directory. The scorecard compares them drill by drill.
  kubedrill report --results "${out}/${minors[0]}/allure-results" --output "${out}/html" \
    --summary "${out}/${minors[0]}/summary.json" "${versus[@]}" \
    --history "${root}/history.jsonl" \
    --scorecard-history "${root}/scorecard-history.jsonl" || true
fi
ln -sfn "${out}" "${root}/latest"
exit "${status}"
