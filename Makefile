# fastgw — the README's two commands are `make demo` and `make test`.
SWIFT ?= swift
DEMO_DIR ?= $(CURDIR)/run/demo
# Release builds: static Swift runtime, and every function in its own section so that the
# link can put the ones a daemon runs together (scripts/link/hot-functions.txt,
# docs/benchmarks.md "Memory").
RELEASE_BUILD = $(SWIFT) build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections

.PHONY: all build release test test-unit test-e2e demo demo-stop bench bench-ab hot-functions clean install uninstall fuzz fuzz-build fuzz-smoke

all: build

build:
	scripts/install-deps.sh build
	$(SWIFT) build

release:
	scripts/install-deps.sh build
	$(RELEASE_BUILD)

# Everything: unit tests (Protocol, Sidecar incl. TLS and HTTP/2 peers) and end-to-end suites.
# The toml-test conformance run fails, rather than skips, when its cases are missing.
test: export FASTGW_REQUIRE_TOML_TEST = 1
test:
	scripts/install-deps.sh test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing
	# Every parser of outside bytes, fuzzed for 5 s each (a habit, not a search: make fuzz).
	$(MAKE) fuzz-smoke
	python3 -m pytest -q Tests/e2e

test-unit:
	$(SWIFT) test

test-e2e: build
	python3 -m pytest -q Tests/e2e

demo: release
	scripts/demo.sh start "$(DEMO_DIR)"

demo-stop:
	scripts/demo.sh stop "$(DEMO_DIR)"

# PREFIX (/usr/local), DESTDIR, BINDIR, MANDIR, SYSCONFDIR (/etc), UNITDIR… as usual;
# see scripts/install.sh. Existing /etc/fastgw/*.toml are never overwritten.
install: release
	scripts/install.sh

uninstall:
	scripts/install.sh uninstall

bench:
	scripts/install-deps.sh bench
	$(RELEASE_BUILD)
	bench/run.sh
	bench/frp.sh

# A change on the data path states its cost: build BASE (a commit) beside HEAD and measure
# both interleaved (bench/ab.sh). The base's tree and build live in .build-base/.
BASE ?= HEAD~1
bench-ab:
	scripts/install-deps.sh bench
	$(RELEASE_BUILD)
	rm -rf .build-base && mkdir -p .build-base && git archive --format=tar $(BASE) | tar -x -C .build-base
	cd .build-base && $(RELEASE_BUILD)
	bench/ab.sh .build-base/.build/release/fastgw .build/release/fastgw

# Maintainers: re-record the functions the daemons run (needs valgrind).
hot-functions:
	scripts/hot-functions.sh

# Fuzzing (STYLE.md): a libFuzzer target for every parser of bytes from outside, in the
# separate package Fuzz/, built with the fuzzer and address sanitizers into .build-fuzz/.
# Each target runs FUZZ_SECONDS from its seeds in Fuzz/corpus/<target>/ (Fuzz/run.sh).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= FuzzTOML FuzzHTTP1Request FuzzChunked FuzzControlLine FuzzWebSocketFrames FuzzTunnelHandshake \
	FuzzControlMessage FuzzProxyHeader FuzzAuth FuzzEgressProxy FuzzSocks5 FuzzCapsules FuzzAcmeClientHello FuzzAcmeResponse

# --sanitize=fuzzer makes SwiftPM link libFuzzer's main; the sanitizers themselves go in one
# -sanitize= flag, because with --sanitize=fuzzer --sanitize=address the compiler keeps only
# the last one and the targets run without coverage (a fuzzer that cannot learn).
fuzz-build:
	$(SWIFT) build --package-path Fuzz --scratch-path .build-fuzz --sanitize=fuzzer \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld

fuzz: fuzz-build
	Fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A few seconds per target: enough to catch a parser that crashes on its seeds' neighbours.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=5

clean:
	rm -rf .build .build-fuzz run
