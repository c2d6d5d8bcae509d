"""A transition's hot statements, run below ``Connection.execute``.

A transition sends a few statements whose cost on the client is mostly SQLAlchemy's
execution path, not the database: looking the statement up in the compiled cache, an
execution context, bind and result processing set up on every call, result metadata.
For the statements every transition sends (the case bundle, the case event and the audit
event inserts, the audit heads' move), ``prepared(statement, dialect)`` compiles the Core
statement once per dialect and runs it on the DBAPI cursor of the session's connection,
in its transaction:

- with the bind and result processors SQLAlchemy itself would apply (each type's public
  ``dialect_impl(dialect).bind_processor`` / ``result_processor``), so what is stored and
  read back is the same (tests/integration/test_prepared.py compares the stored rows with
  what ``Connection.execute`` stores, on SQLite and PostgreSQL);
- firing the engine's ``before_cursor_execute`` listeners, so statement counts and
  tracing still see these statements;
- turning a DBAPI error into SQLAlchemy's (``IntegrityError`` still means a lost race)
  and invalidating the connection on a disconnect, as ``Connection.execute`` does.

Only statements without expanding ("IN") or literal-execute parameters qualify: they are
rendered at execution time. The ORM's version-checked UPDATE of the case stays the ORM's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, bindparam, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any]


class Prepared:
    """One Core statement compiled for one dialect."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        if compiled.literal_execute_params or compiled.post_compile_params \
                or compiled.escaped_bind_names:
            raise ValueError("a prepared statement needs plain named parameters")
        self.sql = compiled.string
        self.dialect = dialect
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        self.positional = bool(dialect.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional \
            else tuple(by_name)
        self.defaults = {name: bind.effective_value for name, bind in by_name.items()
                         if not bind.required}
        self.binds: tuple[tuple[str, Processor], ...] = tuple(
            (name, process) for name, bind in by_name.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)))
        self.columns = [(column.key, column.type)
                        for column in getattr(statement, "exported_columns", ())]
        self.keys = tuple(key for key, _ in self.columns)
        self._results: list[tuple[int, Processor]] | None = None

    def _arguments(self, params: Mapping[str, Any]) -> Any:
        values = {**self.defaults, **params}
        for name, process in self.binds:
            values[name] = process(values[name])
        if self.positional:
            return tuple(values[name] for name in self.names)
        return {name: values[name] for name in self.names}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute with one set of parameters; the rows it returns, processed."""
        rows, description = self._run(conn, self._arguments(params), many=False)
        if not rows:
            return []
        processors = self._result_processors(description)
        out = []
        for row in rows:
            values = list(row)
            for i, process in processors:
                if values[i] is not None:
                    values[i] = process(values[i])
            out.append(tuple(values))
        return out

    def execute(self, conn: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per set of parameters (``executemany`` for more than one)."""
        if len(params) == 1:
            self._run(conn, self._arguments(params[0]), many=False)
        elif params:
            self._run(conn, [self._arguments(p) for p in params], many=True)

    def _result_processors(self, description: Any) -> list[tuple[int, Processor]]:
        """(column index, processor) for the columns that have one, from the first
        result's description (a processor may depend on the driver's column type)."""
        if self._results is None:
            self._results = [
                (i, process) for i, ((_, type_), column) in enumerate(
                    zip(self.columns, description, strict=True))
                if (process := type_.dialect_impl(self.dialect).result_processor(
                    self.dialect, column[1]))]
        return self._results

    def _run(self, conn: Connection, args: Any, *, many: bool) -> tuple[list[Any], Any]:
        proxied = conn.connection           # begins nothing: the session's transaction is on
        cursor = proxied.driver_connection.cursor()     # type: ignore[union-attr]
        try:
            if conn.dispatch.before_cursor_execute:
                conn.dispatch.before_cursor_execute(conn, cursor, self.sql, args, None, many)
            if many:
                cursor.executemany(self.sql, args)
            else:
                cursor.execute(self.sql, args)
            if not self.columns:
                return [], None
            # psycopg builds the description anew on each access: read it once
            return cursor.fetchall(), (cursor.description if self._results is None else None)
        except self.dialect.loaded_dbapi.Error as exc:
            lost = self.dialect.is_disconnect(exc, proxied.dbapi_connection, cursor)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(self.sql, args, exc, self.dialect.loaded_dbapi.Error,
                                      connection_invalidated=lost,
                                      dialect=self.dialect) from exc
        finally:
            cursor.close()


def named_values(table: Table, columns: Sequence[str]) -> dict[str, Any]:
    """VALUES for ``columns`` of ``table``: parameters named as the columns, typed as
    them (a prepared statement's parameters are fixed when it is compiled)."""
    return {c: bindparam(c, type_=table.c[c].type) for c in columns}


@functools.lru_cache(maxsize=128)
def insert_into(table: Table, columns: tuple[str, ...]) -> Insert:
    """An insert of ``columns`` into ``table``, with parameters named as the columns."""
    return insert(table).values(named_values(table, columns))


@functools.lru_cache(maxsize=512)
def prepared(statement: ClauseElement, dialect: Dialect) -> Prepared:
    """``statement`` compiled for ``dialect``, once (statements are cached by identity:
    pass the same object, built once)."""
    return Prepared(statement, dialect)
