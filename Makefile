# Skyflow: the two commands a newcomer needs are `make run` and `make test`.
# Both install what is missing (PostgreSQL, Redis from the OS packages) and
# never need a container engine.

GO        ?= go
BIN       := bin
SKYFLOW   := $(BIN)/skyflow
TEST_FLAGS ?= -race -count=1 -timeout 20m
TEST_BIN  := .dev/test-bin

# Deployment: ENV picks the overlay (knative/overlays/dev or prod); ko builds
# and pushes one image per function to KO_DOCKER_REPO.
ENV       ?= prod
KO        ?= $(GO) run github.com/google/ko@v0.19.1
KUBECTL   ?= kubectl

.PHONY: help run test bench soak vet lint build migrate fuzz clean manifests deploy release-manifests

# Pinned tools, built on first use into bin/tools.
GOLANGCI_LINT_VERSION := v2.15.0
ACTIONLINT_VERSION    := v1.7.12
TOOLS := $(CURDIR)/$(BIN)/tools

## help: list the targets
help:
	@awk -F': ' '/^## /{sub(/^## /, ""); split($$0, a, ": "); printf "  %-18s %s\n", a[1], substr($$0, length(a[1]) + 3)}' $(MAKEFILE_LIST)

## run: the whole platform locally; the gateway on http://localhost:8080
run: build
	exec $(SKYFLOW) dev

## test: vet, then every test (unit, integration, end-to-end) against private PostgreSQL and Redis
test: build
	$(GO) vet ./...
	@# Every function once, for all the test processes that start a
	@# platform (tests/, cmd/skyflow): each would otherwise build them all.
	rm -rf $(TEST_BIN) && $(GO) build -o $(TEST_BIN)/ ./functions/... ./tests/functions/...
	SKYFLOW_FUNCTION_BINARIES=$(CURDIR)/$(TEST_BIN) $(SKYFLOW) deps run -- $(GO) test $(TEST_FLAGS) ./...
	@# Knative's own validation of every manifest; its own module keeps
	@# Knative's and Kubernetes' dependencies out of the function binaries.
	cd knative/validate && $(GO) vet ./... && $(GO) test -count=1 ./...

## bench: the benchmarks under tests/ (figures as ratios against in-run baselines)
# Every function is built once for the run's platforms, as make test does,
# into a directory of the run's own (2 GB), removed at the end: go build removes
# each binary before writing the new one, so a shared directory rebuilt by
# another run would take binaries from under a platform that restarts a
# process (the soak kills some on purpose).
bench: build
	mkdir -p .dev && dir=$$(mktemp -d $(CURDIR)/.dev/bench-bin.XXXXXX) && \
	trap 'rm -rf "$$dir"' EXIT && trap 'exit 130' INT TERM && \
	$(GO) build -o "$$dir/" ./functions/... ./tests/functions/... && \
	SKYFLOW_FUNCTION_BINARIES="$$dir" $(SKYFLOW) deps run -- $(GO) test -run '^$$' -bench . -benchtime 2s -timeout 45m ./tests/...

## soak: TestSoak, SOAK_DURATION of mixed load with Kafka and audit-record killed mid-way (not in make test)
SOAK_DURATION ?= 10m
soak: build
	mkdir -p .dev && dir=$$(mktemp -d $(CURDIR)/.dev/bench-bin.XXXXXX) && \
	trap 'rm -rf "$$dir"' EXIT && trap 'exit 130' INT TERM && \
	$(GO) build -o "$$dir/" ./functions/... ./tests/functions/... && \
	SKYFLOW_SOAK=1 SKYFLOW_SOAK_DURATION=$(SOAK_DURATION) SKYFLOW_FUNCTION_BINARIES="$$dir" \
		$(SKYFLOW) deps run -- $(GO) test -run '^TestSoak$$' -count=1 -timeout 30m -v ./tests/

## fuzz: a short fuzzing pass over every parser (FUZZTIME each)
FUZZTIME ?= 30s
FUZZ_TARGETS = \
	./runtime/host:FuzzStructuredEvent ./runtime/request:FuzzDecode \
	./domain/records:FuzzParseGetParams ./domain/records/sqlsubset:FuzzParse \
	./domain/vaults/schema:FuzzDecode ./domain/vaults/schema:FuzzCoerce ./domain/crypto:FuzzOpen \
	./domain/records/tokens:FuzzDeterministic ./domain/records/tokens:FuzzWellFormed \
	./domain/identity/credentials:FuzzVerifyAssertion ./domain/identity/credentials:FuzzHashAPIKey ./domain/identity/passwords:FuzzVerify \
	./local/manifest:FuzzLoadDocument ./local/broker:FuzzRecordRoundTrip \
	./functions/gateway/edge/ratelimit:FuzzParseLimits ./functions/gateway/cache:FuzzNotModified \
	./domain/webhooks:FuzzParseURL ./domain/webhooks:FuzzNormalizePatterns
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

## migrate: apply the database migrations to DATABASE_URL
migrate: build
	$(SKYFLOW) migrate

## manifests: render knative/ Services and eventing/ Triggers from every func.yaml
manifests: build
	$(SKYFLOW) manifests

## deploy: build the function images with ko and apply the ENV overlay (needs KO_DOCKER_REPO and a kube context)
deploy: build
	$(SKYFLOW) manifests -check
	@test -n "$$KO_DOCKER_REPO" || { echo "set KO_DOCKER_REPO to the registry the images go to (e.g. ghcr.io/you/skyflow)"; exit 1; }
	$(KUBECTL) kustomize knative/overlays/$(ENV) | $(KO) resolve --base-import-paths -f - | $(KUBECTL) apply -f -

## lint: golangci-lint (.golangci.yml) over the Go code and actionlint over .github/workflows
lint: $(TOOLS)/golangci-lint $(TOOLS)/actionlint
	$(TOOLS)/golangci-lint run ./...
	cd knative/validate && $(TOOLS)/golangci-lint run --config ../../.golangci.yml ./...
	$(TOOLS)/actionlint

$(TOOLS)/golangci-lint:
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(TOOLS)/actionlint:
	GOBIN=$(TOOLS) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

## release-manifests: build and push every function image with ko (KO_DOCKER_REPO, VERSION tag) and render dist/skyflow-<env>.yaml for dev and prod
release-manifests: build
	$(SKYFLOW) manifests -check
	@test -n "$$KO_DOCKER_REPO" || { echo "set KO_DOCKER_REPO to the registry the images go to (e.g. ghcr.io/you/skyflow)"; exit 1; }
	@test -n "$(VERSION)" || { echo "set VERSION to the release tag (e.g. v0.1.0)"; exit 1; }
	mkdir -p dist
	for env in dev prod; do \
		$(KUBECTL) kustomize knative/overlays/$$env | $(KO) resolve --base-import-paths --tags $(VERSION) -f - > dist/skyflow-$$env.yaml || exit 1; \
	done

## build: bin/skyflow, the operator command (make run and make test build it first)
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(SKYFLOW) ./cmd/skyflow

## vet: go vet over the module
vet:
	$(GO) vet ./...

## clean: remove bin/ (the private servers' data in .dev/ stays)
clean:
	rm -rf $(BIN)
