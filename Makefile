# Bottleneck — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
DEB_PACKAGES := libzmq3-dev libopenblas-dev libhdf5-dev hdf5-tools libjpeg-dev libpng-dev pkg-config libcurl4
# Test-only tools: shellcheck (deploy scripts), tcpdump (packet capture of the multi-host test), iproute2 (namespaces).
TEST_PACKAGES := shellcheck tcpdump iproute2
SWIFT ?= swift

.PHONY: deps build release test demo bench fixtures clean

# Installs the missing Debian packages when run as root; otherwise prints the one line to run.
deps:
	@scripts/install-deps.sh $(DEB_PACKAGES)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: deps
	@scripts/install-deps.sh $(TEST_PACKAGES) || echo "(tests that need them will say they are skipped)"
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	scripts/check-deploy.sh

demo: release
	scripts/demo.sh

bench: release
	scripts/bench.sh

# Regenerates the committed Keras golden fixtures (needs tf-keras; see Tests/Fixtures/README.md).
fixtures:
	Tests/Fixtures/generate.sh

clean:
	rm -rf .build demo-output bench-output
