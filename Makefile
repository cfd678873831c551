# pagehint — two set-up commands: `make demo` and `make test`.
# Both install missing Debian packages first (as root, or through sudo).

SHELL := /bin/bash
SWIFT ?= swift
JOBS ?= 2
# System packages the build and the tests need (Debian names).
APT_PACKAGES := libzstd-dev libsqlite3-dev pkg-config zstd trace-cmd linux-perf util-linux-extra bc time
DEMO_TRACE ?= $(firstword $(wildcard traces/k6.18-memcg-reclaim traces/k6.18-*))
RELEASE_BIN := .build/release/pagehint

.PHONY: all deps build release demo test test-swift test-tools bench clean help

all: build

help:
	@echo "make demo   install missing packages, build (release), run pagehint on a shipped trace"
	@echo "make test   install missing packages, build, run every test"
	@echo "make bench  release build, speed against trace-cmd and perf on the shipped traces"

deps:
	@tools/ci/ensure-packages.sh $(APT_PACKAGES)

build: deps
	$(SWIFT) build -j $(JOBS)

release: deps
	$(SWIFT) build -c release -j $(JOBS)

demo: release
	@test -n "$(DEMO_TRACE)" || { echo "make demo: no capture bundle under traces/"; exit 1; }
	@echo "== pagehint stat $(DEMO_TRACE)"
	$(RELEASE_BIN) stat $(DEMO_TRACE)
	@echo
	@echo "== pagehint replay $(DEMO_TRACE) --series g09 --host-budget 50%"
	$(RELEASE_BIN) replay $(DEMO_TRACE) --series g09 --host-budget 50%
	@echo
	@echo "== pagehint sites $(DEMO_TRACE) --event mm_filemap_add_to_page_cache"
	$(RELEASE_BIN) sites $(DEMO_TRACE) --event mm_filemap_add_to_page_cache

test: deps
	$(SWIFT) build -j $(JOBS) --build-tests
	$(SWIFT) test -j $(JOBS) --skip-build
	@$(MAKE) --no-print-directory test-tools

test-tools:
	@for t in tools/tests/test-*.sh; do [ -e "$$t" ] || continue; echo "== $$t"; bash "$$t" || exit 1; done

bench: release
	tools/bench/bench.sh $(RELEASE_BIN)

clean:
	rm -rf .build
