"""The reliability suite: real servers, real processes, real faults, on PostgreSQL only.

SQLite serialises writers on one file and has no connections to drop, so
these tests run on PostgreSQL alone; without it they are skipped with a loud
reason (or fail, with REQUIRE_POSTGRES=1 as CI sets). Every server a test
starts binds 127.0.0.1 and is stopped by that test.
"""
import pytest

from tests.conftest import _empty_postgres


@pytest.fixture
def database_url(request):
    """A freshly emptied PostgreSQL schema (no SQLite variant: see the module docstring)."""
    url = request.getfixturevalue("postgres_url")  # skips loudly, or fails under REQUIRE_POSTGRES=1
    _empty_postgres(url)
    return url
