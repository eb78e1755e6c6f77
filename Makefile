# Two entry points for a fresh machine with only Python 3.11 and pip:
#   make demo   the lyrics study on the built-in synthetic demo data
#   make test   the test suite (real-data tests skip unless ../shared/data is present)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean results

install: $(STAMP)

# Pinned requirements first (torch==2.13.0 among them, so no CUDA build is pulled),
# then the package itself, editable and without touching the pins.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/studybench demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Rewrite the README's results section from finished run folders (no numbers typed by hand):
#   make results RUNS=path/to/study-output
results: $(STAMP)
	@test -n "$(RUNS)" || { echo "usage: make results RUNS=<a study's --out folder>"; exit 2; }
	$(BIN)/studybench report $(RUNS) --readme README.md

clean:
	rm -rf $(VENV) runs .pytest_cache
