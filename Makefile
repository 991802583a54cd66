# The two set-up commands: `make run` (serve the portal) and `make test` (install and run the tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export PORT

.PHONY: run test test-sqlite test-postgres lint bench fuzz venv deps test-deps migrate clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements-test.txt requirements-ray.txt $(VENV)/.deps
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps

## run: install, migrate, import the demo tasks, create the admin account, serve on 127.0.0.1:$(PORT)
run: deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_tasks --demo
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py startup_import
	@echo "GenHRL Portal: http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) genhrl_site.asgi:application

## test: install what the tests need, then run them on SQLite and, when it is reachable, PostgreSQL
test: test-deps
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest
	@if $(BIN)/python -c "import psycopg; psycopg.connect('postgresql://postgres@127.0.0.1:5432/postgres', connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL (tests/trainer touch no database: run once, above) =="; \
		DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test $(BIN)/python -m pytest --ignore=tests/trainer; \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable on 127.0.0.1:5432 (required on CI)"; exit 1; \
	else echo "PostgreSQL not reachable: skipped the PostgreSQL pass"; fi

lint: test-deps
	$(BIN)/ruff check .

## fuzz: schemathesis against a live server, every phase and check, many examples (the suite runs a sample)
fuzz: test-deps
	FUZZ_PHASES=examples,coverage,fuzzing,stateful FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/api/test_fuzz.py -q

bench: deps
	$(BIN)/python manage.py bench_trainer

clean:
	rm -rf $(VENV)
