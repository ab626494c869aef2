# berth: `make up` runs the suite in the foreground, `make test` runs every test.
# Both start with `make install`, which installs only what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# runc: the low-level runtime; busybox-static: the rootfs of the images tests build;
# iproute2/procps: tools the tests and the agent call; docker-registry/skopeo: registry-proxy tests;
# docker.io (dockerd 20.10), docker-compose (v1.29), debootstrap: tests of the containerised suite.
# netavark, aardvark-dns, iptables: bridge networks, DNS and published ports (runtime agent).
APT_PACKAGES := runc busybox-static iproute2 procps docker-registry skopeo docker.io docker-compose debootstrap netavark aardvark-dns iptables golang-github-containers-common
PACKAGES := libs/common libs/contracts libs/kit libs/testsupport services/api-gateway services/engine services/lifecycle \
            services/runtime-agent services/registry-proxy services/builder services/orchestrator cli
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))

.PHONY: install up test lint clean-venv

install: .stamps/apt .stamps/venv

.stamps/apt: Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if ! command -v docker >/dev/null 2>&1; then missing="$$missing docker.io"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@mkdir -p .stamps && touch $@

.stamps/venv: $(PYPROJECTS) requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(addprefix -e ,$(PACKAGES)) -r requirements-dev.txt
	@mkdir -p .stamps && touch $@

up: install
	$(BIN)/berth up

test: lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	@# No cache: after edits, mypy's incremental cache has reported berth_contracts' submodules
	@# as missing (a stale namespace entry); a full check takes ~3 s.
	$(BIN)/mypy --no-incremental libs/common/src libs/contracts/src libs/kit/src libs/testsupport/src services/*/src cli/src

clean-venv:
	rm -rf $(VENV) .stamps
