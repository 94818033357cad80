# fusebox — see README.md.
GO      ?= go
BIN     := bin
export CGO_ENABLED := 1

.PHONY: all build test bench lint setup deps testimages clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole suite: real FUSE mounts, real containers, a real daemon.
test: build
	$(GO) test -count=1 -timeout 40m -p 2 ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./bench/...

lint:
	$(GO) vet ./... ./testdata ./testdata/mkimages
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

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
