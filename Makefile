# docqa: `make run` sets everything up and runs the app; `make test` sets up and runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet --disable-pip-version-check
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The lock files (hashed, from `make lock`): the installers, the runtime alone, and the
# runtime plus the test extras. Each stamp is rebuilt when its lock (or the project's metadata)
# changes, and `uv pip sync` makes the venv exactly the lock: nothing stale stays behind.
TOOLS_LOCK := requirements/tools.txt
RUN_LOCK := requirements/run.txt
TEST_LOCK := requirements/test.txt
UV := $(VENV)/bin/uv
TOOLS_STAMP := $(VENV)/.installed-tools
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
SYNC = $(UV) pip sync --quiet --python $(PY) --require-hashes
# docqa itself (editable here), built by the setuptools the lock pinned.
INSTALL_SELF = $(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .

.PHONY: run test lint lock bench messages chromium clean

$(PY):
	@$(PYTHON) -m venv $(VENV)

# The same commands as the Dockerfile's.
$(TOOLS_STAMP): $(TOOLS_LOCK) | $(PY)
	@$(PIP) install --require-hashes -r $(TOOLS_LOCK)
	@touch $@

$(RUN_STAMP): $(RUN_LOCK) pyproject.toml setup.py $(TOOLS_STAMP)
	@echo "docqa: installing the runtime from $(RUN_LOCK) into $(VENV)/"
	@$(SYNC) $(RUN_LOCK)
	@$(INSTALL_SELF)
	@touch $@

$(TEST_STAMP): $(TEST_LOCK) $(RUN_STAMP)
	@echo "docqa: adding the test extras from $(TEST_LOCK)"
	@$(SYNC) $(TEST_LOCK)
	@$(INSTALL_SELF)
	@touch $@

run: $(RUN_STAMP)
	@$(PY) manage.py docqa_run

test: $(TEST_STAMP) chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff: lint (pyflakes, isort, bugbear, …) and formatting, as configured in pyproject.toml.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Refresh the locks from pyproject.toml (keeping current pins where they still fit; UPGRADE=1
# moves every package to its newest allowed release). Each lock is resolved under the one
# before it, so every target installs the same versions of what they share.
COMPILE = $(UV) pip compile --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: | $(PY)
	@test -x $(UV) || $(PIP) install "uv>=0.5,<1"
	$(COMPILE) requirements/tools.in -o $(TOOLS_LOCK)
	$(COMPILE) pyproject.toml requirements/tools.in -c $(TOOLS_LOCK) -o $(RUN_LOCK)
	$(COMPILE) pyproject.toml requirements/tools.in --extra test -c $(RUN_LOCK) -o $(TEST_LOCK)

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
