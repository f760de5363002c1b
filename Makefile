# fastgw — the README's two commands are `make demo` and `make test`.
SWIFT ?= swift
DEMO_DIR ?= $(CURDIR)/run/demo

.PHONY: all build release test test-unit test-e2e demo demo-stop bench clean install uninstall

all: build

build:
	scripts/install-deps.sh build
	$(SWIFT) build

release:
	scripts/install-deps.sh build
	$(SWIFT) build -c release --static-swift-stdlib

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
	$(SWIFT) build -c release --static-swift-stdlib
	bench/run.sh

clean:
	rm -rf .build run
