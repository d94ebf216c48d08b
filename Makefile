# Normalization, Measured: `make book` builds the HTML, `make test` checks everything.
# Both create .venv and install the pinned requirements first (once; again when they change).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB     := $(BIN)/jupyter-book
PIP    := $(BIN)/python -m pip --disable-pip-version-check
HTML   := _build/html
PORT   ?= 8000
# PyTorch's CPU-only wheels (no CUDA libraries, a venv of under 2 GB instead of about 6 GB).
# Used for torch alone, and only when it answers within PROBE_TIMEOUT seconds; otherwise torch
# comes from pip's configured index or mirror. `make TORCH_INDEX= test` skips it.
TORCH_INDEX   ?= https://download.pytorch.org/whl/cpu
PROBE_TIMEOUT ?= 5
# `make execute ALL=1` re-runs every notebook, not only those whose inputs changed.
ALL    ?=
NAME   ?=

.PHONY: help setup book test execute serve bench clean pdf new-chapter pin-install-cells

help:
	@echo "make book               build the HTML book into $(HTML) (warnings are errors)"
	@echo "make test               unit tests, every notebook (nbval) and the browser checks"
	@echo "make execute [ALL=1]    re-run the notebooks whose source or companion changed (ALL=1: every one)"
	@echo "make serve              serve $(HTML) on http://127.0.0.1:$(PORT) (search needs it)"
	@echo "make pdf                the whole book as one PDF (needs TeX Live, see README)"
	@echo "make new-chapter NAME=12_slug   a new chapter from the template, executed, in _toc.yml"
	@echo "make pin-install-cells  point every notebook's install cell at this release"
	@echo "make bench              run the benchmark suite (table + JSON)"
	@echo "make clean              remove the build, caches and test artefacts (keeps .venv)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH_INDEX)" ] && $(BIN)/python tools/reachable.py "$(TORCH_INDEX)/torch/" --timeout $(PROBE_TIMEOUT); then \
		echo "torch: the CPU build from $(TORCH_INDEX)"; \
		$(PIP) install --quiet --timeout 30 --index-url "$(TORCH_INDEX)" "$$(grep '^torch==' requirements.txt)" \
			|| echo "torch: the CPU index failed; from pip's configured index"; \
	else \
		echo "torch: $(if $(TORCH_INDEX),$(TORCH_INDEX) not reachable,no TORCH_INDEX); from pip's configured index"; \
	fi
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -e .
	@touch $(STAMP)

book: $(STAMP)
	@rm -rf _build
	$(JB) build . --warningiserror --nitpick --keep-going
	@echo
	@echo "The book is in $(HTML)/index.html; for search, read it through: make serve"

test: $(STAMP)
	$(BIN)/python -m pytest --nbval -n 2 --dist loadfile

execute: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tools/nbtools.py execute $(if $(ALL),--all)

new-chapter: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make new-chapter NAME=12_slug"; exit 2; }
	OMP_NUM_THREADS=1 $(BIN)/python tools/nbtools.py new-chapter $(NAME)

pin-install-cells: $(STAMP)
	$(BIN)/python tools/nbtools.py pin-install-cells

serve:
	@test -f $(HTML)/index.html || { echo "No book yet: run 'make book' first."; exit 1; }
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory $(HTML)

pdf: $(STAMP)
	$(JB) build . --builder pdflatex --keep-going
	@echo "The PDF is _build/latex/normalization-measured.pdf"

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks --notebooks

clean:
	rm -rf _build build .pytest_cache .hypothesis .coverage benchmarks/results
	rm -rf *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
