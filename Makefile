# logweave — the two commands: `make demo` and `make test`.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export CGO_ENABLED ?= 0

.PHONY: all build demo test vet fmt-check bench bench-e2e soak clean images

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/collector ./cmd/collector
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/shipper ./cmd/shipper
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/demo-service ./cmd/demo-service
	$(GO) build -o $(BIN)/demo ./cmd/demo

# Images without a registry: the static binaries on scratch
# (deploy/docker/Dockerfile.scratch), tagged logweave/NAME:$(IMAGE_TAG).
# With a registry, deploy/docker/Dockerfile builds the same in Docker.
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
images: build
	rm -rf $(BIN)/image && mkdir -p $(BIN)/image/state
	for b in collector shipper demo-service; do cp $(BIN)/$$b $(BIN)/image/ || exit 1; done
	for b in collector shipper demo-service; do \
	  docker build -q -f deploy/docker/Dockerfile.scratch --target $$b -t logweave/$$b:$(IMAGE_TAG) $(BIN)/image || exit 1; \
	done

# Runs collector + shipper + a log generator on embedded defaults and
# prints what got indexed. Set ELASTICSEARCH_URL to index into a cluster.
demo:
	@echo "building… (the first build downloads modules and takes a few minutes)"
	@$(MAKE) --no-print-directory build
	$(BIN)/demo -bin $(BIN) -dir data/demo

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every test with the race detector (needs cgo), then the end-to-end
# scenarios again without it at full size (100k events per Kafka scenario).
# deploy/ (manifest decoding, no goroutines of ours) runs without it: the
# race build of the Kubernetes, kustomize and compose libraries alone
# takes ~3 minutes on 2 cores.
test: fmt-check vet
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/deploy/')
	$(GO) test -count=1 -timeout 20m ./deploy/... ./e2e

# The real shipper and collector for 10 minutes under steady load while
# Elasticsearch cycles through 401s, 413s, hangs, 503s and item 429s and
# the buffer disk fills and empties (needs root for the small tmpfs). It
# prints each phase, the totals and each process's peak RSS. `make test`
# runs the same test for 40 s.
SOAK ?= 10m
soak:
	LOGWEAVE_SOAK=$(SOAK) $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 60m ./e2e

# The real shipper and collector as processes over a seeded file of
# 1,000,000 log lines, beside a floor in the same run: CPU-seconds per
# million lines, peak RSS and lines/s per process (see the README's
# Performance section). `make test` runs it on 20,000 lines.
BENCH_LINES ?= 1000000
BENCH_EVENTS ?= 200000
bench-e2e:
	LOGWEAVE_BENCH_LINES=$(BENCH_LINES) LOGWEAVE_BENCH_EVENTS=$(BENCH_EVENTS) $(GO) test -count=1 -run '^(TestEndToEndCost|TestInputCost)$$' -v -timeout 60m ./e2e

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pipeline ./filters ./inputs/... ./outputs/elasticsearch ./e2e

clean:
	rm -rf $(BIN) data
