"""The reliability suite: real servers, real processes, real faults, mostly on PostgreSQL.

Faults of a database server (dropped connections, outages) only exist on
PostgreSQL, so by default these tests run there alone; without it they are
skipped with a loud reason (or fail, with REQUIRE_POSTGRES=1 as CI sets). The
concurrency tests (test_concurrent_payers, test_sqlite_payers) choose their
databases themselves: SQLite, the `make run` default, must keep racing payers
apart as well. Every server a test starts binds 127.0.0.1 and is stopped by
that test.
"""
import pytest

from tests.conftest import _empty_postgres


@pytest.fixture
def database_url(request):
    """A freshly emptied PostgreSQL schema (modules that race payers also run on SQLite: see above)."""
    url = request.getfixturevalue("postgres_url")  # skips loudly, or fails under REQUIRE_POSTGRES=1
    _empty_postgres(url)
    return url
