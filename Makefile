# lbc: the commands the README documents. `make help` lists them.
# Everything runs from a virtual environment in the checkout: Debian's own python3 refuses
# `pip install` outside one (PEP 668). SYSTEM_PYTHON creates it; PYTHON=... uses another one.
SYSTEM_PYTHON ?= python3
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
LBC ?= $(dir $(PYTHON))lbc
PIP ?= PIP_DISABLE_PIP_VERSION_CHECK=1 $(PYTHON) -m pip
# The tests run programs the venv installs (envoy, pre-commit, lbc) by name.
export PATH := $(abspath $(dir $(PYTHON))):$(PATH)
PYTEST ?= $(PYTHON) -m pytest
TARGET ?= haproxy

.PHONY: help install bytecode test-deps test test-min test-fast lint gen-check golden docs conformance conformance-docker conformance-docker-ci images bench clean

help:
	@echo "make install            install lbc (editable) into .venv and compile an example"
	@echo "make test-deps test     install what the tests need (apt, pip, dockerd) and run every test"
	@echo "make test-fast          unit, rule and golden tests only (no proxies)"
	@echo "make lint               ruff and mypy (both must be clean)"
	@echo "make gen-check          regenerate docs/ and golden files; fail if anything changed"
	@echo "make golden             regenerate golden files (review the diff)"
	@echo "make docs               regenerate docs/ from the schema, the rules and the targets"
	@echo "make conformance TARGET=haproxy|envoy|nginx|f5"
	@echo "make conformance-docker TARGET=haproxy|envoy|nginx"
	@echo "make conformance-docker-ci   the Docker subset (S1 S4 S6 S10 S13 S15, every open-source target)"
	@echo "make bench              validate/compile time and RSS at 1k/10k/50k hosts, proxy CPU per request"
	@echo "make test-min           the fast tests that matter on the lowest dependency versions pyproject allows"

$(PYTHON):
	$(SYSTEM_PYTHON) -m venv $(VENV)

install: $(PYTHON)
	@$(PIP) install -q -e .
	@$(MAKE) -s bytecode
	@$(LBC) validate -q examples/*.yaml
	@$(LBC) compile -q examples/flynet.yaml --target haproxy -o out/flynet-haproxy
	@echo "lbc $$($(LBC) --version | cut -d' ' -f2) is installed in $(VENV): run $(LBC) (or . $(VENV)/bin/activate, then lbc)."
	@echo "The examples validate; examples/flynet.yaml compiled to out/flynet-haproxy/."

test-deps:
	./.ci/deps

# pip compiles a package's bytecode when it installs it, but not for an editable install: where the
# environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE), every lbc command would compile
# lbc's sources again (60 ms of a 120 ms small `lbc validate`, measured).
bytecode:
	@$(PYTHON) -m compileall -q compiler targets templates > /dev/null

# Everything: lint, generated files up to date, fast tests, local conformance for every target,
# then the Docker subset.
test: lint gen-check
	$(PYTEST) -q -p no:cacheprovider tests integration
	$(MAKE) conformance-docker-ci
	$(MAKE) test-min

test-fast: lint
	$(PYTEST) -q -p no:cacheprovider tests -m "not integration"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) .ci/typecheck

# docs/ and tests/golden/ are generated: regenerating them must change nothing that is committed
# (and leave nothing new behind).
gen-check: docs golden
	@git diff --exit-code --stat -- docs tests/golden README.md || \
		{ echo "generated files are out of date: run make docs golden and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- docs tests/golden)" || \
		{ git status --short -- docs tests/golden; echo "new generated files: commit them"; exit 1; }

golden:
	LBC_UPDATE_GOLDEN=1 $(PYTEST) -q -p no:cacheprovider tests/test_golden.py

docs:
	$(PYTHON) -c "from lbc.docgen import write_pages; write_pages()"

conformance:
	$(PYTEST) -q -p no:cacheprovider integration -m conformance --lbc-target=$(TARGET)

conformance-docker:
	$(PYTEST) -q -p no:cacheprovider integration -m conformance --lbc-target=$(TARGET) --lbc-docker

# The Docker subset CI affords (every open-source target), and the Docker mode's own tests.
DOCKER_CI_SCENARIOS ?= test_s1_ or test_s4_ or test_s6_ or test_s10_ or test_s13_ or test_s15_
conformance-docker-ci:
	$(PYTEST) -q -p no:cacheprovider integration -m conformance --lbc-docker -k "$(DOCKER_CI_SCENARIOS)" \
		--lbc-target=haproxy --lbc-target=nginx --lbc-target=envoy
	$(PYTEST) -q -p no:cacheprovider integration/docker --lbc-docker

images:
	$(PYTHON) integration/docker/images.py

# The issue-18 tables: whole-process validate/compile at BENCH_SIZES (median wall and CPU seconds,
# peak RSS, 50k/10k growth), then proxy CPU per request of lbc's output vs hand-written configs
# (needs wrk, haproxy, nginx, envoy). About 15 minutes on a quiet 2-core machine.
BENCH_SIZES ?= 1000,10000,50000
BENCH_REPS ?= 5
bench: bytecode
	$(PYTHON) bench/scale.py --lbc $(LBC) --sizes $(BENCH_SIZES) --reps $(BENCH_REPS)
	$(PYTHON) bench/scale.py --lbc $(LBC) --sizes 10000 --reps $(BENCH_REPS) --features
	$(PYTHON) bench/serve.py --lbc $(LBC)

# The dependency lower bounds of pyproject.toml, installed exactly in .venv-min (see .ci/min-versions).
test-min:
	./.ci/min-versions

clean:
	rm -rf out build *.egg-info .pytest_cache
