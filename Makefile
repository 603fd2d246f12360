# make run: serve the current directory read-only to anonymous users on port 2121.
# make test: the whole suite in .venv with the test extras, and (where npm is) the
# Node.js FTP client basic-ftp in .cache/npm for tests/functional/test_client_basicftp.py.
# The editable install prefers setuptools' "compat" mode (a plain .pth entry: no import
# hook, which would add ~10 ms to every inetd no-wait start from this venv); where a
# setuptools no longer offers it, the default mode is used.
# make bench: bench/ftpbench.py, with the bench extra (pyOpenSSL) added to the venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NPM_PREFIX := .cache/npm
BASIC_FTP  := basic-ftp@6.2.3
NODE_DEPS  := $(if $(shell command -v npm),$(NPM_PREFIX)/.installed)

.PHONY: run test lint bench clean

$(BIN)/ftpd: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e . --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/ftpd
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/pip install -q -e '.[test]'
	touch $@

# make bench also installs the bench extra (pyOpenSSL, for pyftpdlib's TLS handler)
$(VENV)/.bench-deps: $(VENV)/.test-deps
	$(BIN)/pip install -q -e '.[test,bench]' --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/pip install -q -e '.[test,bench]'
	touch $@

$(NPM_PREFIX)/.installed: Makefile
	mkdir -p $(NPM_PREFIX)
	npm install --prefix $(NPM_PREFIX) --no-save --no-audit --no-fund --loglevel=error \
		--cache $(NPM_PREFIX)/_cache $(BASIC_FTP)
	touch $@

run: $(BIN)/ftpd
	$(BIN)/ftpd --root . --listen 2121

test: $(VENV)/.test-deps $(NODE_DEPS)
	$(BIN)/ruff check ftpd tests bench
	$(BIN)/python -m pytest -q tests

lint: $(VENV)/.test-deps
	$(BIN)/ruff check ftpd tests bench

bench: $(VENV)/.bench-deps
	$(BIN)/python bench/ftpbench.py

clean:
	rm -rf $(VENV) build *.egg-info .cache
