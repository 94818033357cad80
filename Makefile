# fusebox — see README.md.
GO      ?= go
BIN     := bin
export CGO_ENABLED := 1
# runc's libcontainer loads seccomp filters (Docker's default profile) only
# when built with cgo and the seccomp tag, which links Debian's libseccomp
# (libseccomp-dev, scripts/install-deps). Exported, so that every go command
# here and the go build the tests run for their shim binaries get it.
# GOTAGS= builds without it: containers then run unconfined, with a warning.
GOTAGS  ?= seccomp
export GOFLAGS := $(strip $(GOFLAGS) $(if $(GOTAGS),-tags=$(GOTAGS)))

.PHONY: all build test bench lint quickstart deps testimages clean

all: build

# The CLI, bin/fusebox, links no C and nothing of the engine: static, it
# starts in about half the time of the engine binary, and every command is
# a process. bin/fuseboxd (daemon, bench), bin/fusebox-shim and
# bin/fusebox-overlay are built with cgo for seccomp.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/fusebox
	$(GO) build -o $(BIN)/ ./cmd/fuseboxd ./cmd/fusebox-shim ./cmd/fusebox-overlay

# The whole suite: real FUSE mounts, real containers, a real daemon.
test: build
	$(GO) test -count=1 -timeout 40m -p 2 ./...

# The side-by-side harness (root; the full run takes up to 15 minutes and
# writes bench-out/bench.{md,json,png}; BENCH_FLAGS=--quick for a one-minute
# smoke run, BENCH_FLAGS='--compare old.json' to see the change), then the Go
# micro-benchmarks of the hot path (benchstat-ready).
BENCH_FLAGS ?=
bench: build
	$(BIN)/fusebox bench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./bench/...

lint:
	$(GO) vet ./... ./testdata ./testdata/mkimages
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The README's one command: deps, build, daemon, test image, shown.
quickstart:
	scripts/quickstart

# Debian packages the project and its tests need.
deps:
	scripts/install-deps

# Builds the busybox and Debian test images into the test cache
# ($$FUSEBOX_TESTCACHE, default testdata/cache) and prints where they are;
# TESTIMAGES_FLAGS=-big adds the benchmarks' 2.6 GB image.
testimages:
	$(GO) run ./testdata/mkimages $(TESTIMAGES_FLAGS)

clean:
	rm -rf $(BIN)
