# camgrid — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed
DATA   ?= ./data

.PHONY: demo test install sysdeps bench-sip clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# System packages the suite uses as real peers (SIPp). Installed when missing and we are root;
# tests that need them are skipped with a clear reason otherwise.
sysdeps:
	@command -v sipp >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester) >/dev/null || echo "warning: could not install sip-tester"; \
	  else echo "note: sipp not installed (apt-get install sip-tester); SIPp tests will be skipped"; fi; }

demo: $(STAMP)
	$(PY) -m camgrid demo --data-dir $(DATA)

test: $(STAMP) sysdeps
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench-sip: $(STAMP) sysdeps
	$(PY) bench/sip_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
