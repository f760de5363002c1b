# fastgw — the README's two commands are `make demo` and `make test`.
SWIFT ?= swift
DEMO_DIR ?= $(CURDIR)/run/demo
# Release builds: static Swift runtime, and every function in its own section so that the
# link can put the ones a daemon runs together (scripts/link/hot-functions.txt,
# docs/benchmarks.md "Memory").
RELEASE_BUILD = $(SWIFT) build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections

.PHONY: all build release test test-unit test-e2e demo demo-stop bench hot-functions clean install uninstall

all: build

build:
	scripts/install-deps.sh build
	$(SWIFT) build

release:
	scripts/install-deps.sh build
	$(RELEASE_BUILD)

# Everything: unit tests (Protocol, Sidecar incl. TLS and HTTP/2 peers) and end-to-end suites.
test:
	scripts/install-deps.sh test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing
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

# Maintainers: re-record the functions the daemons run (needs valgrind).
hot-functions:
	scripts/hot-functions.sh

clean:
	rm -rf .build run
