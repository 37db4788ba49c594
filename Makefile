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

.PHONY: install test test-quick test-book-runs book book-clean assignments-check clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python -m pytest

test-quick: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python -m pytest -m "not slow"

# Re-run the experiments whose numbers the book quotes from <page>.runs.json files (tools/quoted_runs.py).
test-book-runs: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python -m pytest -m book_runs tests/test_book_quoted_runs.py

# -W turns every Sphinx warning (a failing notebook included: raise_on_error is set) into an error.
# No environment variable needed: rl4llm.sphinxext (in _config.yml) hides progress bars in the static pages.
book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

# Regenerate-and-compare the student copies, then grade: the reference must score 100%, untouched copies 0.
assignments-check: $(STAMP)
	RL4LLM_QUIET=1 $(BIN)/python tools/check_assignments.py

book-clean:
	rm -rf _build

clean: book-clean
	rm -rf $(VENV)
