"""What can go wrong with the database, in the groups the store acts on."""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

try:  # the PostgreSQL driver is optional for a SQLite-only install
    import psycopg

    DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
    _LINE_ERRORS: tuple[type[Exception], ...] = (
        sqlite3.DataError,
        sqlite3.IntegrityError,
        psycopg.DataError,
        psycopg.IntegrityError,
    )
except ImportError:  # pragma: no cover
    DRIVER_ERRORS = (sqlite3.Error,)
    _LINE_ERRORS = (sqlite3.DataError, sqlite3.IntegrityError)

# Errors that mean "the database cannot take this now" (the spool takes it instead).
DB_ERRORS: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, OSError, *DRIVER_ERRORS)


class StoreUnavailable(RuntimeError):
    """The database cannot be used (and, for callbacks, neither can the spool): answer 503."""


class Broken(sa_exc.SQLAlchemyError):
    """A connection turned out to be dead (the cause is chained); worth one retry."""


def line_specific(exc: BaseException) -> bool:
    """An error caused by one row (bad data), not by the database being away."""
    if isinstance(exc, Broken) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, sa_exc.StatementError):
        exc = exc.orig or exc
    return isinstance(exc, (*_LINE_ERRORS, TypeError, ValueError, KeyError))
