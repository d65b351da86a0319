"""Options shared by the fast tests (tests/) and the conformance suite (integration/)."""


def pytest_addoption(parser):
    group = parser.getgroup("lbc")
    group.addoption("--lbc-target", action="append", default=[],
                    help="Run conformance scenarios for this target only (repeatable; default: every target).")
    group.addoption("--lbc-docker", action="store_true", default=False,
                    help="Run the proxies in Docker containers (integration/docker).")
