# Two commands, on a fresh machine (Python 3.11, internet to PyPI):
#   make book   executes every chapter and builds the HTML into _build/html
#   make test   runs the whole test suite
# Both create .venv and install the pinned requirements on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install lint format test test-quick test-browser test-browser-static test-book-runs book book-execute book-clean assignments-check \
        binder-local clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP) requirements-browser.txt
	$(BIN)/python -m pip install --quiet -r requirements-browser.txt
	touch $(BROWSER_STAMP)

# ruff: lint and format check (configured in pyproject.toml); `make format` applies the fixes and the formatter.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	RL4LLM_QUIET=1 $(BIN)/python -m pytest

test-quick: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python -m pytest -m "not slow"

# Re-run the experiments whose numbers the book quotes from <page>.runs.json files (tools/quoted_runs.py).
test-book-runs: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python -m pytest -m book_runs tests/test_book_quoted_runs.py

# Browser tests (Playwright + the system's Chromium: apt-get install chromium). The static site: a small test book
# built here, and _build/html when `make book` has built it; the live part starts JupyterLab from the local Binder
# environment (tools/binder_local.sh, created on first use in .binder-env: minutes). Screenshots of every page go
# to _build/browser-artifacts. `make test-browser-static` leaves the live part out (CI runs that one: the live part
# took 22 min here on a loaded machine, plus the environment's build; see README "Browser tests").
test-browser: $(BROWSER_STAMP)
	RL4LLM_QUIET=1 RL4LLM_BROWSER_LIVE=1 $(BIN)/python -m pytest tests/browser -v -p no:cacheprovider

test-browser-static: $(BROWSER_STAMP)
	RL4LLM_QUIET=1 $(BIN)/python -m pytest tests/browser/test_static_site.py -v -p no:cacheprovider

# Reproduce Binder's environment locally (a fresh venv from binder/, postBuild) and start JupyterLab on localhost.
binder-local:
	tools/binder_local.sh

# Execute the pages into the execution cache first, two chapters at a time (tools/execute_book.py), then render:
# the Sphinx pass finds every page cached. -W turns every Sphinx warning (a failing notebook included:
# raise_on_error is set) into an error.
# No environment variable needed: rl4llm.sphinxext (in _config.yml) hides progress bars in the static pages.
book: book-execute
	$(BIN)/jupyter-book build . -W --keep-going

book-execute: $(STAMP)
	$(BIN)/python tools/execute_book.py --workers 2

# Regenerate-and-compare the student copies, then grade: the reference must score 100%, untouched copies 0.
assignments-check: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python tools/check_assignments.py

book-clean:
	rm -rf _build

clean: book-clean
	rm -rf $(VENV)
