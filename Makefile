# SPM developer commands. Needs Python 3.11 and make; everything else is installed into .venv.
#
#   make demo      install, migrate, import the Maven demo data, print logins, run the dev server
#   make test      install with test extras and run pytest (PYTEST_ARGS="-k worker" passes options)
#   make messages  refresh and compile the German catalog (needs GNU gettext)
#   make bench     generate the 1M-deal tenant if missing and write docs/benchmarks.md (PostgreSQL, Redis; BENCH_SIZE=small)

PORT ?= 8000
PYTEST_ARGS ?=
VENV := .venv
BENCH_SIZE ?= 1m
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/spm_bench
VENV_PYTHON := $(VENV)/bin/python
DEMO_ORG := demo

# python3.11 if it exists, else python3 when that is 3.11; empty otherwise.
PYTHON311 := $(shell command -v python3.11 2>/dev/null || \
	(python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3))

# xstatic-bootstrap builds from an sdist that needs setuptools<81; pip applies the
# constraints file to build environments as well as to the install itself.
PIP_INSTALL := PIP_CONSTRAINT=constraints.txt $(VENV_PYTHON) -m pip install --disable-pip-version-check --quiet

.PHONY: demo test messages bench

$(VENV_PYTHON):
	@test -n "$(PYTHON311)" || { echo "Python 3.11 not found: install python3.11 or put it on PATH." >&2; exit 1; }
	$(PYTHON311) -m venv $(VENV)

# The stamps record which pyproject.toml and constraints.txt the venv was installed from,
# so a repeated `make` skips pip unless one of them changed.
$(VENV)/.installed: $(VENV_PYTHON) pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[test]'
	touch $@

# The demo and the tests run in development mode whatever the shell exports: the settings then
# use the development SECRET_KEY, localhost hosts and unhashed static files. Outgoing webhooks,
# feeds and CRM sync stay limited to public https hosts unless WEBHOOKS_ALLOW_LOOPBACK=1 is set.
demo test: export DEBUG = 1

# The set-up steps print their own summaries; LOG_LEVEL=WARNING keeps their INFO log lines
# (one per quota or forecast written) out of the way. The server logs at the default level.
demo: $(VENV)/.installed
	LOG_LEVEL=WARNING $(VENV_PYTHON) manage.py migrate --no-input
	LOG_LEVEL=WARNING $(VENV_PYTHON) manage.py import_crm --org $(DEMO_ORG) --source maven demo/data/maven-crm --currency USD --create
	LOG_LEVEL=WARNING $(VENV_PYTHON) manage.py demo_setup --org $(DEMO_ORG) --quotas
	LOG_LEVEL=WARNING $(VENV_PYTHON) manage.py forecast_backfill --org $(DEMO_ORG)
	LOG_LEVEL=WARNING $(VENV_PYTHON) manage.py win_model_train --org $(DEMO_ORG) --as-of 2017-12-31
	@echo "Open http://127.0.0.1:$(PORT)/ and log in with one of the accounts above (Ctrl+C stops the server)."
	$(VENV_PYTHON) manage.py runserver 127.0.0.1:$(PORT)

test: $(VENV)/.installed-test
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

# File-only locations ("#: dashboards/display.py") tell translators where a string is used without
# rewriting the catalog whenever a line moves. tests/test_locale.py leaves out the same folders.
messages: $(VENV)/.installed
	$(VENV_PYTHON) manage.py makemessages -l de --add-location=file --no-obsolete \
		--ignore '$(VENV)/*' --ignore 'staticfiles/*' --ignore 'tests/*' --ignore 'bench/*' --ignore 'demo/*'
	$(VENV_PYTHON) manage.py compilemessages -l de --ignore '$(VENV)/*'

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[bench]'
	touch $@

# Not part of `make test`: needs PostgreSQL and Redis on loopback, and minutes to hours.
bench: $(VENV)/.installed-bench
	-createdb -h 127.0.0.1 -U postgres spm_bench 2>/dev/null
	DATABASE_URL=$(BENCH_DATABASE_URL) $(VENV_PYTHON) manage.py migrate --no-input
	DATABASE_URL=$(BENCH_DATABASE_URL) $(VENV_PYTHON) bench/generate.py --size $(BENCH_SIZE) --if-missing
	DATABASE_URL=$(BENCH_DATABASE_URL) $(VENV_PYTHON) bench/run.py --size $(BENCH_SIZE)
