# Every target runs on Node.js 24, whatever `node` the calling shell has: .local/node-bin/node
# points at the Node 24 that e2e/toolchain/node provides, and it comes first on PATH, so npm,
# npx, tsc and eslint all run on it.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

NODE_BIN_DIR := $(CURDIR)/.local/node-bin
export PATH := $(NODE_BIN_DIR):$(CURDIR)/node_modules/.bin:/usr/local/go/bin:$(PATH)
KUBECONFIG_LOCAL := $(CURDIR)/.local/kubeconfig
KUBECTL := $(CURDIR)/.local/bin/kubectl --kubeconfig $(KUBECONFIG_LOCAL)
RESULTS := $(CURDIR)/.local/test-results
RUN_TESTS := e2e/toolchain/run-tests.sh

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-18s %s\n", $$1, $$2 }'

$(NODE_BIN_DIR)/node: e2e/toolchain/node
	@mkdir -p $(NODE_BIN_DIR)
	@ln -sf "$$(e2e/toolchain/node -p process.execPath)" $@

node_modules/.installed: package.json package-lock.json | $(NODE_BIN_DIR)/node
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: node_modules/.installed ## install Node 24 (if needed) and the npm dependencies

.PHONY: manifests
manifests: deps ## regenerate the CRD, its kustomize and Helm copies and the API types from src/api/schema.ts
	node src/api/generate.ts
	prettier --log-level warn --write src/api
	config/helm/sync.sh

.PHONY: build
build: deps ## bundle the operator as the image runs it: dist/bin/ssj-operator.mjs and dist/migrations (ADR 0017)
	node src/build/bundle.ts

.PHONY: lint
lint: deps ## type-check, lint and check formatting
	tsc --noEmit -p tsconfig.json
	eslint --max-warnings 0 .
	prettier --check --log-level warn .

.PHONY: fmt
fmt: deps ## format the code
	prettier --write --log-level warn .
	eslint --fix .

.PHONY: cluster-up
cluster-up: $(NODE_BIN_DIR)/node ## start etcd, kube-apiserver and kube-controller-manager on loopback
	e2e/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## stop the local cluster and its node; leaves no process behind
	e2e/cluster/down.sh

.PHONY: node-up
node-up: cluster-up ## add a real node (containerd, runc, kubelet, kube-scheduler) so Pods run; e2e/README.md
	e2e/node/up.sh

.PHONY: node-down
node-down: ## stop the node and remove what it left on the host (the control plane stays)
	e2e/node/down.sh

.PHONY: postgres
postgres: deps ## make sure PostgreSQL answers (DATABASE_URL, else 127.0.0.1:5432, started or installed)
	e2e/postgres/ensure.sh

.PHONY: install
install: cluster-up ## install the CRD into the local cluster
	$(KUBECTL) apply --server-side --force-conflicts -f crds/
	@# kubectl wait fails, rather than waits, while the new CRD has no status conditions yet.
	@for i in $$(seq 1 30); do \
	  $(KUBECTL) wait --for condition=Established --timeout=60s crd/singletonjobs.ssj.dev 2>/dev/null && exit 0; sleep 1; \
	done; echo "the CRD did not become Established" >&2; exit 1

.PHONY: deploy
deploy: deps ## install or upgrade config/default (KUBECONFIG, else the local cluster) and check the fence
	e2e/deploy/deploy.sh

.PHONY: undeploy
undeploy: deps ## remove everything config/default installed, Pod finalizers included (docs/deploying.md)
	e2e/deploy/undeploy.sh

.PHONY: run
run: deps ## run the operator against .local/kubeconfig
	KUBECONFIG=$(KUBECONFIG_LOCAL) exec node src/main.ts --leader-election-namespace ssj-system

.PHONY: dev
dev: deps install node-up ## local cluster with a node, the CRD, a sample, and the operator in the foreground
	$(KUBECTL) apply -f config/samples/heartbeat-seconds.yaml
	@echo "try: .local/bin/kubectl --kubeconfig .local/kubeconfig get ssj,pods -w"
	KUBECONFIG=$(KUBECONFIG_LOCAL) exec node src/main.ts --leader-election-namespace ssj-system

.PHONY: test-unit
test-unit: deps ## unit tests (pure logic, no I/O)
	$(RUN_TESTS) unit 'test/unit/**/*.test.ts'

.PHONY: test-explore
test-explore: deps ## property tests with fresh random seeds, 1,000 runs per property (not part of make test)
	SSJ_PROPERTY_SEED=random SSJ_PROPERTY_RUNS=$${SSJ_PROPERTY_RUNS:-1000} node --test test/unit/controller/properties.test.ts

.PHONY: tools
tools: ## build the pinned helm and promtool the tests use (once per machine, cached in ~/.cache/ssj-operator/tools); install runc
	e2e/toolchain/go-tool.sh helm >/dev/null
	e2e/toolchain/go-tool.sh promtool >/dev/null
	@command -v runc >/dev/null || { echo "installing Debian's runc (the image test runs the production tree in it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null; }

.PHONY: test-integration
test-integration: deps cluster-up node-down postgres tools ## integration tests against the local cluster (no node) and PostgreSQL
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(RUN_TESTS) integration 'test/integration/**/*.test.ts'

.PHONY: test-e2e
test-e2e: deps cluster-up node-down postgres ## end-to-end tests: the operator as users run it (simulated kubelet, no node)
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(RUN_TESTS) e2e 'e2e/**/*.e2e.ts'

.PHONY: test-node
test-node: deps node-up postgres ## end-to-end tests on the real node: Pods that really run (e2e/node)
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(RUN_TESTS) node 'e2e/node/**/*.node.ts'

.PHONY: test
test: ## everything: lint, unit, integration, end-to-end, the real node, then one summary line
	@rm -rf $(RESULTS)
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory test-unit || status=1; \
	$(MAKE) --no-print-directory test-integration || status=1; \
	$(MAKE) --no-print-directory test-e2e || status=1; \
	$(MAKE) --no-print-directory test-node || status=1; \
	e2e/toolchain/summarize.sh $(RESULTS) || status=1; \
	exit $$status

.PHONY: bench
bench: deps build cluster-up node-down postgres install ## schedule-skew benchmark against baselines (see docs/benchmarks.md)
	KUBECONFIG=$(KUBECONFIG_LOCAL) node e2e/bench/skew.ts

.PHONY: bench-plot
bench-plot: deps ## docs/benchmarks-skew.svg from the newest .local/bench/skew-*.json (or BENCH_JSON=path)
	node e2e/bench/plot.ts $(or $(BENCH_JSON),$(lastword $(sort $(wildcard .local/bench/skew-*.json)))) docs/benchmarks-skew.svg

.PHONY: clean
clean: cluster-down ## remove local state (cluster, node shim, test results)
	rm -rf .local
