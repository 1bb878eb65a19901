# The two commands of the README:
#   make demo   installs sciml_lab and opens the quickstart notebook in JupyterLab
#   make test   installs sciml_lab with its test extras and runs the whole test suite
# Both install into .venv (CPU PyTorch 2.13.0: never the multi-GB CUDA build).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip

.PHONY: install install-test arviz1 js demo test docs-images bench system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

install: $(PY)
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[lab,dask]"

install-test: $(PY)
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[test]"

demo: install
	$(PY) -m jupyterlab example_notebooks/00_quickstart.ipynb

# Debian's chromium for the real-browser test (root on Debian/Ubuntu; elsewhere install it yourself)
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs /usr/bin/chromium: sudo apt-get install chromium"; exit 1; fi; \
	fi

# ArviZ 1.x needs Python >= 3.12 (the CPU torch wheel here is for 3.11): a torch-free
# venv where tests/test_arviz1.py reads our result files with ArviZ 1.x
ARVIZ1_VENV ?= .venv-arviz1
PYTHON312 ?= $(shell for p in python3.13 python3.12 $$HOME/.pyenv/versions/3.1[23]*/bin/python /root/.pyenv/versions/3.1[23]*/bin/python; do \
                $$p -c "import sys; assert sys.version_info >= (3, 12)" >/dev/null 2>&1 && echo $$p && break; done)
arviz1:
	@if [ -z "$(PYTHON312)" ]; then echo "no Python >= 3.12 found: tests/test_arviz1.py will say it skipped"; \
	elif [ ! -x $(ARVIZ1_VENV)/bin/python ]; then \
	  $(PYTHON312) -m venv $(ARVIZ1_VENV) && $(ARVIZ1_VENV)/bin/python -m pip install -q "arviz>=1,<2" h5netcdf h5py bokeh; fi

# the widget front end: install, bundle into sciml_lab/widgets/static/, unit-test
js:
	cd js && npm ci --no-audit --no-fund && npm run build && npm run check

# the whole suite on two workers (a test file stays on one worker: module fixtures are built once);
# it writes only into git-ignored folders (test-artifacts/, .venv*, js/node_modules)
test: system-deps install-test arviz1 js
	$(PY) -m pytest -ra -n 2 --dist loadfile --durations=25

# refresh the README's screenshots: the browser tests take them into test-artifacts/, this copies them
DOCS_IMAGES = monitor.png monitor-dark.png flowmc.png emulate.png symreg.png calibrate.png
docs-images: system-deps install-test js
	$(PY) -m pytest -ra -m browser tests/test_browser.py tests/test_browser_engines.py
	cd test-artifacts && cp $(DOCS_IMAGES) ../docs/

bench: install-test
	$(PY) bench/monitor_overhead.py

clean:
	rm -rf $(VENV) $(ARVIZ1_VENV) js/node_modules sciml_lab/widgets/static test-artifacts
