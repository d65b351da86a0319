# lbc: the commands the README documents. `make help` lists them.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST ?= $(PYTHON) -m pytest
TARGET ?= haproxy

.PHONY: help install test-deps test test-fast golden docs conformance conformance-docker conformance-docker-ci images bench clean

help:
	@echo "make install            install lbc (editable) and compile an example"
	@echo "make test-deps test     install what the tests need (apt, pip, dockerd) and run every test"
	@echo "make test-fast          unit, rule and golden tests only (no proxies)"
	@echo "make golden             regenerate golden files (review the diff)"
	@echo "make docs               regenerate docs/ from the schema, the rules and the targets"
	@echo "make conformance TARGET=haproxy|envoy|nginx|f5"
	@echo "make conformance-docker TARGET=haproxy|envoy|nginx"
	@echo "make conformance-docker-ci   the Docker subset (S1 S4 S6 S10 S13 S15, every open-source target)"
	@echo "make bench              compile and proxy benchmarks"

install:
	$(PIP) install -q -e .
	lbc validate examples/*.yaml
	lbc compile examples/flynet.yaml --target haproxy -o out/flynet-haproxy
	@echo "compiled examples/flynet.yaml -> out/flynet-haproxy/"

test-deps:
	./.ci/deps

# Everything: fast tests, local conformance for every target, then the Docker subset.
test:
	$(PYTEST) -q -p no:cacheprovider tests integration
	$(MAKE) conformance-docker-ci

test-fast:
	$(PYTEST) -q -p no:cacheprovider tests -m "not integration"

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

bench:
	$(PYTHON) bench/run.py

clean:
	rm -rf out build *.egg-info .pytest_cache
