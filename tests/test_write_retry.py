"""The shared batch-retry mechanism (cellctl/writes/transactions.py) on plain servers.

On Galera it is exercised end to end by tests/test_galera.py; here: a real
InnoDB deadlock on the shared MariaDB is redone and succeeds, giving up says
it is safe to run again, and a map_instances whose cell server dies mid-stream
prints one line and no driver noise.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from instance_helpers import MARKER
from test_map_instances_crash import current_marker, start_map

from cellctl.db import create_engine
from cellctl.errors import DatabaseError
from cellctl.tables.rows import insert_fake_instances
from cellctl.writes.galera import DEADLOCK, Contention, Retry, retried, write_limits


@pytest.fixture
def engine(mysql_factory):
    url = mysql_factory.new("retry")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 0), (2, 0)")
    yield engine
    engine.dispose()


def test_a_real_deadlock_is_redone(engine):
    """Two transactions lock rows 1 and 2 in opposite orders: InnoDB kills one (1213);
    the retried one is redone and both updates land."""
    ready = threading.Barrier(2)
    attempts = []

    def transaction(first: int, second: int) -> None:
        attempts.append(first)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE t SET v = v + 1 WHERE id = {first}")
            if len(attempts) <= 2:
                ready.wait(10)
                time.sleep(0.2)
            conn.exec_driver_sql(f"UPDATE t SET v = v + 1 WHERE id = {second}")

    errors = []

    def run(first: int, second: int) -> None:
        try:
            retried(lambda: transaction(first, second), what="test")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(attempts) == 3  # one of the two was a deadlock victim, redone once
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT v FROM t ORDER BY id").scalars().all() == [2, 2]


def test_giving_up_says_it_is_safe_to_run_again():
    calls = []

    def always_deadlocks() -> None:
        calls.append(1)
        raise DatabaseError("Cannot use API database x: Deadlock found", errno=DEADLOCK)

    with pytest.raises(Contention, match="safe to run the command again") as raised:
        retried(always_deadlocks, what="Mapping hosts", retries=2)
    assert len(calls) == 3
    assert "Deadlock found" in str(raised.value)
    with pytest.raises(Contention):
        retried(lambda: (_ for _ in ()).throw(Retry("collided")), what="x", retries=1)


def test_other_errors_are_not_retried():
    calls = []

    def broken() -> None:
        calls.append(1)
        raise DatabaseError("Cannot use API database x: Access denied", errno=1045)

    with pytest.raises(DatabaseError, match="Access denied"):
        retried(broken, what="x")
    assert calls == [1]


def test_plain_server_has_no_write_set_limits(engine):
    limits = write_limits(engine)
    assert not limits.galera and limits.max_rows is None and limits.max_bytes is None
    assert limits.max_statement and limits.max_statement > 1000
    assert limits.rows_for(20_000, 400) == 20_000


def test_map_instances_whose_api_server_dies_prints_one_line(mysql_factory, make_cloud,
                                                              throwaway_mariadb):
    """The API database's server is SIGKILLed while the cell's instances still stream:
    one error line, exit 255, no 'Exception ignored in: MySQLResult.__del__' traceback
    from the abandoned stream."""
    cloud = make_cloud(mysql_factory)
    cloud.api_url = throwaway_mariadb.create_database(f"api_{uuid.uuid4().hex[:8]}")
    cloud.synced()
    created = cloud.ok("create_cell", "--name", "cell1", "--transport-url", "memory:///",
                       "--database_connection", cloud.cell_url, "--verbose")
    cell = created.stdout.strip().splitlines()[-1]
    engine = sa.create_engine(cloud.cell_url)
    try:
        insert_fake_instances(engine, 120_000)  # six batches
    finally:
        engine.dispose()
    proc = start_map(cloud, cell)
    deadline = time.monotonic() + 120
    while current_marker(cloud) is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    throwaway_mariadb.process.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 255, (out, err)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert MARKER not in err
