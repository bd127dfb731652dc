# The two commands of the README: `make run` (the demo) and `make test` (every test).
# Both install what they need first (scripts/ensure-deps.sh).
SWIFT ?= swift
JOBS ?= 2
TEST_TIMEOUT ?= 1800

.PHONY: deps build run test release bench clean

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

release: deps
	$(SWIFT) build -c release -j $(JOBS) --static-swift-stdlib

# Every benchmark behind docs/PERFORMANCE.md (about 10 minutes on 2 cores; writes that file).
bench:
	@LMC_BENCH_DEPS=1 scripts/ensure-deps.sh
	$(SWIFT) build -c release -j $(JOBS) --static-swift-stdlib --product lmc
	$(SWIFT) build -c release -j $(JOBS) --product lmc-bench
	bench/run.sh

clean:
	rm -rf .build .venv
