"""Issue 22: SIGINT exits 130 and SIGTERM 143 at any moment of a real run, one line on
stderr, no traceback; committed work stays and a rerun ends as an uninterrupted run.

Each command runs as its own process on MariaDB and PostgreSQL and is signalled at
several moments, from start-up (imports, settings) to the middle of its batches.
The codes measured per moment are written to the test's output (``-s``) and to
``interrupt-codes.txt`` in its temporary directory.
"""

from __future__ import annotations

import difflib
import itertools
import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from auditsupport import every_kind, fingerprint, real_mappings
from conftest import Cloud, DatabaseFactory, require_server
from hostsupport import add_hosts, add_ironic_nodes, cellctl_process, setup_cells
from instance_helpers import seed_fake_instances

# Seconds after the process started, and never before cellctl's handlers are in place
# (``_wait_for_handlers``): until then the interpreter itself is starting (site, the
# first imports, ~0.05 s on an idle machine) and a signal ends Python as Python ends,
# not cellctl's to handle; from then on, cellctl's start-up is under way.
MOMENTS = (0.3, 0.6, 1.0, 1.5, 2.2)
SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}
# Each moment once, the two signals taking turns: both signals early and late, five runs
# a command rather than ten (the handler is one function for both).
SIGNAL_AT_MOMENT = tuple(zip(itertools.cycle(SIGNALS), MOMENTS, strict=False))


@pytest.fixture(params=["mysql", "postgresql"])
def server_cloud(request, tmp_path):
    require_server(request.param)
    factory = DatabaseFactory(request.param, tmp_path)
    yield Cloud.new(factory, tmp_path)
    factory.drop_all()


def interrupt_at_moments(cloud: Cloud, args: list[str], label: str, tmp_path: Path,
                         finished: Callable[[], bool] | None = None,
                         ) -> list[tuple[str, str, float, str]]:
    """Signal ``cellctl *args`` at each moment (SIGNAL_AT_MOMENT); return what happened.

    ``finished``: whether the command's work is all done. A run that exits 0 although
    signalled is accepted only when it is (the signal came as it was exiting)."""
    table = []
    for sig, moment in SIGNAL_AT_MOMENT:
        code = SIGNALS[sig]
        process = cellctl_process(cloud, *args)
        started = time.monotonic()
        _wait_for_handlers(process)
        time.sleep(max(0.0, moment - (time.monotonic() - started)))
        if process.poll() is not None:  # finished before the moment: nothing left to do
            _out, err = process.communicate()
            # the command's own code (audit: 1 findings remain), not an interrupt
            assert process.returncode in (0, 1), (moment, process.returncode, err)
            table.append((label, sig.name, moment, f"finished ({process.returncode})"))
            continue
        process.send_signal(sig)
        _out, err = process.communicate(timeout=60)
        if (process.returncode == 0 and finished is not None
                and "ERROR" not in err and "Traceback" not in err):  # (a summary line)
            assert finished(), (label, sig.name, moment, "exit 0 with work left")
            table.append((label, sig.name, moment, "finished (0) as signalled"))
            continue
        lines = err.splitlines()
        assert process.returncode == code, (label, sig.name, moment, process.returncode, err)
        assert "Traceback" not in err, err
        interrupted = f"Interrupted by {sig.name}: committed work is kept"
        if "json" in args:  # messages are JSON lines on stderr
            assert lines and json.loads(lines[-1])["message"].startswith(interrupted), err
            assert sum('"level": "error"' in line for line in lines) == 1, err
        else:
            assert lines and lines[-1].startswith(f"ERROR: {interrupted}"), err
            assert sum(line.startswith("ERROR") for line in lines) == 1, err
        table.append((label, sig.name, moment, str(process.returncode)))
    record = tmp_path / "interrupt-codes.txt"
    lines = "".join(f"{name:32} {sig:8} {at:5.2f} s  {code}\n" for name, sig, at, code in table)
    with record.open("a") as handle:
        handle.write(lines)
    print(lines)
    return table


def _handlers_installed(pid: int) -> bool:
    """Whether ``pid`` catches SIGTERM, which only cellctl's handler does (Python's own
    start-up catches SIGINT alone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next(line for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def _wait_for_handlers(process: subprocess.Popen[str], timeout: float = 30) -> None:
    """Until cellctl's signal handlers are in place (or the process ended). Before that
    the interpreter is still starting (site, the first imports): a signal there ends
    Python as Python ends, which a loaded machine can stretch past any fixed moment."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and not _handlers_installed(process.pid):
        assert time.monotonic() < deadline, "cellctl never installed its signal handlers"
        time.sleep(0.005)


def finish(cloud: Cloud, *args: str) -> subprocess.CompletedProcess[str]:
    process = cellctl_process(cloud, *args)
    out, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_map_instances(server_cloud, tmp_path):
    cloud = server_cloud
    (cell,) = setup_cells(cloud)
    seed_fake_instances(cloud.cell_url, 80000, deleted=100)  # dev add-instances' rows
    instances = {r["uuid"] for r in cloud.rows(cloud.cell_url, "instances")}
    interrupt_at_moments(
        cloud, ["map_instances", "--cell_uuid", cell], f"map_instances {cloud.factory.backend}",
        tmp_path, finished=lambda: {r["instance_uuid"] for r in real_mappings(cloud)} == instances)
    done = finish(cloud, "map_instances", "--cell_uuid", cell)
    assert done.returncode == 0, done.stderr
    mapped = {r["instance_uuid"] for r in real_mappings(cloud)}
    assert mapped == {r["uuid"] for r in cloud.rows(cloud.cell_url, "instances")}


def test_discover_hosts(server_cloud, tmp_path):
    cloud = server_cloud
    setup_cells(cloud)
    hosts = [f"cmp{n:06d}" for n in range(40000)]
    add_hosts(cloud.cell_url, hosts)
    interrupt_at_moments(
        cloud, ["discover_hosts"], f"discover_hosts {cloud.factory.backend}", tmp_path,
        finished=lambda: {r["host"] for r in cloud.api_rows("host_mappings")} == set(hosts))
    done = finish(cloud, "discover_hosts")
    assert done.returncode == 0, done.stderr
    assert {r["host"] for r in cloud.api_rows("host_mappings")} == set(hosts)
    assert finish(cloud, "discover_hosts").returncode == 0


def test_audit_fix(server_cloud, tmp_path):
    cloud = server_cloud
    scene = every_kind(cloud)
    seed_fake_instances(cloud.cell_url, 100000)  # unmapped: the fix maps them
    interrupt_at_moments(cloud, ["audit", "--fix"], f"audit --fix {cloud.factory.backend}",
                         tmp_path)
    first = finish(cloud, "--format", "json", "audit", "--fix")
    assert first.returncode == 1, first.stderr  # the scene's unfixable findings remain
    after = fingerprint([cloud.api_url, *scene.urls])
    again = finish(cloud, "--format", "json", "audit", "--fix")
    assert fingerprint([cloud.api_url, *scene.urls]) == after  # nothing left half done
    assert again.returncode == 1 and ", 0 repaired" in again.stderr, again.stderr
    remaining = {(f["kind"], f["subject"]) for f in json.loads(again.stdout)["findings"]}
    # The added instances' UUIDs, read once (two columns: 100,000 whole rows through
    # PyMySQL took seconds, and were read again for each remaining finding).
    engine = sa.create_engine(cloud.cell_url)
    try:
        with engine.connect() as conn:
            added = {uuid for uuid, name in conn.execute(
                sa.text("SELECT uuid, display_name FROM instances"))
                if (name or "").startswith("fake-")}
    finally:
        engine.dispose()
    assert len(added) == 100000
    assert remaining and all(kind != "instance_without_mapping" or subject not in added
                             for kind, subject in remaining)  # every added one was mapped


def test_ironic_ring(server_cloud, tmp_path):
    cloud = server_cloud
    # The ring holds the services that are up: none may age out while the signals go
    # (a loaded machine took longer than the default 60 s).
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = "86400"
    setup_cells(cloud)
    for host in ("bm1", "bm2", "bm3"):
        # The service as ``service register`` makes it, its 30,000 nodes the rows that
        # --nodes 30000 writes, inserted in bulk (hostsupport.add_ironic_nodes).
        cloud.ok("service", "register", "--host", host, "--hypervisor-type", "ironic")
        assert add_ironic_nodes(cloud.cell_url, host, 30000) == 30000
    reference = finish(cloud, "--format", "json", "ironic", "ring")
    assert reference.returncode == 0, reference.stderr
    interrupt_at_moments(cloud, ["--format", "json", "ironic", "ring"],
                         f"ironic ring {cloud.factory.backend}", tmp_path)
    rerun = finish(cloud, "--format", "json", "ironic", "ring")
    assert rerun.returncode == reference.returncode, rerun.stderr
    same = rerun.stdout == reference.stdout  # 90,000 nodes: no diff of them on failure
    assert same, [line[:200] for line in difflib.unified_diff(
        reference.stdout.splitlines(), rerun.stdout.splitlines(), lineterm="")][:20]


def _report_count(cloud: Cloud, host: str) -> int:
    (row,) = [r for r in cloud.rows(cloud.cell_url, "services") if r["host"] == host]
    return int(row["report_count"])


def _assert_interrupted(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    out, err = process.communicate(timeout=60)
    assert process.returncode == SIGNALS[sig], (sig.name, process.returncode, err)
    assert "Traceback" not in out + err, err
    assert err.splitlines() == [err.splitlines()[0]], err  # one line
    assert err.startswith(f"ERROR: Interrupted by {sig.name}: committed work is kept"), err


def _waiting_on_a_lock(engine: sa.engine.Engine) -> bool:
    """Whether a statement on this test's own database (``engine``'s) waits on a lock: a
    server-wide look would see other tests' waits."""
    query = ("SELECT count(*) FROM information_schema.innodb_trx t JOIN "
             "information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
             "WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE()"
             if engine.dialect.name == "mysql" else
             "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
             "AND datname = current_database()")
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(query)).scalar())


def _interrupt_once_waiting(process: subprocess.Popen[str], engine: sa.engine.Engine,
                            sig: signal.Signals, seconds: float) -> None:
    """Send ``sig`` once ``process`` waits on a lock in ``engine``'s database (looked for
    in innodb_trx / pg_stat_activity), or after ``seconds``; check it was interrupted."""
    deadline = time.monotonic() + seconds
    while not _waiting_on_a_lock(engine) and time.monotonic() < deadline:
        assert process.poll() is None, ("no wait", process.communicate())
        time.sleep(0.05)
    process.send_signal(sig)
    _assert_interrupted(process, sig)


def test_heartbeat(server_cloud, tmp_path):
    """``service heartbeat`` runs until stopped: a stop is an interrupt like any other
    (130/143), at start-up, while it sleeps between beats and while a beat waits on
    the database."""
    cloud = server_cloud
    setup_cells(cloud)
    cloud.ok("service", "register", "--host", "beat1")
    # (Start-up is every command's, covered by the tests above; a fixed moment after
    # spawning can fall inside the interpreter's own start on a loaded machine.)
    for sig in SIGNALS:
        # between beats: the first beat is written, the next is 30 s away
        before = _report_count(cloud, "beat1")
        process = cellctl_process(cloud, "service", "heartbeat", "--host", "beat1",
                                  "--interval", "30")
        deadline = time.monotonic() + 60
        while _report_count(cloud, "beat1") == before:
            assert time.monotonic() < deadline and process.poll() is None, "no first beat"
            time.sleep(0.05)
        process.send_signal(sig)
        _assert_interrupted(process, sig)
        assert _report_count(cloud, "beat1") == before + 1  # the beat made stays
        # during a beat: its UPDATE waits on a row another transaction holds
        engine = sa.create_engine(cloud.cell_url)
        try:
            with engine.connect() as holder:
                holder.execute(sa.text("SELECT report_count FROM services WHERE host = :h "
                                       "FOR UPDATE"), {"h": "beat1"})
                process = cellctl_process(cloud, "service", "heartbeat", "--host", "beat1",
                                          "--interval", "30")
                _wait_for_handlers(process)
                # Its first beat's UPDATE waits on the held row. On a loaded machine the
                # look-up has been seen to miss the wait, and the beat cannot get past the
                # held row anyway, so the signal goes after 10 s.
                _interrupt_once_waiting(process, engine, sig, 10)
                holder.rollback()
        finally:
            engine.dispose()
        assert _report_count(cloud, "beat1") == before + 1  # the interrupted beat: none
    beat = finish(cloud, "service", "heartbeat", "--host", "beat1", "--count", "1")
    assert beat.returncode == 0, beat.stderr


def test_discover_hosts_waiting(server_cloud, tmp_path):
    """``discover_hosts --expect`` waiting for a host that never comes (cells/waiting.py)."""
    cloud = server_cloud
    setup_cells(cloud)
    table = interrupt_at_moments(
        cloud, ["discover_hosts", "--expect", "never-comes", "--timeout", "120",
                "--interval", "0.2"], f"discover_hosts --expect {cloud.factory.backend}",
        tmp_path)
    assert all(code in ("130", "143") for *_, code in table), table
    assert cloud.api_rows("host_mappings") == []


def test_progress_bar_on_a_terminal(server_cloud, tmp_path):
    """With stderr a terminal, ``map_instances`` draws its progress bar; a signal while
    it does ends the same way (the line after the bar)."""
    import os
    import pty

    cloud = server_cloud
    (cell,) = setup_cells(cloud)
    seed_fake_instances(cloud.cell_url, 60000)  # what dev add-instances --count 60000 adds
    interrupted = 0
    for sig, code in SIGNALS.items():
        leader, follower = pty.openpty()
        try:
            process = cellctl_process(cloud, "map_instances", "--cell_uuid", cell,
                                      "--max-count", "1000000", stderr=follower)
            os.close(follower)
            seen = b""
            deadline = time.monotonic() + 120
            while b"%" not in seen and b"/" not in seen:  # the bar is drawn
                assert time.monotonic() < deadline and process.poll() is None, seen
                seen += os.read(leader, 4096)
            process.send_signal(sig)
            process.communicate(timeout=60)
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal's last writer is gone
                    break
                if not chunk:
                    break
                seen += chunk
        finally:
            os.close(leader)
        text = seen.decode(errors="replace")
        if process.returncode == 0:  # done before the signal came: nothing to interrupt
            continue
        assert process.returncode == code, (sig.name, process.returncode, text)
        assert "Traceback" not in text, text
        assert text.count("ERROR") == 1 and f"ERROR: Interrupted by {sig.name}" in text, text
        interrupted += 1
    assert interrupted, "never signalled while the bar was drawn"
    done = finish(cloud, "map_instances", "--cell_uuid", cell, "--max-count", "1000000")
    assert done.returncode == 0, done.stderr
    assert {r["instance_uuid"] for r in real_mappings(cloud)} == {
        r["uuid"] for r in cloud.rows(cloud.cell_url, "instances")}


def test_no_signal_no_change(tmp_path):
    """The entry point leaves an uninterrupted command's exit code alone."""
    import os
    import sys

    env = {**os.environ, "HOME": str(tmp_path), "CELLCTL_STATE_DIR": str(tmp_path / "s")}
    done = subprocess.run([sys.executable, "-m", "cellctl", "no-such-command"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Interrupted" not in done.stderr
    assert sa is not None


def test_nova_manage_stand_in(server_cloud, tmp_path):
    """cellctl as ``nova-manage`` (the ``cellctl-nova-manage`` console script, and a
    ``nova-manage`` symlink to ``cellctl``) goes through the same early handlers:
    130/143, one line, at start-up and while ``cell_v2 discover_hosts`` waits on the
    database; the run after them maps every host."""
    import os
    import sys

    cloud = server_cloud
    setup_cells(cloud)
    hosts = ["cmp-a", "cmp-b", "cmp-c"]
    add_hosts(cloud.cell_url, hosts)
    links = tmp_path / "standin-bin"
    links.mkdir()
    (links / "nova-manage").symlink_to(Path(sys.executable).with_name("cellctl"))
    env = {**{k: v for k, v in os.environ.items() if k != "CELLCTL_NOVA_MANAGE"},
           **cloud.env, "PATH": os.pathsep.join([str(links), "/usr/bin", "/bin"])}
    programs = {"cellctl-nova-manage": str(Path(sys.executable).with_name("cellctl-nova-manage")),
                "nova-manage symlink": str(links / "nova-manage")}
    engine = sa.create_engine(cloud.api_url)
    table = []
    try:
        for (label, program), sig in itertools.product(programs.items(), SIGNALS):
            def start(program: str = program) -> subprocess.Popen[str]:
                return subprocess.Popen([program, "cell_v2", "discover_hosts"], env=env,
                                        text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
            # start-up: as soon as the handlers are in place
            process = start()
            _wait_for_handlers(process)
            process.send_signal(sig)
            _assert_interrupted(process, sig)
            table.append((label, sig.name, "start-up", str(process.returncode)))
            # a query: the host mappings' insert waits on a lock the test holds
            with engine.connect() as holder:
                holder.execute(sa.text("SELECT * FROM host_mappings FOR UPDATE"
                                       if engine.dialect.name == "mysql" else
                                       "LOCK TABLE host_mappings IN SHARE MODE"))
                process = start()
                _wait_for_handlers(process)
                _interrupt_once_waiting(process, engine, sig, 20)
                holder.rollback()
            table.append((label, sig.name, "insert waiting", str(process.returncode)))
    finally:
        engine.dispose()
    assert cloud.api_rows("host_mappings") == []  # nothing half written
    done = subprocess.run([programs["nova-manage symlink"], "cell_v2", "discover_hosts"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert {r["host"] for r in cloud.api_rows("host_mappings")} == set(hosts)
    lines = "".join(f"{name} {cloud.factory.backend:10} {sig:8} {at:15} {code}\n"
                    for name, sig, at, code in table)
    with (tmp_path / "interrupt-codes.txt").open("a") as handle:
        handle.write(lines)
    print(lines)
