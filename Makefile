# make run: serve the current directory read-only to anonymous users on port 2121.
# make test: the whole suite in .venv with the test extras.
# The editable install prefers setuptools' "compat" mode (a plain .pth entry: no import
# hook, which would add ~10 ms to every inetd no-wait start from this venv); where a
# setuptools no longer offers it, the default mode is used.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

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

run: $(BIN)/ftpd
	$(BIN)/ftpd --root . --listen 2121

test: $(VENV)/.test-deps
	$(BIN)/ruff check ftpd tests bench
	$(BIN)/python -m pytest -q tests

lint: $(VENV)/.test-deps
	$(BIN)/ruff check ftpd tests bench

bench: $(VENV)/.test-deps
	$(BIN)/python bench/ftpbench.py

clean:
	rm -rf $(VENV) build *.egg-info
