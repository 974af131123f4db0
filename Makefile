# MindRouter — make help lists the targets.
SHELL   := bash
MODULES := proto ent tlsfiles spool controlplane dataplane dataplane/e2e nodeagent
PKGS    := $(MODULES:%=./%/...)
BUF     := .tools/node_modules/.bin/buf
# golangci-lint is pinned in .tools/go.mod, outside go.work; `go tool -n` builds it
# once into the Go build cache and prints its path.
GOLANGCI_LINT = GOWORK=off go -C .tools tool -n golangci-lint
LINT_PKGS := $(filter-out ./ent/...,$(PKGS))
GOTEST  ?= go test
TESTFLAGS ?= -race -count=1 -timeout 20m
export CGO_CFLAGS ?= -Wno-deprecated-declarations

.PHONY: help tools generate check-generate lint vet test images test-helm test-unit test-e2e bench soak bench-smoke bench-scheduler bench-admit bench-audit-search bench-audit-ingest fuzz build run clean

help: ## List targets
	@awk 'BEGIN{FS=":.*##"} /^[a-z0-9-]+:.*##/{printf "  %-18s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

$(BUF): .tools/package.json .tools/package-lock.json
	cd .tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $(BUF)

tools: $(BUF) ## Install pinned tools (buf via npm ci; golangci-lint, protoc plugins and ent are go tool dependencies)
	@$(GOLANGCI_LINT) >/dev/null

generate: tools ## Regenerate protobuf, gRPC, gateway, OpenAPI (buf) and ent code
	$(BUF) generate
	go generate ./ent/...

check-generate: generate ## Fail when committed generated code is stale
	@git diff --exit-code -- proto ent controlplane/internal/server/openapi || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto ent controlplane/internal/server/openapi)" || { git status --porcelain -- proto ent; echo "untracked generated files: run make generate and commit"; exit 1; }

lint: tools vet ## buf lint + format check, go vet, gofmt, golangci-lint (.golangci.yml: layers, errors, docs, tests, slog)
	$(BUF) lint
	$(BUF) format -d --exit-code
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v -e '^proto/gen/' -e '^ent/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v -e '^proto/gen/' -e '^ent/'); echo "gofmt needed"; exit 1; }
	"$$($(GOLANGCI_LINT))" run --allow-parallel-runners $(LINT_PKGS)

vet: ## go vet every module
	go vet $(PKGS)

test: check-generate lint ## Every tier: unit, integration (SQLite + MariaDB) and end-to-end (simulator + real Ollama)
	$(GOTEST) $(TESTFLAGS) $(PKGS)
	cd deploy/images && GOWORK=off $(GOTEST) $(TESTFLAGS) ./...
	$(MAKE) --no-print-directory test-helm
	cd deploy/compose && GOWORK=off $(GOTEST) $(TESTFLAGS) ./...
	cd deploy/grafana && GOWORK=off $(GOTEST) $(TESTFLAGS) ./...

images: ## OCI image tarballs of the control plane, data plane, engine simulator and node agent in bin/images/ (no container engine needed)
	cd deploy/images && GOWORK=off go run . -root ../.. -out ../../bin/images -version "$$(git describe --tags --always --dirty 2>/dev/null || echo dev)"

# The chart's tests render templates in one goroutine: -race would only rebuild Helm and
# Kubernetes' client libraries with instrumentation (minutes on two cores) for nothing.
HELMTESTFLAGS ?= -count=1 -timeout 20m
test-helm: ## The Helm chart: helm lint and helm template (Helm's Go module), manifests decoded strictly into k8s.io/api types
	cd deploy/helm && GOWORK=off $(GOTEST) $(HELMTESTFLAGS) ./...

test-unit: ## Unit and integration tests of the product modules only (no e2e module)
	$(GOTEST) $(TESTFLAGS) ./proto/... ./ent/... ./tlsfiles/... ./spool/... ./controlplane/... ./dataplane/... ./nodeagent/...

test-e2e: ## End-to-end tests only (builds the binaries, starts a real Ollama)
	$(GOTEST) $(TESTFLAGS) ./dataplane/e2e/...

LOADBENCH_DURATION ?= 10s
bench: ## Go benchmarks of the hot path, then gateway-vs-direct (writes docs/benchmarks.md)
	$(GOTEST) -run '^$$' -bench . -benchmem -count=1 ./controlplane/... ./dataplane/...
	go run ./dataplane/e2e/cmd/mindrouter-loadbench -duration $(LOADBENCH_DURATION)

soak: ## 10-minute soak through the gateway (writes the soak section of docs/benchmarks.md)
	go run ./dataplane/e2e/cmd/mindrouter-loadbench -only-soak -soak 10m

bench-smoke: ## Smoke run of the load harness (~1 min, writes nothing)
	go run ./dataplane/e2e/cmd/mindrouter-loadbench -quick

bench-scheduler: ## Deterministic fair-share simulation: WDRR vs FIFO (table for docs/scheduler.md)
	go run ./controlplane/cmd/mindrouter-schedsim

bench-admit: ## Admit+Release over real gRPC: closed loop and open loop at 5,000/s (prints a table)
	go run ./controlplane/cmd/mindrouter-admitbench

bench-audit-search: ## Audit search over ROWS generated records in MariaDB (default 1,000,000; PAD bytes more per answer, default 0; INDEXED=1 keeps the FULLTEXT index during the load; its own database, dropped after)
	go run ./controlplane/cmd/mindrouter-auditbench -rows $${ROWS:-1000000} -pad $${PAD:-0} $${INDEXED:+-index-during-load}

bench-audit-ingest: ## Sustained audit ingest into MariaDB for DURATION (default 60s) from REPLICAS senders of BATCH records (defaults 4, 256)
	go run ./controlplane/cmd/mindrouter-auditbench -ingest $${DURATION:-60s} -replicas $${REPLICAS:-4} -batch $${BATCH:-256}

fuzz: ## Run every fuzz target for FUZZTIME (default 30s) each
	@FUZZTIME=$${FUZZTIME:-30s} ./deploy/local/fuzz.sh

build: ## Build the binaries into bin/
	mkdir -p bin
	go build -o bin/ ./controlplane/cmd/... ./dataplane/cmd/... ./nodeagent/cmd/...

run: build ## Run the whole gateway locally on SQLite (control plane, data plane, a backend)
	./deploy/local/run.sh

clean: ## Remove build outputs and the local data directory
	rm -rf bin .data
