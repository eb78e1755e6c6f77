# Two entry points for a fresh machine with only Python 3.11 and pip:
#   make demo   the lyrics study on the built-in synthetic demo data
#   make test   the test suite (real-data tests skip unless ../shared/data is present)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

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

clean:
	rm -rf $(VENV) runs .pytest_cache
