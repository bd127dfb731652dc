# The two commands of the README: `make run` (the demo) and `make test` (every test).
# Both install what they need first (scripts/ensure-deps.sh).
SWIFT ?= swift
JOBS ?= 2

.PHONY: deps build run test release clean

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -j $(JOBS)

run: build
	$(SWIFT) run -j $(JOBS) lmc demo

test: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	LMC_PYTHON=$(CURDIR)/.venv/bin/python $(SWIFT) test -j $(JOBS) --skip-build

release: deps
	$(SWIFT) build -c release -j $(JOBS) --static-swift-stdlib

clean:
	rm -rf .build .venv
