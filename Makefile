# Two commands for a fresh clone: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format system-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

# `make run PORT=5001 HOST=0.0.0.0`: links in mail and LINE follow the address served, unless
# MADOGUCHI_PUBLIC_URL says otherwise.
HOST ?= 127.0.0.1
PORT ?= 5000

run: $(STAMP)
	$(BIN)/madoguchi db upgrade
	$(BIN)/madoguchi seed-demo --if-empty
	$(BIN)/madoguchi serve --host $(HOST) --port $(PORT)

# Chromium for the browser tests, dovecot (IMAP) for the email tests, redis-server for the
# rate limits kept in Redis (a throwaway server per test run), slapd and ldap-utils (OpenLDAP)
# for the directory sign-in tests (a throwaway server per test run), poppler-utils and LibreOffice
# for making citizens' files harmless (consult.services.sanitise), nftables and iproute2 for the
# relay and the core in two network namespaces behind the LGWAN firewall (tests/transfer/
# test_namespaces.py, which needs root), and PostgreSQL binaries
# for a throwaway test server when no server is named in MADOGUCHI_TEST_POSTGRES_URL. All come
# from Debian's packages.
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/sbin/dovecot || missing="$$missing dovecot-imapd"; \
	test -x /usr/bin/openssl || missing="$$missing openssl"; \
	test -x /usr/bin/redis-server || missing="$$missing redis-server"; \
	test -x /usr/sbin/slapd || missing="$$missing slapd ldap-utils"; \
	test -x /usr/bin/pdftoppm || missing="$$missing poppler-utils"; \
	test -x /usr/sbin/nft || missing="$$missing nftables"; \
	test -x /usr/sbin/ip || test -x /usr/bin/ip || missing="$$missing iproute2"; \
	test -x /usr/bin/soffice || missing="$$missing libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"; \
	fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$MADOGUCHI_TEST_POSTGRES_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		missing="$$missing postgresql"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two workers by default (the CI machine has two cores); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
# The tests start many processes (gunicorn, workers, the command line): with bytecode writing
# off in the environment each would compile the whole project again (~0.5 s CPU a process).
TEST_ENV = PYTHONDONTWRITEBYTECODE=

test: $(STAMP) system-deps lint
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The suite without the tests marked `slow` (real gunicorn, Chromium, dovecot, TLS servers,
# processes: see tests/conftest.py), for a developer's loop: 1,941 tests, about 6 minutes on two cores.
# CI runs `make test`, which runs everything.
test-fast: $(STAMP) system-deps
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
