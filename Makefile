# docqa: `make run` sets everything up and runs the app; `make test` sets up and runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench messages chromium clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

run: $(INSTALLED)
	$(PY) manage.py docqa_run

test: $(INSTALLED) chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff: lint (pyflakes, isort, bugbear, …) and formatting, as configured in pyproject.toml.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Browser tests drive Debian's Chromium (Playwright cannot download its own here).
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

bench: $(INSTALLED)
	$(PY) -m bench

# Translators: refresh the catalogue, translate, then compile (the .mo files are committed).
messages: $(INSTALLED)
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --ignore "tests/*" --ignore "bench/*" --ignore "staticfiles/*"
	$(PY) manage.py compilemessages --ignore ".venv"

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
