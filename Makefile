# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app microsite
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint format db seed bench serve clean screenshots chromium

# bandit at medium and high severity (see [tool.bandit] in pyproject.toml). Migrations build
# constant DDL from constants (as ruff's S608 ignore says), so B608 is skipped for them only.
BANDIT = $(BIN)/bandit -c pyproject.toml -r . -ll -q -x ./migrations \
	&& $(BIN)/bandit -c pyproject.toml -r migrations -ll -q -s B608

# The venv is rebuilt only when a requirements file changes (stamp files).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

# First run: a local instance config with a random SECRET_KEY (never committed; see .gitignore).
# umask 077: the folder and the file holding the secret are the owner's alone.
instance/config.py:
	umask 077; mkdir -p instance; \
	{ echo "# Local settings, made by 'make run' on first use; see instance/config.example.py."; \
	  echo "SECRET_KEY = \"$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')\""; } > $@

## db: create or upgrade the SQLite database under instance/, with demo data on first run
db: $(VENV)/.installed-run instance/config.py
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty

# The site's own links (canonical, sitemap, .ics, emails) follow HOST and PORT, unless the operator
# chose SITE_URL (MICROSITE_SITE_URL in the environment, or SITE_URL in instance/config.py).
RUN_SITE_URL = $(if $(MICROSITE_SITE_URL)$(shell grep -s '^SITE_URL' instance/config.py),,MICROSITE_SITE_URL=http://$(HOST):$(PORT))

## run: everything a newcomer needs, then the site on http://$(HOST):$(PORT) (debug off; DEBUG=1 for debug)
run: db
	$(RUN_SITE_URL) $(FLASK) run --host $(HOST) --port $(PORT) $(if $(DEBUG),--debug,)

## serve: like run, but under gunicorn with gunicorn.conf.py (gthread workers, the production model)
serve: db
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

# The browser tests drive Debian's Chromium (never a downloaded browser): install it if missing.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

## test: lint, format check, bandit (medium+) and the whole suite (PostgreSQL too when MICROSITE_TEST_DATABASE_URL is set)
test: $(VENV)/.installed-dev chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BANDIT)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BANDIT)

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: benchmarks, as ratios to a bare Flask app measured in the same run (docs/benchmarks.md)
bench: $(VENV)/.installed-dev
	command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y wrk; }
	$(BIN)/python -m bench

## screenshots: phone and desktop screenshots (booking, manage link, staff week view and booking) into docs/screenshots/ (see README)
screenshots: $(VENV)/.installed-dev chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
