# docqa: `make run` sets everything up and runs the app; `make test` sets up and runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet --disable-pip-version-check
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The lock files (hashed, from `make lock`): the runtime alone, and the runtime plus the test
# extras. Each stamp is rebuilt when its lock (or the project's metadata) changes.
RUN_LOCK := requirements/run.txt
TEST_LOCK := requirements/test.txt
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint lock bench messages chromium clean

$(PY):
	@$(PYTHON) -m venv $(VENV)

# The same two commands as the Dockerfile's: the lock with every hash checked, then docqa itself
# (editable here), built by the setuptools the lock pinned.
$(RUN_STAMP): $(RUN_LOCK) pyproject.toml setup.py | $(PY)
	@echo "docqa: installing the runtime from $(RUN_LOCK) into $(VENV)/"
	@$(PIP) install --require-hashes -r $(RUN_LOCK)
	@$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

$(TEST_STAMP): $(TEST_LOCK) $(RUN_STAMP)
	@echo "docqa: adding the test extras from $(TEST_LOCK)"
	@$(PIP) install --require-hashes -r $(TEST_LOCK)
	@touch $@

run: $(RUN_STAMP)
	@$(PY) manage.py docqa_run

test: $(TEST_STAMP) chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff: lint (pyflakes, isort, bugbear, …) and formatting, as configured in pyproject.toml.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Refresh both locks from pyproject.toml (keeping current pins where they still fit; UPGRADE=1
# moves every package to its newest allowed release). The test lock is resolved under the
# runtime lock's pins, so `make run` and `make test` install the same versions of what they share.
UV_COMPILE = $(VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes \
	--quiet --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: | $(PY)
	@$(PIP) install "uv>=0.5,<1"
	$(UV_COMPILE) pyproject.toml requirements/build.in -o $(RUN_LOCK)
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra test -c $(RUN_LOCK) -o $(TEST_LOCK)

# Browser tests drive Debian's Chromium (Playwright cannot download its own here).
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

bench: $(TEST_STAMP)
	$(PY) -m bench

# Translators: refresh the catalogue, translate, then compile (the .mo files are committed).
messages: $(RUN_STAMP)
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --ignore "tests/*" --ignore "bench/*" --ignore "staticfiles/*"
	$(PY) manage.py compilemessages --ignore ".venv"

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
