# Bottleneck — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
DEB_PACKAGES := libzmq3-dev libopenblas-dev libhdf5-dev hdf5-tools libjpeg-dev libpng-dev pkg-config libcurl4
# Test-only tools: jq (check-layers.sh), shellcheck (deploy scripts), tcpdump (packet capture of the multi-host
# test), iproute2 (namespaces), python3 (the local HTTP server of the download tests), chromium (renders the
# HTML report headless), python3-numpy (reads the exported .npy files), python3-h5py (reads virtual feature files),
# slurm-wlm, slurmctld, slurmd, munge and openssh-server / openssh-client (the real Slurm and ssh launcher tests).
TEST_PACKAGES := shellcheck tcpdump iproute2 jq python3 chromium python3-numpy python3-h5py slurm-wlm slurmctld \
    slurmd munge openssh-server openssh-client
SWIFT ?= swift

.PHONY: deps build release test check-layers demo bench bench-engine bench-topmodel bench-convbase bench-finetune-step bench-finetune fixtures clean

# Installs the missing Debian packages when run as root; otherwise prints the one line to run.
deps:
	@scripts/install-deps.sh $(DEB_PACKAGES)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: deps
	@scripts/install-deps.sh $(TEST_PACKAGES) || echo "(tests that need them will say they are skipped)"
	scripts/check-layers.sh
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	scripts/check-deploy.sh

demo: release
	scripts/demo.sh

bench: release
	scripts/bench.sh

# The module map: every import points to a lower layer and is declared in Package.swift.
check-layers:
	scripts/check-layers.sh

# Developer benchmarks (release build; print figures, assert nothing). bench-engine: per-layer speed of the
# conv base, one JSON line (bottleneck-dev bench-engine --help for its options).
bench-engine: release
	$$($(SWIFT) build -c release --show-bin-path)/bottleneck-dev bench-engine --image-size 150

# Throughput of the conv base, and the top model's epoch time: the Benchmarks test target, release build
# (the unit-test targets use @testable imports, hence -enable-testing).
bench-convbase:
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	VGG16_BENCH=1 $(SWIFT) test -c release --skip-build -Xswiftc -enable-testing --filter '^Benchmarks\.ConvBase'

bench-topmodel:
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	TOPMODEL_BENCH=1 $(SWIFT) test -c release --skip-build -Xswiftc -enable-testing --filter '^Benchmarks\.TopModel'

bench-finetune-step:
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	FINETUNE_BENCH=1 $(SWIFT) test -c release --skip-build -Xswiftc -enable-testing --filter '^Benchmarks\.FineTuning'

# A fine-tuning epoch at 150×150 against tf-keras' fit on the same images, augmentation, batch and cores
# (scripts/bench-finetune.sh; a tensorflow-cpu + tf-keras venv under bench-output/ on the first run).
bench-finetune: release
	scripts/bench-finetune.sh

# Regenerates the committed Keras golden fixtures (needs tf-keras; see Tests/Fixtures/README.md).
fixtures:
	Tests/Fixtures/generate.sh

clean:
	rm -rf .build demo-output bench-output
