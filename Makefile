# The two commands of the README: `make run` (the demo) and `make test` (every test).
# Both install what they need first (scripts/ensure-deps.sh).
SWIFT ?= swift
JOBS ?= 2
TEST_TIMEOUT ?= 1800

.PHONY: deps build run test release deb release-check bench clean

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -j $(JOBS)

run: build
	$(SWIFT) run -j $(JOBS) lmc demo

test: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	@# A hung test must fail the run, not eat CI's 90 minutes: the whole suite gets TEST_TIMEOUT.
	LMC_PYTHON=$(CURDIR)/.venv/bin/python timeout --kill-after=30 $(TEST_TIMEOUT) \
		$(SWIFT) test -j $(JOBS) --skip-build \
		|| { rc=$$?; [ $$rc -eq 124 ] && echo "make test: the tests did not finish within $(TEST_TIMEOUT) s" >&2; exit $$rc; }
	@# The release as a DNO gets it: the static binary and the package.
	$(MAKE) --no-print-directory release-check

# One fully static, stripped lmc in out/ (libmodbus built from Debian's source, libgpiod, OpenSSL).
release: deps
	@scripts/build-static-deps.sh >/dev/null
	@rm -f .build-release/release/lmc
	$(SWIFT) build -c release -j $(JOBS) --product lmc --scratch-path .build-release --static-swift-stdlib \
		-Xswiftc -static-executable -Xlinker -L$(CURDIR)/.build-static/lib 2>&1 | grep -v "statically linked applications requires at runtime" || true
	@test -x .build-release/release/lmc || { echo "make release: the static link failed" >&2; exit 1; }
	@mkdir -p out && strip -o out/lmc .build-release/release/lmc
	@echo "out/lmc: $$(stat -c %s out/lmc) bytes, $$(file -b out/lmc | cut -d, -f1-2,5)"

# The Debian package: out/lmc_VERSION_ARCH.deb (install it with: apt install ./out/lmc_*.deb).
deb: release
	@scripts/make-deb.sh

# What CI checks of the release: static, runs its demo; the .deb installs, verifies and removes.
release-check: deb
	@scripts/check-release.sh

# Every benchmark behind docs/PERFORMANCE.md (about 10 minutes on 2 cores; writes that file).
bench:
	@LMC_BENCH_DEPS=1 scripts/ensure-deps.sh
	$(SWIFT) build -c release -j $(JOBS) --static-swift-stdlib --product lmc
	$(SWIFT) build -c release -j $(JOBS) --product lmc-bench
	bench/run.sh

clean:
	rm -rf .build .build-release .build-static .venv out
