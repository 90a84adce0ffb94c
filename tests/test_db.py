"""Database plumbing on real servers: insert-or-ignore, the write lock, error translation."""

from __future__ import annotations

import datetime
import threading

import pytest
import sqlalchemy as sa

import cellctl.writes.mysql_insert
from cellctl import migrate
from cellctl.db import create_engine
from cellctl.errors import DatabaseError, SchemaMissing
from cellctl.tables.api import cell_mappings, host_mappings, instance_mappings
from cellctl.writes.transactions import insert_ignoring_duplicates, write_transaction


@pytest.fixture
def api_engine(dbfactory):
    engine = create_engine(dbfactory.new("api"), label="API database", must_exist=False)
    migrate.sync(engine, "api")
    with engine.begin() as conn:
        conn.execute(cell_mappings.insert().values(id=1, uuid="c1"))
    yield engine
    engine.dispose()


def test_insert_ignoring_duplicates_counts_only_new_rows(api_engine):
    with api_engine.begin() as conn:
        first = insert_ignoring_duplicates(
            conn, host_mappings, [{"cell_id": 1, "host": f"h{i}"} for i in range(5)])
    with api_engine.begin() as conn:
        second = insert_ignoring_duplicates(
            conn, host_mappings, [{"cell_id": 1, "host": f"h{i}"} for i in range(3, 8)])
        assert insert_ignoring_duplicates(conn, host_mappings, []) == 0
    assert (first, second) == (5, 3)
    with api_engine.connect() as conn:
        hosts = conn.execute(sa.select(host_mappings.c.host)).scalars().all()
    assert sorted(hosts) == [f"h{i}" for i in range(8)]


def test_write_transaction_serialises_writers(api_engine):
    """Two check-then-insert writers under the same lock never both see 'absent'."""
    inserted = []
    barrier = threading.Barrier(2)

    def writer(name: str) -> None:
        barrier.wait()
        with write_transaction(api_engine, lock="test") as conn:
            exists = conn.execute(
                sa.select(sa.func.count()).select_from(host_mappings)
                .where(host_mappings.c.host == "shared")
            ).scalar()
            if not exists:
                conn.execute(host_mappings.insert().values(cell_id=1, host="shared"))
                inserted.append(name)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inserted) == 1


def test_errors_are_one_masked_line(backend_no_pg, tmp_path):
    if backend_no_pg == "mysql":
        url = "mysql+pymysql://root:secretpw@127.0.0.1:1/nope"
    else:
        url = f"sqlite:///{tmp_path}/missing-dir/x.sqlite"
    with pytest.raises(DatabaseError) as caught:
        engine = create_engine(url, label="API database")
        with engine.connect():
            pass
    message = str(caught.value)
    assert "\n" not in message
    assert "secretpw" not in message
    assert "API database" in message


def test_an_interrupt_inside_a_statement_stays_an_interrupt(api_engine):
    """A signal whose handler raises while SQLAlchemy runs a statement (seen under load:
    inside its result set-up) reaches the engine's error translation: it must come out
    as the interrupt, not as a one-line DatabaseError that a caller tolerating an
    unreachable cell would swallow (``discover_hosts --expect`` then polled on)."""
    import signal

    from cellctl.interrupts import Interrupted

    def interrupt(*_args: object) -> None:
        raise Interrupted(signal.SIGTERM)

    sa.event.listen(api_engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(Interrupted), api_engine.connect() as conn:
            conn.execute(sa.select(cell_mappings.c.uuid))
    finally:
        sa.event.remove(api_engine, "before_cursor_execute", interrupt)
    with api_engine.connect() as conn:  # the engine is still usable
        assert conn.execute(sa.select(cell_mappings.c.uuid)).scalars().all() == ["c1"]


def test_missing_schema_is_reported_as_such(dbfactory):
    engine = create_engine(dbfactory.new("empty"), label="API database", must_exist=False)
    try:
        with pytest.raises(SchemaMissing, match="no cellctl or Nova schema"), \
                engine.connect() as conn:
            conn.execute(sa.select(cell_mappings.c.id)).all()
    finally:
        engine.dispose()


# --- insert_ignoring_duplicates with awkward values (and PyMySQL's fast path) ---

AWKWARD = ["it's", 'say "hi"', "back\\slash", "new\nline", "100% %s %(x)s",
           "ünïcødé ✓", "tab\there", "\x1a", "--", "'; DROP TABLE instance_mappings; --"]


def rows_for(values, when):
    return [{"instance_uuid": f"u{n}", "cell_id": 1 if n % 2 else None, "project_id": value,
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


# The second: a value holding the character a column's strings are joined by.
@pytest.mark.parametrize("extra", ["plain", "sep\x01arator"])
def test_mysql_statements_are_split_and_escaping_follows_sql_mode(mysql_factory, monkeypatch,
                                                                  extra):
    monkeypatch.setattr(cellctl.writes.mysql_insert, "MAX_STATEMENT_CHARS", 400)
    engine = create_engine(mysql_factory.new("api"), label="API database", must_exist=False)
    try:
        migrate.sync(engine, "api")
        when = datetime.datetime(2024, 5, 6, 7, 8, 9)
        rows = rows_for([*AWKWARD, "nul\0byte", extra] * 3, when)  # PostgreSQL refuses NUL
        for n, row in enumerate(rows):
            row["instance_uuid"] = f"u{n:03}"
        with engine.begin() as conn:
            conn.execute(cell_mappings.insert().values(id=1, uuid="c1"))
            # With NO_BACKSLASH_ESCAPES a backslash is an ordinary character.
            conn.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, "
                                 "',NO_BACKSLASH_ESCAPES')")
            assert insert_ignoring_duplicates(conn, instance_mappings, rows) == len(rows)
        assert stored(engine) == rows
    finally:
        engine.dispose()


def test_mysql_statements_stay_below_the_servers_packet_in_bytes(mysql_factory, monkeypatch):
    """The server's max_allowed_packet bounds a statement's bytes, not its characters:
    statements of multi-byte characters still fit."""
    import cellctl.writes.galera
    from cellctl.writes.galera import WriteLimits

    packet = 3000
    monkeypatch.setattr(cellctl.writes.galera, "write_limits",
                        lambda engine: WriteLimits(max_statement=packet))
    engine = create_engine(mysql_factory.new("api"), label="API database", must_exist=False)
    sent: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT IGNORE"):
            sent.append(len(statement.encode()))

    try:
        migrate.sync(engine, "api")
        when = datetime.datetime(2024, 5, 6, 7, 8, 9)
        rows = rows_for(["\u2713" * 80] * 12, when)  # 240 bytes of project_id each (utf8)
        with engine.begin() as conn:
            conn.execute(cell_mappings.insert().values(id=1, uuid="c1"))
            assert insert_ignoring_duplicates(conn, instance_mappings, rows) == len(rows)
        assert stored(engine) == sorted(rows, key=lambda r: r["instance_uuid"])
        assert len(sent) > 1 and max(sent) <= packet, sent
    finally:
        engine.dispose()


def test_a_cell_url_template_is_resolved_once_per_command(tmp_path):
    """The probe, the unreachable mark and the engine take one resolved URL per template."""
    from cellctl.cells.reach import probe_cells
    from cellctl.cells.refs import CellRef, cell_database
    from cellctl.db import Databases
    from cellctl.settings import resolve

    settings = resolve(config_files=(),
                       api_database_connection=f"sqlite:///{tmp_path}/api.db",
                       database_connection="mysql+pymysql://nova:secret@127.0.0.1:3306/nova",
                       transport_url="rabbit://guest:guest@127.0.0.1:5672/")
    # Port 1 refuses at once: the cell is dead, named through its template.
    cell = CellRef(1, "11111111-1111-1111-1111-111111111111", "dead",
                   "{scheme}://{username}:{password}@{hostname}:1/cell1",
                   "{scheme}://{username}:{password}@{hostname}:{port}/")
    with Databases(settings) as dbs:
        database = dbs.expand_database_url(cell.database_connection)
        transport = dbs.expand_transport_url(cell.transport_url)
        assert database == "mysql+pymysql://nova:secret@127.0.0.1:1/cell1"
        assert transport == "rabbit://guest:guest@127.0.0.1:5672/"
        [probe] = probe_cells(dbs, [cell], 3.0, queues=False)
        assert probe.probe is not None and not probe.probe.ok
        # Later users get the very value resolved first, not a fresh expansion.
        assert dbs.expand_database_url(cell.database_connection) is database
        assert dbs.expand_transport_url(cell.transport_url) is transport
        with pytest.raises(DatabaseError) as failed:
            cell_database(dbs, cell)
        assert str(failed.value) == probe.probe.error
        assert "secret" not in str(failed.value)
    with Databases(settings) as other:  # another command resolves afresh
        assert other.expand_database_url(cell.database_connection) is not database
