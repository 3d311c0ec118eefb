# make test: install missing test peers when we can (as root), then run every test.
GO ?= go

.PHONY: test deps build vet fuzz bench-check bench-monitor

test: deps
	$(GO) test ./...

deps:
	@bash scripts/install-test-deps.sh

build:
	$(GO) build -o bin/lightsout ./cmd/lightsout

vet:
	$(GO) vet ./...

# Short fuzz pass over every network decoder (the corpus lives in testdata/fuzz).
fuzz:
	@bash scripts/fuzz.sh 20s

bench-check:
	$(GO) run ./bench/check

# The management server watching 50,000 simulated BMCs at a 60 s interval (root; ~6 min).
bench-monitor:
	$(GO) run ./bench/monitor
