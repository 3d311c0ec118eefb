# make test: install missing test peers when we can (as root), then run every test.
GO ?= go

.PHONY: test deps build vet fuzz bench-check

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
