"""The Docker mode's fixtures for the tests of this folder (they run only with --lbc-docker)."""
from dockermode import *  # noqa: F401,F403
