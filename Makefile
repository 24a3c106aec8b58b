# Novashop Edge. The whole set-up is `make demo` and `make test`.
GO      ?= go
BIN     := bin
PKGS    := ./...
# The race detector and shuffling stay on: the edge and origin are concurrent code.
TESTFLAGS ?= -race -shuffle=on -timeout 30m

.PHONY: all build test test-short conformance lint vet fmt demo up bench tune clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# Integration tests start throwaway PostgreSQL and Redis servers themselves
# (installing the Debian packages when missing) unless TEST_DATABASE_URL and
# TEST_REDIS_URL point at existing ones.
test:
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)
	# The same proxy, end-to-end and edge command suites on the goroutine core,
	# the other selectable one (the first pass runs the default, the event loop;
	# docs/io-core.md).
	EDGE_TEST_IO=goroutine $(GO) test $(TESTFLAGS) ./proxy/... ./internal/e2e/... ./cmd/edge/...

# conformance: the independent HTTP cache suite (http-cache-tests, pinned) against the
# edge on both I/O cores and against nginx proxy_cache, with every test's result.
conformance:
	CONFORMANCE_TABLE=1 $(GO) test -count=1 -v -run 'TestCacheTestsSuite' ./internal/e2e/
	CONFORMANCE_TABLE=1 EDGE_TEST_IO=goroutine $(GO) test -count=1 -v -run 'TestCacheTestsSuite$$' ./internal/e2e/

test-short:
	$(GO) test -short $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS) || echo "staticcheck unavailable or reported problems (see above)"

vet:
	$(GO) vet $(PKGS)

# up: PostgreSQL, Redis, two origins, the edge and nginx in the foreground, with their URLs.
up: build
	$(BIN)/stack up

# demo: the main job. Starts everything, seeds a catalog, runs a comparison campaign, stops.
demo: build
	$(BIN)/stack demo

# bench: the longer comparisons whose figures docs/benchmarks.md reports.
bench: build
	$(BIN)/stack bench

# tune: which balancing policy? loadgen tune on two edges, one of them with a slow origin.
tune: build
	$(BIN)/stack tune

clean:
	rm -rf $(BIN)
