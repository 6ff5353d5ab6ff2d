# solgate — see README.md. `make help` lists the targets.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin/solgate
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME  ?= 20s
BENCHTIME ?= 1x
TESTFLAGS ?=

.PHONY: all build test bench scale fuzz lint demo check help clean

all: build

build: ## build bin/solgate
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/solgate

test: ## run all tests with -race, interop tests against ipmi_sim/ipmitool/FreeIPMI/zstd included
	$(GO) test -race -count=1 -timeout 9m $(TESTFLAGS) ./...

bench: build ## micro-benchmarks per package, then the end-to-end scale benchmarks in test/ (figures in the log)
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v '/test$$')
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -v -timeout 30m ./test/ | grep -v '^=== '
	set -o pipefail; SOLGATE_BENCH=1 $(GO) test -run '^TestBench' -count=1 -v -timeout 30m ./test/ | grep -v '^=== '

SCALE_RUN ?= .
scale: ## the scale and chaos suite at full size, solgate and ConMan (about 70 min here; SCALE_RUN=TestHold for one); table in test/scale/results.md
	set -o pipefail; SOLGATE_SCALE=full SOLGATE_REQUIRE_INTEROP=1 SOLGATE_SCALE_OUT=$(CURDIR)/test/scale/results.json \
	  $(GO) test -count=1 -v -timeout 4h -run '$(SCALE_RUN)' ./test/scale/ | grep -v '^=== '

fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

STATICCHECK_VERSION ?= v0.8.2
lint: ## go vet, gofmt and staticcheck (installed into bin/tools on first use)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	@test -x bin/tools/staticcheck || GOBIN=$(CURDIR)/bin/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	bin/tools/staticcheck ./...

DEMOFLAGS ?=
demo: build ## the console server with a built-in simulated fleet: ssh into it (no hardware, no root); DEMOFLAGS=--tour runs it alone
	$(BIN) demo $(DEMOFLAGS)

check: lint test ## everything CI runs

help: ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

clean: ## remove build output
	rm -rf bin
