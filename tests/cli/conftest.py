"""CLI tests run `ftops` in-process through its real entry point (see tests/e2e/conftest.py)."""

from tests.e2e.conftest import Project, project  # noqa: F401 (fixture)
