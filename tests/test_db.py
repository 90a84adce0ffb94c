"""Database plumbing on real servers: insert-or-ignore, the write lock, error translation."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from cellctl import migrate
from cellctl.db import create_engine, insert_ignoring_duplicates, write_transaction
from cellctl.errors import DatabaseError, SchemaMissing
from cellctl.tables.api import cell_mappings, host_mappings


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


def test_missing_schema_is_reported_as_such(dbfactory):
    engine = create_engine(dbfactory.new("empty"), label="API database", must_exist=False)
    try:
        with pytest.raises(SchemaMissing, match="no cellctl or Nova schema"), \
                engine.connect() as conn:
            conn.execute(sa.select(cell_mappings.c.id)).all()
    finally:
        engine.dispose()
