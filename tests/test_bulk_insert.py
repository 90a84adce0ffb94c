"""insert_ignoring_duplicates with awkward values, on every backend (and PyMySQL's fast path)."""

from __future__ import annotations

import datetime

import pytest
import sqlalchemy as sa

import cellctl.mysql_insert
from cellctl import migrate
from cellctl.db import create_engine, insert_ignoring_duplicates
from cellctl.tables.api import cell_mappings, instance_mappings

AWKWARD = ["it's", 'say "hi"', "back\\slash", "new\nline", "100% %s %(x)s",
           "ünïcødé ✓", "tab\there", "\x1a", "--", "'; DROP TABLE instance_mappings; --"]


@pytest.fixture
def api_engine(dbfactory):
    engine = create_engine(dbfactory.new("api"), label="API database", must_exist=False)
    migrate.sync(engine, "api")
    with engine.begin() as conn:
        conn.execute(cell_mappings.insert().values(id=7, uuid="c7"))
    yield engine
    engine.dispose()


def rows_for(values, when):
    return [{"instance_uuid": f"u{n}", "cell_id": 7 if n % 2 else None, "project_id": value,
             "user_id": None if n % 3 == 0 else value, "queued_for_delete": bool(n % 2),
             "created_at": when} for n, value in enumerate(values)]


def stored(engine):
    with engine.connect() as conn:
        rows = conn.execute(sa.select(
            instance_mappings.c.instance_uuid, instance_mappings.c.cell_id,
            instance_mappings.c.project_id, instance_mappings.c.user_id,
            instance_mappings.c.queued_for_delete, instance_mappings.c.created_at,
        ).order_by(instance_mappings.c.instance_uuid)).all()
    return [{**row._asdict(), "queued_for_delete": bool(row.queued_for_delete)} for row in rows]


def test_values_round_trip_exactly(api_engine):
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    rows = rows_for(AWKWARD, when)
    with api_engine.begin() as conn:
        assert insert_ignoring_duplicates(conn, instance_mappings, rows) == len(rows)
        # Again, plus one new row: only the new one counts.
        again = [*rows, *rows_for(["fresh"], when)]
        again[-1]["instance_uuid"] = "zz-new"
        assert insert_ignoring_duplicates(conn, instance_mappings, again) == 1
    expected = sorted([*rows, again[-1]], key=lambda r: r["instance_uuid"])
    assert stored(api_engine) == expected


def test_mysql_statements_are_split_and_escaping_follows_sql_mode(mysql_factory, monkeypatch):
    monkeypatch.setattr(cellctl.mysql_insert, "MAX_STATEMENT_CHARS", 400)
    engine = create_engine(mysql_factory.new("api"), label="API database", must_exist=False)
    try:
        migrate.sync(engine, "api")
        when = datetime.datetime(2024, 5, 6, 7, 8, 9)
        rows = rows_for([*AWKWARD, "nul\0byte"] * 3, when)  # PostgreSQL refuses NUL
        for n, row in enumerate(rows):
            row["instance_uuid"] = f"u{n:03}"
        with engine.begin() as conn:
            conn.execute(cell_mappings.insert().values(id=7, uuid="c7"))
            # With NO_BACKSLASH_ESCAPES a backslash is an ordinary character.
            conn.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, "
                                 "',NO_BACKSLASH_ESCAPES')")
            assert insert_ignoring_duplicates(conn, instance_mappings, rows) == len(rows)
        assert stored(engine) == rows
    finally:
        engine.dispose()
