# hookpipe: the commands a developer and CI run. `make test` is the one that
# must pass before anything lands.

GO      ?= go
BIN     ?= bin/hookpipe
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.Version=$(VERSION) -X main.DateBuilt=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

# Configs in configs/ (their *_benthos_test.yaml files are the config unit tests).
CONFIGS := $(filter-out %_benthos_test.yaml,$(wildcard configs/*.yaml))

# Each fuzz target and its package, run for FUZZTIME by `make fuzz`.
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	FuzzCheck:./plugins/jsonread \
	FuzzDecode:./plugins/jsonread \
	FuzzSameBytesAsEncodingJSON:./plugins/jsonwrite \
	FuzzParse:./plugins/timefmt \
	FuzzParse:./plugins/controlshift \
	FuzzParse:./plugins/thecity \
	FuzzCitySignature:./plugins/auth \
	FuzzParseCommaList:./plugins/auth \
	FuzzParseKeyValue:./plugins/auth \
	FuzzEndMarkerGuard:./plugins/mirror

.PHONY: build run test vet unit integration configs fuzz load load-smoke clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hookpipe

# The quickstart: ControlShift and The City into ./data/hookpipe.db.
run: build
	$(BIN) run configs/quickstart.yaml

# Everything: static checks, unit tests, integration and acceptance tests
# against real servers, the config linter and config unit tests, fuzz smoke.
test: vet configs integration fuzz

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

unit:
	$(GO) test ./...

# Unit, integration and acceptance tests. Integration tests start (or reuse)
# Postgres, a Kafka-protocol broker and an S3 server; they fail, never skip,
# when one cannot start.
integration:
	$(GO) test -tags integration -count=1 -p 1 -timeout 20m ./...

configs: build
	$(BIN) lint $(CONFIGS)
	$(BIN) test ./configs/... ./tests/blobl/...

# A fuzz run that stops at its deadline now and then reports "context deadline
# exceeded" without any failing input (a known race in go test's fuzzing end);
# such a run is repeated once. A run with a failing input fails at once.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name $$pkg ($(FUZZTIME))"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); rc=$$?; \
		echo "$$out" | tail -n 3; \
		if [ $$rc -ne 0 ]; then \
			if echo "$$out" | grep -q "Failing input"; then echo "$$out"; exit 1; fi; \
			echo "fuzz $$name ended without a failing input; running it once more"; \
			$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		fi; \
	done

# Load test: every scenario, figures as ratios against baselines of the same run.
load:
	$(GO) run ./tests/load

load-smoke:
	$(GO) run ./tests/load -smoke

clean:
	rm -rf bin data
