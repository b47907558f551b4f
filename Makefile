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

.PHONY: run test bench soak vet build migrate fuzz clean manifests deploy

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

## soak: TestSoak, SOAK_DURATION of mixed load through the gateway with Kafka
## and audit-record killed mid-way (not part of make test)
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
	./functions/gateway/ratelimit:FuzzParseLimits ./functions/gateway/respcache:FuzzNotModified \
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

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(SKYFLOW) ./cmd/skyflow

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
