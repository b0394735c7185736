# Two entry points a newcomer needs: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU build that lies on this machine's disk (/opt/wheels); a bare `torch` would pull CUDA.
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: demo test lint bench clean

$(BIN)/dlsp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(BIN)/pip install --quiet $(FIND_LINKS) -e '.[dev]'
	@touch $@

demo: $(BIN)/dlsp
	$(BIN)/dlsp demo --out demo_out

test: $(BIN)/dlsp
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 -q

bench: $(BIN)/dlsp
	$(BIN)/python benchmarks/stft.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
