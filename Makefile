# kubedrill: failure drills for Kubernetes HA control planes.
# Everything runs as root (network namespaces, iptables). `make help` lists the targets.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
KUBEDRILL := $(VENV)/bin/kubedrill
PYTEST := $(PY) -m pytest -p no:cacheprovider
REPORTS ?= reports
APT_PACKAGES := iproute2 iptables procps psmisc haproxy keepalived nginx libnginx-mod-stream curl \
  libnetfilter-queue-dev gcc python3-dev chromium \
  podman runc netavark aardvark-dns busybox-static openssh-server debootstrap
# Only for promtool: without its recommends (node-exporter), which would run as a service.
APT_NO_RECOMMENDS := prometheus

.PHONY: help setup system-deps python-deps container-engine binaries lab-up lab-down lab-status test lint \
        unit integration drills drill-etcd drill-disk drill-disk-failpoints drill-maintenance drill-partition drill-control-plane drill-external gameday gameday-dry-run ci bench bench-lab heal clean drill-certs drill-wan drill-wan-all drill-zone drill-edge drill-upgrade gameday-minors drill-lb drill-ha-stack \
        report report-tool report-check kind-image kind-up kind-down drill-kind drill-kind-ssh test-kind \
        test-all

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

setup: system-deps python-deps binaries report-tool container-engine ## install everything on a fresh machine (root)

system-deps: ## Debian packages: iproute2, iptables, haproxy, NFQUEUE headers, chromium, promtool, podman, sshd
	@if ! dpkg -s $(APT_PACKAGES) $(APT_NO_RECOMMENDS) >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(APT_NO_RECOMMENDS); \
	fi

container-engine: system-deps ## podman drop-in for the kind target's tests (runc, ulimits)
	@install -D -m 0644 fixtures/container-engine/kubedrill.conf /etc/containers/containers.conf.d/kubedrill.conf

python-deps: ## virtualenv in .venv with kubedrill and its dev tools
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev,nfqueue]'

binaries: ## build and cache pinned etcd (and etcd with gofail failpoints), Kubernetes and kwok (~/.cache/kubedrill)
	@$(KUBEDRILL) build --topology stacked
	@$(KUBEDRILL) build --config fixtures/labs/failpoints-etcd.yaml

report-tool: ## pinned Allure 3 from npm, cached in ~/.cache/kubedrill (needs node and npm)
	@$(KUBEDRILL) report --install-only

report: ## HTML report: the scorecard $(REPORTS)/html/index.html, Allure's details in html/allure/
	@$(KUBEDRILL) report --results $(REPORTS)/allure-results --output $(REPORTS)/html \
	  --history $(REPORTS)/history.jsonl --summary $(REPORTS)/summary.json \
	  --scorecard-history $(REPORTS)/scorecard-history.jsonl

report-check: ## open the game day's report in headless chromium: the scorecard, every drill, its chart
	@KUBEDRILL_REPORT=$(REPORTS)/html/allure/index.html KUBEDRILL_SUMMARY=$(REPORTS)/summary.json \
	  KUBEDRILL_SCORECARD=$(REPORTS)/html/index.html \
	  $(PYTEST) tests/integration/test_report_browser.py -q -k real_game_day

kind-image: ## kind node image built here, no registry (localhost/kubedrill/node:<k8s>-<hash>; FORCE=1 rebuilds)
	@$(PY) -m kubedrill.targets.kind.image build $(if $(FORCE),--force)

lab-up: ## bring the lab up (TOPOLOGY=stacked|external|etcd, MEMBERS=3|5|7)
	@$(KUBEDRILL) lab up $(if $(TOPOLOGY),--topology $(TOPOLOGY)) $(if $(MEMBERS),--members $(MEMBERS))

lab-down: ## remove every trace of the lab at once (refused while a drill runs against it)
	@$(KUBEDRILL) lab down

lab-status: ## hosts, processes and the etcd leader
	@$(KUBEDRILL) lab status

lint: ## ruff and mypy --strict
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy

unit: ## unit tests (pure logic, no root)
	@$(PYTEST) tests/unit -q

# The real-kind tests run in the kind tier (test-kind), against its cluster; the one that makes
# a whole HA cluster of its own (kind up/down for real) runs in test-all.
KIND_TESTS := tests/integration/test_kind_cluster.py tests/integration/test_ssh_kind.py
KIND_UP_TEST := tests/integration/test_kind_up_podman.py

integration: ## integration tests against real labs, sshd, podman, chromium (root; kind's in test-kind; FULL_MATRIX=1: every fault x exit path)
	@KUBEDRILL_SSH_TOPOLOGY=stacked KUBEDRILL_FULL_MATRIX=$(if $(FULL_MATRIX),1,0) \
	  $(PYTEST) tests/integration -q --durations=15 \
	  $(foreach f,$(KIND_TESTS) $(KIND_UP_TEST),--ignore $(f))

# Drill families that need a lab of their own (LB pair, zones, an edge site, regions, the
# maintenance fixtures) run in their own targets, not against the default stacked lab.
OWN_LAB_DRILLS := maintenance or wan or zone or edge or lb
# make test leaves the certificate drills to drill-ha-stack (they run there, on the whole stack).
DRILLS_ELSEWHERE ?=
drills: ## every drill against the (stacked) lab, with reports in reports/ (the families on labs of their own: drill-ha-stack, drill-wan, drill-edge)
	@$(PYTEST) drills/ -v -m "not ($(OWN_LAB_DRILLS) $(DRILLS_ELSEWHERE))"

# The representative tier runs one of each where a family has variants: on the whole HA stack
# (drill-ha-stack) the zone outage by power (the network cut in test-all); the LB drills on
# the HAProxy pair there, nginx's pair in test-all (drill-lb).
LB_LABS ?= lb-pair lb-nginx
ZONE_DRILLS ?=
HA_STACK_DRILLS ?=
test: DRILLS_ELSEWHERE = or certs
test: HA_STACK_DRILLS = -k "not network"
test: lint unit integration drills drill-disk drill-disk-failpoints drill-ha-stack drill-wan report report-check test-kind ## the representative tier (what CI runs): every target, every drill family
	@echo "make test: done (lab drills, the whole HA stack, report, real kind cluster: drills through the Docker API and through SSH)"

test-all: ## everything: make test with every drill on kind and through SSH, plus the external 5-member etcd drills, the nginx LB pair, the edge drills, the WAN drills at every delay
	@$(MAKE) --no-print-directory test KIND_ALL=1 FULL_MATRIX=1 HA_STACK_DRILLS= DRILLS_ELSEWHERE=
	@$(MAKE) --no-print-directory drill-lb LB_LABS=lb-nginx
	@$(MAKE) --no-print-directory drill-external
	@$(MAKE) --no-print-directory drill-wan-all
	@$(MAKE) --no-print-directory drill-edge
	@$(PYTEST) -q $(KIND_UP_TEST)

drill-etcd: ## etcd drills (pytest drills/ -m etcd)
	@$(PYTEST) drills/ -m etcd -v

drill-partition: ## network partition and latency drills
	@$(PYTEST) drills/ -m partition -v

drill-external: ## etcd drills on the external topology with 5 etcd members
	@$(PYTEST) drills/ -m etcd -v --lab-config fixtures/labs/external-5.yaml \
	  --kubedrill-reports $(REPORTS)/external --alluredir $(REPORTS)/external/allure-results \
	  --junitxml $(REPORTS)/external/junit.xml

drill-wan: ## multi-region drills at one WAN delay (25 ms one way): etcd flags seed vs advised, a region dark, and the edge site cut off (fixtures/labs/regions.yaml)
	@KUBEDRILL_WAN_DELAYS=25 $(PYTEST) drills/test_wan.py drills/test_edge.py -m "wan or edge" -v --lab-config fixtures/labs/regions.yaml \
	  --kubedrill-reports $(REPORTS)/wan --alluredir $(REPORTS)/wan/allure-results \
	  --junitxml $(REPORTS)/wan/junit.xml

drill-wan-all: ## the multi-region drills at every WAN delay (25, 50, 75 ms one way): the README's tuning table
	@KUBEDRILL_WAN_DELAYS=25,50,75 $(PYTEST) drills/test_wan.py -m wan -v --lab-config fixtures/labs/regions.yaml \
	  --kubedrill-reports $(REPORTS)/wan --alluredir $(REPORTS)/wan/allure-results \
	  --junitxml $(REPORTS)/wan/junit.xml

drill-disk: ## the quota drill on its own small-quota etcd lab (fixtures/labs/quota-etcd.yaml)
	@$(PYTEST) drills/ -m disk -v --lab-config fixtures/labs/quota-etcd.yaml \
	  --kubedrill-reports $(REPORTS)/disk --alluredir $(REPORTS)/disk/allure-results \
	  --junitxml $(REPORTS)/disk/junit.xml

drill-disk-failpoints: ## slow and crashing disks on an etcd built with gofail failpoints (fixtures/labs/failpoints-etcd.yaml; ~2 min)
	@$(PYTEST) drills/test_disk_failpoints.py -m disk -v --lab-config fixtures/labs/failpoints-etcd.yaml \
	  --kubedrill-reports $(REPORTS)/disk-failpoints --alluredir $(REPORTS)/disk-failpoints/allure-results \
	  --junitxml $(REPORTS)/disk-failpoints/junit.xml

drill-upgrade: ## in-place upgrade to the next minor (v1.36.3 -> v1.37.2) host by host, every failed request listed (fixtures/labs/upgrade.yaml)
	@$(PYTEST) drills/test_upgrade.py -m maintenance -v --lab-config fixtures/labs/upgrade.yaml \
	  --kubedrill-reports $(REPORTS)/upgrade --alluredir $(REPORTS)/upgrade/allure-results \
	  --junitxml $(REPORTS)/upgrade/junit.xml

drill-maintenance: ## rolling restarts (control plane, then etcd leader last) with zero failed requests, on fixtures/labs/maintenance-fixed.yaml
	@$(PYTEST) drills/test_maintenance.py -m maintenance -v --lab-config fixtures/labs/maintenance-fixed.yaml \
	  --kubedrill-reports $(REPORTS)/maintenance --alluredir $(REPORTS)/maintenance/allure-results \
	  --junitxml $(REPORTS)/maintenance/junit.xml

drill-zone: ## zone outage drills (power and network) on a lab in 3 zones (fixtures/labs/zones.yaml; ~6 min)
	@$(PYTEST) drills/test_zone.py -m zone $(ZONE_DRILLS) -v --lab-config fixtures/labs/zones.yaml \
	  --kubedrill-reports $(REPORTS)/zone --alluredir $(REPORTS)/zone/allure-results \
	  --junitxml $(REPORTS)/zone/junit.xml

drill-edge: ## edge partition drills (past and short of the toleration) on a lab with an edge site (fixtures/labs/edge.yaml; ~4 min)
	@$(PYTEST) drills/test_edge.py -m edge -v --lab-config fixtures/labs/edge.yaml \
	  --kubedrill-reports $(REPORTS)/edge --alluredir $(REPORTS)/edge/allure-results \
	  --junitxml $(REPORTS)/edge/junit.xml

drill-ha-stack: ## the seed's whole HA stack on one lab (3 zones, a keepalived HAProxy pair, the zero-failure restart settings): LB, zone, maintenance and certificate drills in one pytest (fixtures/labs/ha-stack.yaml; HA_STACK_DRILLS='-k ...' picks)
	@$(PYTEST) drills/ -m "lb or zone or maintenance or certs" $(HA_STACK_DRILLS) -v --lab-config fixtures/labs/ha-stack.yaml \
	  --kubedrill-reports $(REPORTS)/ha-stack --alluredir $(REPORTS)/ha-stack/allure-results \
	  --junitxml $(REPORTS)/ha-stack/junit.xml

drill-lb: ## LB pair drills (keepalived VIP): HAProxy pair then nginx pair (fixtures/labs/lb-pair.yaml, lb-nginx.yaml; LB_LABS picks)
	@status=0; for lab in $(LB_LABS); do \
	  $(PYTEST) drills/test_lb.py -m lb -v --lab-config fixtures/labs/$$lab.yaml \
	    --kubedrill-reports $(REPORTS)/$$lab --alluredir $(REPORTS)/$$lab/allure-results \
	    --junitxml $(REPORTS)/$$lab/junit.xml || status=1; \
	done; exit $$status

drill-control-plane: ## apiserver, controller-manager, scheduler and node drills
	@$(PYTEST) drills/ -m "apiserver or controller or scheduler or node" -v

drill-certs: ## certificate drills: rotate every control-plane cert one host at a time (no failed request), one that expires (~15 min on 2 loaded cores, most of it promtool)
	@$(PYTEST) drills/test_certs.py -m certs -v --kubedrill-reports $(REPORTS)/certs \
	  --alluredir $(REPORTS)/certs/allure-results --junitxml $(REPORTS)/certs/junit.xml

gameday: setup ## set up, bring the stacked lab up, run every drill (the seed's script too), write reports/ (then: make report)
	@$(KUBEDRILL) lab up --topology stacked
	@$(PYTEST) drills/ -v -m "not ($(OWN_LAB_DRILLS))" --lab-keep; status=$$?; \
	  echo "reports: $(REPORTS)/allure-results, $(REPORTS)/junit.xml, $(REPORTS)/summary.json"; \
	  exit $$status

gameday-minors: setup ## the scheduled game day: every drill on the default and the previous Kubernetes minor, one report side by side (deploy/gameday.sh)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" REPORTS_ROOT="$(CURDIR)/$(REPORTS)/gameday" \
	  KUBEDRILL_HOME="$(CURDIR)" deploy/gameday.sh

gameday-dry-run: setup ## what the game day would do, drill by drill, step by step; injects and writes nothing
	@$(KUBEDRILL) lab up --topology stacked
	@$(PYTEST) drills/ --dry-run --lab-keep -q --kubedrill-reports $(REPORTS)/dry-run \
	  --alluredir $(REPORTS)/dry-run/allure-results --junitxml $(REPORTS)/dry-run/junit.xml

ci: setup test ## what CI runs: set up from nothing, then the representative tier (make test)

# kubedrill bench: each drill BENCH_RUNS times; its table (p50/p95/max, pass rate, error against
# the cluster's own record, runner CPU) is the one in the README. Labs of their own, so a lab
# you keep up is left alone.
BENCH_RUNS ?= 10
BENCH_CP_RUNS ?= 5
BENCH_DIR ?= $(REPORTS)/bench
# A drill that fails in a run is a figure of the table (its pass rate), not a broken bench: each
# part runs (exit 1 says so), and the target fails at the end if any part did.
# The lab's own up/down table (3/5/7 etcd members, stacked 3/5, external): BENCH_LAB_RUNS cycles
# per etcd lab, BENCH_LAB_KUBE_RUNS per Kubernetes lab; a lab that leaves anything fails the part.
BENCH_LAB_RUNS ?= 5
BENCH_LAB_KUBE_RUNS ?= 3
bench: ## lab up/down table (3/5/7 members, stacked, external); kill/isolate/pause the etcd leader x10 on the etcd and stacked labs, control-plane drills x5 (~27 min)
	@status=0; \
	$(PY) benchmarks/lab_lifecycle.py --runs $(BENCH_LAB_RUNS) --kube-runs $(BENCH_LAB_KUBE_RUNS) \
	  --json $(BENCH_DIR)/lab-lifecycle.json || status=1; \
	$(KUBEDRILL) bench --runs $(BENCH_RUNS) --reports $(BENCH_DIR)/etcd-lab -- \
	  --lab-config fixtures/labs/bench-etcd.yaml || status=1; \
	$(KUBEDRILL) bench --runs $(BENCH_RUNS) --reports $(BENCH_DIR)/stacked-lab -- \
	  --lab-config fixtures/labs/bench-stacked.yaml || status=1; \
	$(KUBEDRILL) bench --runs $(BENCH_CP_RUNS) --reports $(BENCH_DIR)/stacked-control-plane \
	  -k "test_stop_apiserver_behind_load_balancer or test_kill_controller_manager_leader or test_kill_scheduler_leader" \
	  -- --lab-config fixtures/labs/bench-stacked.yaml || status=1; \
	exit $$status

bench-lab: ## lab up/down table, failover measurement error with a bare runner, poll interval
	@$(PY) benchmarks/run.py

# The real kind cluster (issue: every drill on a real kubelet). KIND_NAME names it; the node image
# is built here (kind-image) on first use.
KIND_NAME ?= kubedrill
KIND_ALLOW := --allow-target 'kind/$(KIND_NAME)'
# Budgets measured on kubeadm's stacked topology (README: the lab, kind and SSH compared): a
# member stopped by moving its manifest comes back only after kubelet's mirror-pod calls to its
# own apiserver time out (that apiserver's only etcd is the stopped one: 64-90 s), and that
# apiserver's liveness probe has meanwhile restarted it into crash-loop back-off (minutes).
KIND_BUDGETS ?= --budget recovery=180s --budget settle=300s
KIND_SSH_DIR := /var/lib/kubedrill/kind/$(KIND_NAME)/ssh
# What `make test` (CI) runs on kind: every drill family once (etcd: kill and isolate the
# leader; stop kube-apiserver, a Lease holder kill, drain, a whole-node pause). The game day
# (3.4 min on kind, its drills all covered here), a paused leader and peer latency run on the
# lab in CI. Empty means every drill: `make test-all` runs them all (the game day, quorum
# loss and a stopped follower too), on kind and through SSH.
KIND_CI_DRILLS := -k "kill_leader or isolate_leader or stop_apiserver or kill_scheduler \
  or drain or pause_etcd_leader_node"
# The families on labs of their own (OWN_LAB_DRILLS) run in their own targets, on the lab.
KIND_DRILLS ?= -m "not ($(OWN_LAB_DRILLS))"
# Drills through SSH on the kind nodes: in CI the etcd leader killed (the manifest-move path
# a stop takes there is tests/integration/test_ssh_kind.py's); every etcd and control-plane
# drill in test-all.
KIND_SSH_CI_DRILLS := -k "test_kill_leader"
KIND_SSH_DRILLS ?= -m "(etcd or apiserver or controller or scheduler) and not node"

kind-up: ## create the HA kind cluster KIND_NAME (3 control planes + worker) from kind-configs/ha.yaml
	@$(KUBEDRILL) kind up --name $(KIND_NAME) --config kind-configs/ha.yaml

kind-down: ## delete the kind cluster KIND_NAME and everything kubedrill made for it
	@$(KUBEDRILL) kind down --name $(KIND_NAME)

drill-kind: ## every drill on the kind cluster KIND_NAME (Docker API), reports in $(REPORTS)/kind
	@$(PYTEST) drills/ -v $(KIND_DRILLS) --target kind --kind-cluster $(KIND_NAME) $(KIND_ALLOW) $(KIND_BUDGETS) \
	  --kubedrill-reports $(REPORTS)/kind --alluredir $(REPORTS)/kind/allure-results \
	  --junitxml $(REPORTS)/kind/junit.xml

drill-kind-ssh: ## etcd and control-plane drills through SSH on the kind nodes (real kubelet)
	@$(KUBEDRILL) kind inventory --name $(KIND_NAME)
	@$(PYTEST) drills/ -v $(KIND_SSH_DRILLS) $(KIND_BUDGETS) --target ssh \
	  --inventory $(KIND_SSH_DIR)/inventory.yaml \
	  --allow-target 'ssh/kind-$(KIND_NAME)' --kubedrill-reports $(REPORTS)/kind-ssh \
	  --alluredir $(REPORTS)/kind-ssh/allure-results --junitxml $(REPORTS)/kind-ssh/junit.xml

test-kind: ## kind tier (CI's drill subset; KIND_ALL=1: every drill): up, real-kind tests, drills via Docker API and SSH, down, leftovers check
	@mkdir -p $(REPORTS)
	@$(PY) -m kubedrill.targets.kind.host_snapshot save $(REPORTS)/kind-host-before.json
	@$(MAKE) --no-print-directory kind-up; status=$$?; \
	  if [ $$status -eq 0 ]; then \
	    KUBEDRILL_REQUIRE_KIND=1 KUBEDRILL_KIND_NAME=$(KIND_NAME) $(PYTEST) -q $(KIND_TESTS) \
	      || status=1; \
	    $(MAKE) --no-print-directory drill-kind $(if $(KIND_ALL),,KIND_DRILLS='$(KIND_CI_DRILLS)') || status=1; \
	    $(MAKE) --no-print-directory drill-kind-ssh \
	      $(if $(KIND_ALL),,KIND_SSH_DRILLS='$(KIND_SSH_CI_DRILLS)') || status=1; \
	  fi; \
	  $(KUBEDRILL) heal || status=1; \
	  $(MAKE) --no-print-directory kind-down || status=1; \
	  $(PY) -m kubedrill.targets.kind.host_snapshot check $(REPORTS)/kind-host-before.json || status=1; \
	  exit $$status

heal: ## undo faults left by a killed run
	@$(KUBEDRILL) heal

clean: ## remove generated reports (keeps $(REPORTS)/history.jsonl and scorecard-history.jsonl, the trends)
	@rm -rf $(REPORTS)/allure-results $(REPORTS)/junit.xml $(REPORTS)/summary.json $(REPORTS)/html
