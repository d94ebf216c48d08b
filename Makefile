# Normalization, Measured: `make book` builds the HTML, `make test` checks everything.
# Both create .venv and install the pinned requirements first (once; again when they change).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB     := $(BIN)/jupyter-book
HTML   := _build/html
PORT   ?= 8000

.PHONY: help setup book test execute serve bench clean

help:
	@echo "make book     build the HTML book into $(HTML) (warnings are errors)"
	@echo "make test     unit tests, every notebook (nbval) and the browser checks"
	@echo "make execute  re-run every notebook in place, refreshing its stored outputs"
	@echo "make serve    serve $(HTML) on http://127.0.0.1:$(PORT)"
	@echo "make bench    run the benchmark suite (table + JSON)"
	@echo "make clean    remove the build, caches and test artefacts (keeps .venv)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

book: $(STAMP)
	@rm -rf _build
	$(JB) build . --warningiserror --nitpick --keep-going
	@echo
	@echo "The book is in $(HTML)/index.html  (or: make serve, then http://127.0.0.1:$(PORT))"

test: $(STAMP)
	$(BIN)/python -m pytest --nbval -n 2 --dist loadfile

execute: $(STAMP)
	$(BIN)/jupyter execute --inplace --timeout=600 book/*.ipynb

serve:
	@test -f $(HTML)/index.html || { echo "No book yet: run 'make book' first."; exit 1; }
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory $(HTML)

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks --notebooks

clean:
	rm -rf _build .pytest_cache .hypothesis .coverage benchmarks/results
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
