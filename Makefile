# lilaw-edu: `make book` builds the rendered book, `make test` runs every test.
# Both create .venv and install everything on a fresh machine.
# Exact versions for this project's machines: .ci/constraints.txt (torch 2.14.1 / torchvision 0.29.1).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt
TIMEOUT ?= timeout
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export MPLBACKEND := Agg
export LILAW_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install browser test test-unit test-notebooks test-browser book demo bench dist clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[dev,book]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Debian's chromium + playwright-core (npm) for the browser test of the static explorer.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	test -d tests/browser/node_modules/playwright-core || npm ci --prefix tests/browser --no-audit --no-fund

# The book is built first so that the browser test also drives the explorer on the built page.
test: install browser book
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest tests -q
	$(TIMEOUT) 900 $(BIN)/pytest --nbval-lax --nbval-sanitize-with book/nbval_sanitize.cfg book/ -q -p no:cacheprovider

book: install
	$(TIMEOUT) 1800 $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Open _build/html/index.html"

demo: install
	$(BIN)/lilaw-edu run --dataset ecg5000 --noise uniform --rate 0.3 --seed 0 --method both \
		--preset cpu-ecg5000 --out runs/demo

bench: install
	$(BIN)/python benchmarks/overhead.py

# Release files: sdist and wheel in dist/ (isolated build, as a PyPI upload would have), checked by twine.
# Releasing: bump lilaw_edu/__init__.py, LILAW_REF in the notebooks' setup cell, CHANGELOG.md and CITATION.cff,
# then `make test dist` and push the tag v<version> (README: "Publishing").
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf _build runs .pytest_cache
