"""PostgreSQL for tests: a fresh schema per test on the server named by TEST_DATABASE_URL.

    from tests.pg import fresh_postgres_url

    with fresh_postgres_url() as url:   # postgresql://...?options=-csearch_path%3Dt_...
        store = Store(url, spool_path=...)

The schema is created empty and dropped (CASCADE) afterwards.  When the server cannot be
reached the test is skipped on a laptop and fails under CI (``tests.conftest.needs``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL, make_url

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_test_url() -> URL:
    """TEST_DATABASE_URL (or the local default) as a plain ``postgresql://`` URL."""
    url = make_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL)
    return url.set(drivername="postgresql")


def _conninfo(url: URL) -> str:
    return url.set(query={}).render_as_string(hide_password=False)


@contextmanager
def fresh_postgres_url() -> Iterator[str]:
    """Yield a URL whose connections use a new, empty schema; drop it afterwards."""
    import psycopg

    from tests.conftest import needs

    url = postgres_test_url()
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        admin = psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        needs(False, f"PostgreSQL at {where} is not reachable: {exc}")
        raise  # needs() skipped or failed; this line only satisfies the type checker
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        # Text search's extension, once per database and outside the test schemas, so that
        # dropping a schema never drops it (and each store's migration finds it ready).
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        admin.execute(f'CREATE SCHEMA "{schema}"')
        options = url.query.get("options")
        extra = f"-csearch_path={schema}"
        if isinstance(options, str) and options:
            extra = f"{options} {extra}"
        yield url.update_query_dict({"options": extra}).render_as_string(hide_password=False)
    finally:
        try:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            admin.close()
