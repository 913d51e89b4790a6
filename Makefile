# camgrid — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed
DATA   ?= ./data

.PHONY: demo test install sysdeps web console bench-sip clean

$(STAMP): pyproject.toml setup.py camgrid/media/_native.c camgrid/gb28181/sip/_sipfast.c
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# System packages the suite uses as real peers: SIPp, and Chromium (with a CJK font for readable
# screenshots) for the console's browser test. Installed when missing and we are root; tests that
# need them are skipped with a clear reason otherwise (in CI, with CI set, they fail instead).
sysdeps:
	@missing=""; \
	command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-zenhei"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; apt-get update -qq >/dev/null || true; \
	    for pkg in $$missing; do \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null || echo "warning: could not install $$pkg"; \
	    done; \
	  else echo "note: not installed:$$missing (apt-get install$$missing); the tests that need them will be skipped"; fi; \
	fi

# The web console (web/ → web/dist, served by `camgrid serve` at /). Rebuilt only when its
# sources change: npm ci when the lock file does, the build (type check, bundle, size budget)
# when any source does. Needs Node.js >= 20.19.
WEB_SOURCES = $(shell find web/src web/scripts -type f 2>/dev/null) web/index.html web/vite.config.ts \
              web/tsconfig.json web/tsconfig.app.json web/tsconfig.node.json
NODE_OK = $(shell node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)' 2>/dev/null && command -v npm >/dev/null && echo yes)

web/node_modules/.installed: web/package.json web/package-lock.json
	@[ "$(NODE_OK)" = yes ] || { echo "error: building the console needs Node.js >= 20.19 with npm (https://nodejs.org/)"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/.built: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build
	touch $@

web: web/dist/.built

# The console when Node.js can build it; else a note (the platform serves a "build me" page and
# the browser test is skipped), or an error in CI.
console:
ifeq ($(NODE_OK),yes)
	@$(MAKE) --no-print-directory web
else ifdef CI
	@echo "error: Node.js >= 20.19 with npm is needed to build the console"; exit 1
else
	@echo "note: Node.js >= 20.19 not found: the console is not built (its browser test will be skipped)"
endif

demo: $(STAMP) console
	$(PY) -m camgrid demo --data-dir $(DATA) --audio g711a

test: $(STAMP) sysdeps console
	$(PY) -m pytest -q -p no:cacheprovider --durations=30 $(PYTEST_ARGS)

# The SIP benchmark compares camgrid with Kamailio (Debian's package puts it in /usr/sbin); SIPp
# comes from sysdeps. Installed when missing and we are root, as sysdeps does; else the command is said.
bench-sip: $(STAMP) sysdeps
	@if ! command -v kamailio >/dev/null 2>&1 && [ ! -x /usr/sbin/kamailio ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing: kamailio"; apt-get update -qq >/dev/null || true; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio >/dev/null \
	      || { echo "error: could not install kamailio; install it with: apt-get install kamailio"; exit 1; }; \
	  else echo "error: the SIP benchmark needs Kamailio; install it with: sudo apt-get install kamailio"; exit 1; fi; \
	fi
	$(PY) bench/sip_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache web/dist web/node_modules
