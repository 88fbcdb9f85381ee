# cmr-search: the commands the README names.
# `make demo` runs the main job on the embedded default; `make test` installs everything and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
# medspaCy without its spacy<3.8 pin on Python < 3.12 (pyproject.toml says why); a no-op where pip already has them
MEDSPACY_SPEC ?= medspacy==1.3.1 PyRuSH==1.0.13
DATA ?= cmr-data
DEMO_N ?= 100
# The tested version of every package (`make constraints` regenerates it); `make install CONSTRAINTS=`: none
CONSTRAINTS ?= constraints.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
# CUDA-only packages (a GPU machine's torch pulls them; its own pins choose them) and the local build tag
GPU_ONLY := ^(nvidia-|triton==|cuda-)
FRESH := .venv-constraints

.PHONY: install browser orthanc test test-fast demo demo-index bench sheets clean constraints

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_C) --upgrade pip
	$(PY) -m pip install $(PIP_C) "$(TORCH_SPEC)"
	$(PY) -m pip install $(PIP_C) -e ".[dev]"
	$(PY) -m pip install $(PIP_C) --no-deps $(MEDSPACY_SPEC)
	touch $@

install: $(VENV)/.installed

# constraints.txt anew: the newest versions pyproject.toml allows, resolved in a fresh venv by the same
# install steps without constraints (the project itself, CUDA-only packages and torch's +cpu tag left out).
# Then `make clean test` tests them; commit constraints.txt when it passes.
constraints:
	rm -rf $(FRESH)
	$(PYTHON) -m venv $(FRESH)
	$(FRESH)/bin/python -m pip install --upgrade pip
	$(FRESH)/bin/python -m pip install "$(TORCH_SPEC)"
	$(FRESH)/bin/python -m pip install -e ".[dev]"
	$(FRESH)/bin/python -m pip install --no-deps $(MEDSPACY_SPEC)
	{ echo "# The versions \`make install\` pins (pip install -c constraints.txt), tested with Python 3.11."; \
	  echo "# Regenerate with \`make constraints\`, then \`make clean test\` (README, Install)."; \
	  $(FRESH)/bin/python -m pip freeze --all --exclude-editable | grep -v '^#' | grep -Ev '$(GPU_ONLY)' \
	  | sed -E 's/^(torch[a-z]*==[^+]*)\+.*/\1/' | LC_ALL=C sort -f; } > constraints.txt
	rm -rf $(FRESH)

# Debian's chromium for the browser end-to-end test (Playwright drives /usr/bin/chromium; it never
# downloads a browser). Installed when we are root on Debian; otherwise that one test skips.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null || echo "chromium not installed"; \
	else echo "note: /usr/bin/chromium missing (sudo apt-get install chromium): the browser test will skip"; fi

# Debian's Orthanc PACS and its DICOMweb plugin for the `cmr index --dicomweb` tests (tests/helpers/orthanc.py
# starts its own server on a free loopback port). Installed when we are root on Debian; otherwise they skip.
orthanc:
	@if [ -x /usr/sbin/Orthanc ] && [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null || echo "orthanc not installed"; \
	else echo "note: Orthanc missing (sudo apt-get install orthanc orthanc-dicomweb): the DICOMweb tests will skip"; fi

# The README's test command: install, then the whole suite (fast and slow tests), in TEST_WORKERS processes
# (pytest-xdist; 2 fits the 2-core CI machine: ~25 % less wall time than one), the slowest 25 listed.
TEST_WORKERS ?= 2
test: install browser orthanc
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "" -n $(TEST_WORKERS) --durations=25

# What plain `pytest` runs: the fast suite.
test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# The main job: a SYNTHETIC archive -> the embedded index -> three example queries -> the UI
# (ui/demo_cmd.py; it prints the URL; Ctrl-C stops the server). `make demo-index` stops before the UI.
demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/cmr demo --n $(DEMO_N) --data $(DATA) --serve

demo-index: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/cmr demo --n $(DEMO_N) --data $(DATA)

bench: install
	$(PY) bench/phantom.py

# The phantom's label contact sheets in docs/phantom/ (realistic and randomized rendering, with labels).
sheets: install
	$(PY) -m cmr_search.phantom.sheets docs/phantom

clean:
	rm -rf $(VENV) $(FRESH) $(DATA) .pytest_cache
