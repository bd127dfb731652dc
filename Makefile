# The two commands of the README: `make run` (the demo) and `make test` (every test).
# Both install what they need first (scripts/ensure-deps.sh).
SWIFT ?= swift
JOBS ?= 2
TEST_TIMEOUT ?= 1800
FUZZ_SECONDS ?= 60
FUZZ_RT = $(shell dirname $$(dirname $$(which swift)))/lib/swift/clang/lib/linux
# release, deb and release-check: ARCH=arm64 cross-builds the box's binary on an amd64 machine
# (scripts/arm64/, docs/release.md); any other ARCH is this machine's own.
NATIVE_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
ARCH ?= $(NATIVE_ARCH)
CROSS := $(if $(filter arm64,$(ARCH)),$(filter-out arm64,$(NATIVE_ARCH)),)

.PHONY: deps build run test attack release man deb release-check box-test test-arm64 bench fuzz sanitize soak clean

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -j $(JOBS)

run: build
	$(SWIFT) run -j $(JOBS) lmc demo

test: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	@# A hung test must fail the run, not eat CI's 90 minutes: the whole suite gets TEST_TIMEOUT.
	@# Then nothing the tests started may still run (scripts/check-leftovers.sh), whatever the outcome.
	@since=$$(scripts/check-leftovers.sh now); \
	echo "LMC_PYTHON=$(CURDIR)/.venv/bin/python timeout --kill-after=30 $(TEST_TIMEOUT) $(SWIFT) test -j $(JOBS) --skip-build"; \
	LMC_PYTHON=$(CURDIR)/.venv/bin/python timeout --kill-after=30 $(TEST_TIMEOUT) $(SWIFT) test -j $(JOBS) --skip-build; rc=$$?; \
	[ $$rc -eq 124 ] && echo "make test: the tests did not finish within $(TEST_TIMEOUT) s" >&2; \
	scripts/check-leftovers.sh since $$since || { [ $$rc -ne 0 ] || rc=1; }; \
	exit $$rc
	@# Every fuzz target for a bounded time, then the release as a DNO gets it, then that .deb on a
	@# booted Debian 12 (the image is built once, about 3-8 minutes, then cached).
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=15
	$(MAKE) --no-print-directory release-check
	$(MAKE) --no-print-directory box-test ARCH=amd64

# Issue 17's attacks against a real lmc run on loopback (Tests/FieldControllerTests/AttackTests.swift and
# every other suite named …Attack…/…Hostile…): about 1–2 minutes. make test runs them too.
attack: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	LMC_PYTHON=$(CURDIR)/.venv/bin/python timeout --kill-after=30 600 $(SWIFT) test -j $(JOBS) --skip-build --filter 'Attack|Hostile'

# One fully static, stripped lmc in out/ (libmodbus built from Debian's source, libgpiod, OpenSSL).
# ARCH=arm64: out/arm64/lmc, cross-built by Debian sid's Swift in a cached root (scripts/arm64/build.sh).
ifneq ($(CROSS),)
release:
	@scripts/arm64/build.sh
else
release: deps
	@scripts/build-static-deps.sh >/dev/null
	@rm -f .build-release/release/lmc
	$(SWIFT) build -c release -j $(JOBS) --product lmc --scratch-path .build-release --static-swift-stdlib \
		-Xswiftc -static-executable -Xlinker -L$(CURDIR)/.build-static/lib 2>&1 | grep -v "statically linked applications requires at runtime" || true
	@test -x .build-release/release/lmc || { echo "make release: the static link failed" >&2; exit 1; }
	@mkdir -p out && strip -R .comment -o out/lmc .build-release/release/lmc
	@echo "out/lmc: $$(stat -c %s out/lmc) bytes, $$(file -b out/lmc | cut -d, -f1-2,5)"
endif

# The manual page out/lmc.1 from the command-line reference (swift-argument-parser's generate-manual).
man: deps
	@scripts/make-man.sh

# The Debian package: out/lmc_VERSION_ARCH.deb (install it with: apt install ./out/lmc_*.deb).
deb: release man
	@scripts/make-deb.sh $(if $(CROSS),arm64)

# What CI checks of the release: static, runs its demo; the .deb installs, verifies and removes.
# ARCH=arm64: static aarch64, --version and a short demo under qemu-user, lintian (no install here).
release-check: deb
	@$(if $(CROSS),scripts/arm64/check-release.sh,scripts/check-release.sh)

# The .deb on a booted stock Debian 12 under qemu: systemd, peers on the host, the serial console, the
# DNO's ssh, kills, a power cut, the hardware watchdog (docs/release.md, "Box test"). ARCH=arm64 boots
# qemu-system-aarch64 with the arm64 package (make deb ARCH=arm64). The image is cached in /var/cache/lmc-box.
box-test: deps
	@ARCH=$(ARCH) scripts/box/run.sh

# The aarch64 unit suites (scripts/arm64/unit-suites: the ones that start no process and no network peer)
# under qemu-user, as root: the test product cross-built for aarch64 (debug, -O), each suite its own qemu
# process, JOBS at a time, then a table suite/result/tests/seconds (docs/release.md, "aarch64").
# Not part of make test.
test-arm64:
	@scripts/arm64/test.sh --all-unit

# Every benchmark behind docs/PERFORMANCE.md (about 35 minutes on 2 cores; writes that file).
bench:
	@LMC_BENCH_DEPS=1 scripts/ensure-deps.sh
	$(SWIFT) build -c release -j $(JOBS) --static-swift-stdlib --product lmc
	$(SWIFT) build -c release -j $(JOBS) --product lmc-bench
	bench/run.sh

# libFuzzer with AddressSanitizer on every input from outside (Fuzz/README.md).
fuzz: deps
	$(SWIFT) build -j $(JOBS) --product lmc-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=address \
		-Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp -Xswiftc -DFUZZING \
		-Xlinker $(FUZZ_RT)/libclang_rt.fuzzer_no_main-x86_64.a -Xlinker -lstdc++ 2>&1 | grep -v "Cannot export local symbol" || true
	@set -e; for t in config registers oscp ring ssh time control mbserver oscpclient dnp3; do \
		mkdir -p .build-fuzz/corpus/$$t; \
		LMC_FUZZ_TARGET=$$t LMC_HW_DIR=$(CURDIR)/hw .build-fuzz/debug/lmc-fuzz .build-fuzz/corpus/$$t Fuzz/corpus/$$t \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=.build-fuzz/finding-$$t- \
			> .build-fuzz/$$t.log 2>&1 || { tail -40 .build-fuzz/$$t.log; echo "make fuzz: target $$t found something: .build-fuzz/finding-$$t-*" >&2; exit 1; }; \
		echo "fuzz $$t: $$(sed -n 's/stat::number_of_executed_units: *//p' .build-fuzz/$$t.log) executions in $(FUZZ_SECONDS) s, nothing found"; \
	done

# The fault-injection soak for an hour (make test runs it for 2 minutes): SOAK_SECONDS to change.
SOAK_SECONDS ?= 3600
soak: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	@since=$$(scripts/check-leftovers.sh now); \
	LMC_SOAK_SECONDS=$(SOAK_SECONDS) LMC_PYTHON=$(CURDIR)/.venv/bin/python $(SWIFT) test -j $(JOBS) --skip-build --filter Soak; rc=$$?; \
	scripts/check-leftovers.sh since $$since || { [ $$rc -ne 0 ] || rc=1; }; \
	exit $$rc

# The test suite under AddressSanitizer and ThreadSanitizer (each its own build; about 10 minutes each).
sanitize: deps
	@# Leaks are not checked: XCTest's and Foundation's own allocations at exit drown everything else.
	LMC_SLOW=1 ASAN_OPTIONS=detect_leaks=0 LMC_PYTHON=$(CURDIR)/.venv/bin/python $(SWIFT) test -j $(JOBS) --scratch-path .build-asan --sanitize=address
	@# The lmc children write their reports to .build-tsan/reports.* (their stderr goes to the tests).
	@# Synchronization.Mutex locks with a futex TSan cannot see: its "Swift access race" reports on
	@# Mutex-guarded state are false positives (docs/security.md, Tested).
	LMC_SLOW=1 TSAN_OPTIONS="log_path=$(CURDIR)/.build-tsan/reports:log_exe_name=1" LMC_PYTHON=$(CURDIR)/.venv/bin/python \
		$(SWIFT) test -j $(JOBS) --scratch-path .build-tsan --sanitize=thread

clean:
	rm -rf .build .build-release .build-static .build-fuzz .build-asan .build-tsan .venv out
