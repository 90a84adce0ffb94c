"""Issue 22: the first minutes of a newcomer are safe.

The demo switch never touches a deployment named by a nova.conf in the default
search; test-data commands refuse such a database unless forced; malformed URLs
are one line and exit 1; the helpful lines go to stderr, never to stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

BAD_URLS = [
    ("mysql+pymysql://root:hunter2@127.0.0.1:abc/nc_api", "port 'abc'"),
    ("mysql+pymysql//root:hunter2@127.0.0.1/nc_api", "mysql+pymysql//root:****@127.0.0.1/nc_api"),
    ("mysql+nosuchdriver://root:hunter2@127.0.0.1/nc_api", "'mysql+nosuchdriver'"),
    ("mysql+pymysql://root:hunter2@127.0.0.1/nc_api?charset", "'charset'"),
]


def cellctl(*args: str, env: dict[str, str],
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cellctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELLCTL_", "OS_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), "CELLCTL_STATE_DIR": str(tmp_path / "state"), **extra}


@pytest.mark.parametrize(("url", "shown"), BAD_URLS)
def test_malformed_urls_exit_1_with_one_line(tmp_path, url, shown):
    env = clean_env(tmp_path)
    for args in (["--api-database-connection", url, "list_cells"],
                 ["create_cell", "--database_connection", url, "--transport-url", "none:///"]):
        done = cellctl(*args, env=env)
        assert done.returncode == 1, done
        # On stderr; create_cell's own error is on stdout, where nova-manage prints it.
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        errors += [line for line in done.stdout.splitlines() if line.strip()]
        assert len(errors) == 1 and shown in errors[0], done
        assert "hunter2" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr


README_DEMO = [
    ["service", "register", "--host", "compute1"],
    ["service", "register", "--host", "compute2"],
    ["dev", "add-instances", "--count", "1000", "--host", "compute1", "--deleted", "10"],
    ["simple_cell_setup"],
    ["service", "register", "--host", "compute3"],
    ["discover_hosts", "--verbose"],
    ["list_cells"],
    ["list_hosts", "--status"],
]


@pytest.fixture
def deployment_home(tmp_path):
    """A HOME whose ~/.nova/nova.conf names a real MariaDB API and cell database, synced,
    with a real-looking compute service in the cell."""
    from auditsupport import fingerprint
    from conftest import DatabaseFactory, require_server

    require_server("mysql")
    factory = DatabaseFactory("mysql", tmp_path)
    api, cell = factory.new("api"), factory.new("cell1", with_cell0=True)
    env = clean_env(tmp_path)
    for args in (["api_db", "sync"], ["db", "sync"]):
        done = cellctl("--api-database-connection", api, *args,
                       env={**env, "CELLCTL_DATABASE_CONNECTION": cell})
        assert done.returncode == 0, done.stderr
    engine = sa.create_engine(cell)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO services (host, `binary`, topic, report_count, "
                             "disabled, deleted, uuid) VALUES ('prod-cmp1', 'nova-compute', "
                             "'compute', 1234, 0, 0, 'a0a0a0a0-0000-4000-8000-000000000001')")
    engine.dispose()
    nova = tmp_path / "home" / ".nova"
    nova.mkdir(parents=True)
    (nova / "nova.conf").write_text(f"[DEFAULT]\ntransport_url = none:///\n"
                                    f"[api_database]\nconnection = {api}\n"
                                    f"[database]\nconnection = {cell}\n")
    yield env, lambda: fingerprint([api, cell])
    factory.drop_all()


def test_demo_switch_never_touches_the_deployment_in_the_default_search(deployment_home,
                                                                         tmp_path):
    """Issue 22: README's first command on a host with ~/.nova/nova.conf."""
    env, fingerprint = deployment_home
    before = fingerprint()
    demo_env = {**env, "CELLCTL_DEMO": "1"}
    for args in README_DEMO:
        done = cellctl(*args, env=demo_env)
        assert done.returncode == 0, (args, done.stderr)
        assert "WARNING: No configuration" not in done.stderr  # asked for: no warning
    assert "compute3" in done.stdout
    assert fingerprint() == before
    assert (tmp_path / "state" / "api.sqlite").exists()
    flagged = cellctl("--demo", "list_cells", env=env)
    assert flagged.returncode == 0 and "sqlite://" in flagged.stdout, flagged.stderr
    both = cellctl("--demo", "--config-file", str(tmp_path / "home/.nova/nova.conf"),
                   "list_cells", env=env)
    assert both.returncode == 1 and both.stderr.count("\n") == 1, both.stderr
    assert "--demo" in both.stderr


def test_a_warning_once_per_command(tmp_path):
    """Issue 22: the README's commands on the embedded default without --demo (so the
    "No configuration file" warning applies): each command says each line at most once,
    and warns about the configuration at most once."""
    env = clean_env(tmp_path)
    for args in [*README_DEMO, ["status"], ["audit", "--fix"], ["ironic", "ring"],
                 ["service", "heartbeat", "--host", "compute1", "--count", "1"]]:
        done = cellctl(*args, env=env)
        assert done.returncode in (0, 1), (args, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == len(set(lines)), (args, done.stderr)
        assert sum("No configuration file" in line for line in lines) <= 1, (args, lines)


def test_test_data_commands_refuse_a_default_search_deployment(deployment_home, tmp_path):
    """Without --demo, fake rows never go unasked into the deployment; --force writes."""
    env, fingerprint = deployment_home
    before = fingerprint()
    for args in (["service", "register", "--host", "fake1"],
                 ["dev", "add-instances", "--count", "5"],
                 ["service", "heartbeat", "--host", "prod-cmp1", "--count", "1",
                  "--interval", "0.1"]):
        done = cellctl(*args, env=env)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and "Refusing to write test data" in errors[0], done.stderr
        assert ".nova/nova.conf" in errors[0] and "--force" in errors[0]
    assert fingerprint() == before
    forced = cellctl("service", "register", "--host", "fake1", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert fingerprint() != before
    named = cellctl("--config-file", str(tmp_path / "home/.nova/nova.conf"), "service",
                    "heartbeat", "--host", "prod-cmp1", "--count", "1", "--interval", "0.1",
                    env=env)
    assert named.returncode == 0, named.stderr  # a file named on purpose is the user's choice


LIBVIRT_CPU_INFO = ('{"arch": "x86_64", "model": "Skylake-Server-IBRS", "vendor": "Intel", '
                    '"topology": {"cells": 1, "sockets": 1, "cores": 8, "threads": 1}, '
                    '"features": ["sse4.2", "avx2"]}')


def test_test_data_commands_refuse_a_database_with_a_real_deployments_rows(
        deployment_home, tmp_path):
    """However the database is named (--config-file here), a cell database holding a
    compute node a Nova compute service reported (libvirt's cpu_info) gets no test data
    unless --force says so; cellctl's own fake rows never count as real."""
    env, fingerprint = deployment_home
    conf = str(tmp_path / "home/.nova/nova.conf")
    named = ["--config-file", conf]
    # cellctl's own test data first: a fake compute node ('{}') is not a real row
    assert cellctl(*named, "service", "register", "--host", "fake1", env=env).returncode == 0
    assert cellctl(*named, "dev", "add-instances", "--count", "2", env=env).returncode == 0
    cell = next(line.split("=", 1)[1].strip() for line in Path(conf).read_text().splitlines()
                if line.startswith("connection") and "cell1" in line)
    engine = sa.create_engine(cell)
    try:
        with engine.begin() as conn:  # what nova-compute (libvirt) reports for prod-cmp1
            conn.exec_driver_sql(
                "INSERT INTO compute_nodes (created_at, host, hypervisor_hostname, uuid, "
                "vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, "
                "hypervisor_type, hypervisor_version, cpu_info, deleted, mapped) VALUES "
                "(NOW(), 'prod-cmp1', 'prod-cmp1.example.org', "
                "'b0b0b0b0-0000-4000-8000-000000000001', 8, 16384, 200, 0, 512, 0, 'QEMU', "
                "8002000, %s, 0, 1)", (LIBVIRT_CPU_INFO,))
    finally:
        engine.dispose()
    before = fingerprint()
    for args in (["service", "register", "--host", "fake2"],
                 ["dev", "add-instances", "--count", "5"],
                 ["service", "heartbeat", "--host", "prod-cmp1", "--count", "1",
                  "--interval", "0.1"],
                 ["service", "register", "--host", "fake3", "--database_connection", cell]):
        done = cellctl(*named, *args, env=env)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("ERROR: Refusing to write test data into "), done.stderr
        assert "1 compute node reported by Nova compute services" in done.stderr
        assert "--force" in done.stderr
    assert fingerprint() == before
    forced = cellctl(*named, "dev", "add-instances", "--count", "1", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert fingerprint() != before

def _normal(line: str) -> str:
    import re

    line = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", line)
    line = re.sub(r"[0-9a-f]{8}-…", "<id>", line)
    line = re.sub(r"[|+]", " ", line)
    line = "" if set(line.replace(" ", "")) <= {"-"} else line
    return " ".join(line.split())


def quickstart_steps(page: str) -> list[tuple[list[str], list[str]]]:
    """Each ``$ cellctl ...`` of the step-by-step part, with the lines shown after it."""
    import shlex

    steps: list[tuple[list[str], list[str]]] = []
    for line in page[page.index("Step by step"):].splitlines():
        if line.startswith("    $ cellctl "):
            steps.append((shlex.split(line[len("    $ cellctl "):]), []))
        elif steps and line.startswith("    ") and line.strip():
            steps[-1][1].append(line[4:])
        elif steps and line.strip() and not line.startswith(" "):
            steps.append(([], []))  # prose ends the block
    return [step for step in steps if step[0]]


def test_quickstart_shows_what_the_demo_prints(tmp_path):
    """Issue 22: every command of doc/user/quickstart.rst, run as the page runs them
    (CELLCTL_DEMO=1): each line the page shows appears, in order; status exits 1."""
    page = (Path(__file__).parent.parent / "doc/user/quickstart.rst").read_text()
    state = tmp_path / "state"
    env = clean_env(tmp_path, CELLCTL_DEMO="1")
    steps = quickstart_steps(page)
    assert len(steps) >= 9
    for args, shown in steps:
        done = cellctl(*args, env=env)
        assert done.returncode == (1 if args == ["status"] else 0), (args, done.stderr)
        actual = [_normal(line.replace(str(state), "/tmp/cellctl-demo"))
                  for line in (done.stdout + done.stderr).splitlines()]
        position = 0
        for line in filter(None, (_normal(s) for s in shown)):
            if args == ["status"] and line.startswith("Check"):
                continue  # the page shows the table without its borders
            found = next((i for i in range(position, len(actual))
                          if actual[i].startswith(line)), None)
            assert found is not None, (args, line, actual)
            position = found + 1


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (a person watching); stdout piped."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "cellctl", *args], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = process.communicate(timeout=120)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.returncode, out, b"".join(chunks).decode()


def test_summary_lines_on_stderr_stdout_unchanged(tmp_path):
    """One line on stderr saying what the mapping commands did, on a terminal and
    piped alike; stdout is nova-manage's output only (nothing new there)."""
    env = clean_env(tmp_path, CELLCTL_DEMO="1")
    for args in (["service", "register", "--host", "c1"],
                 ["dev", "add-instances", "--count", "3", "--host", "c1"]):
        assert cellctl(*args, env=env).returncode == 0
    code, out, err = _on_a_terminal(["simple_cell_setup"], env)
    assert code == 0, err
    assert "simple_cell_setup: cell0 mapped; cell " in err
    assert "1 new host mapping and 3 new instance mappings" in err
    assert "simple_cell_setup:" not in out
    code, out, err = _on_a_terminal(["discover_hosts"], env)
    assert (code, out) == (0, "") and "0 new host mappings in 1 cell read" in err
    piped = cellctl("discover_hosts", env=env)
    assert (piped.returncode, piped.stdout) == (0, "")
    assert piped.stderr == "discover_hosts: 0 new host mappings in 1 cell read\n"
    again = cellctl("map_cell0", env=env)  # nova-manage prints this line on stdout too
    assert (again.returncode, again.stdout) == (0, "Cell0 is already setup\n")
    assert again.stderr == "cell0 was already mapped\n"
    cell = cellctl("--format", "json", "list_cells", env=env)
    uuid = next(c["uuid"] for c in json.loads(cell.stdout) if c["name"] != "cell0")
    mapped = cellctl("map_instances", "--cell_uuid", uuid, env=env)
    assert (mapped.returncode, mapped.stdout) == (0, "")
    assert mapped.stderr == (f"map_instances: 0 instances mapped, 3 already mapped, "
                             f"in cell {uuid}\n")
    quiet = cellctl("--format", "json", "discover_hosts", env=env)  # data carries it
    assert quiet.stderr == "" and json.loads(quiet.stdout)["hosts_mapped"] == 0


def _stdout_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal (its width from COLUMNS); stderr piped."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "cellctl", *args], env=env, text=True,
                               stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's last writer is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    process.communicate(timeout=120)
    return process.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [60, 100])
def test_status_wrapped_to_the_terminal_width(tmp_path, columns):
    """On a terminal ``status`` fits its width (no line longer) and loses no word of
    what it says piped (unwrapped)."""
    env = clean_env(tmp_path, CELLCTL_DEMO="1", COLUMNS=str(columns))
    for args in (["service", "register", "--host", "c1"], ["simple_cell_setup"],
                 ["dev", "add-instances", "--count", "3", "--host", "c1"]):
        assert cellctl(*args, env=env).returncode == 0
    piped = cellctl("status", env=env)
    assert max(map(len, piped.stdout.splitlines())) > columns  # there is something to wrap
    code, shown = _stdout_on_a_terminal(["status"], env)
    assert code == piped.returncode, shown
    assert shown.splitlines() and max(map(len, shown.splitlines())) <= columns, shown

    # nothing lost: each cell (its wrapped lines joined, spaces aside) and each line
    # outside a table is what it is piped
    assert _cells(shown, wrapped=True) == _cells(piped.stdout, wrapped=False)


def _cells(text: str, *, wrapped: bool) -> list[str]:
    """Cells in order; ``wrapped``: a row spans the lines between two rules (wrapped
    tables rule every row), else a row is one line."""
    cells: list[str] = []
    row: list[str] = []
    for line in [*text.splitlines(), "+"]:
        if line.startswith("|") and not wrapped:
            cells.extend("".join(part.split()) for part in line.split("|")[1:-1])
            continue
        elif line.startswith("|"):
            parts = line.split("|")[1:-1]
            row = row or [""] * len(parts)
            row = [cell + "".join(part.split()) for cell, part in zip(row, parts, strict=True)]
            continue
        cells.extend(row)
        row = []
        if not line.startswith("+"):
            cells.append("".join(line.split()))
    return cells


@pytest.mark.parametrize("backend", ["mysql", "postgresql"])
def test_from_scratch_recipe(tmp_path, backend):
    """doc/admin/from-scratch.rst, step 3, on a real MariaDB and PostgreSQL: each
    command exits 0 and each line the page shows appears, in order (the page's URLs
    and config path standing for the test's own, uniquely named databases)."""
    import shlex

    from conftest import DatabaseFactory, require_server

    require_server(backend)
    page = (Path(__file__).parent.parent / "doc/admin/from-scratch.rst").read_text()
    factory = DatabaseFactory(backend, tmp_path)
    try:
        api, cell = factory.new("api"), factory.new("nova", with_cell0=True)
        conf = tmp_path / "nova.conf"
        conf.write_text("[DEFAULT]\ntransport_url = rabbit://openstack:RABBIT_PASS@controller"
                        f":5672/\n[api_database]\nconnection = {api}\n"
                        f"[database]\nconnection = {cell}\n")
        base = cell.partition("?")[0]
        ours_to_page = {  # longest first: cell0's URL contains the cell's
            f"{base}_cell0": "mysql+pymysql://nova:****@controller/nova_cell0",
            api: "mysql+pymysql://nova:****@controller/nova_api",
            cell: "mysql+pymysql://nova:****@controller/nova",
            str(conf): "/etc/nova/nova.conf",
        }
        section = page[page.index("3. Schemas, cell0, the first cell"):]
        steps: list[tuple[list[str], list[str]]] = []
        for line in section.splitlines():
            if line.startswith("    $ cellctl "):
                args = shlex.split(line[len("    $ cellctl "):])
                steps.append(([str(conf) if a == "/etc/nova/nova.conf" else a
                               for a in args], []))
            elif steps and line.startswith("    ") and line.strip():
                steps[-1][1].append(line[4:])
            elif line.strip() and not line.startswith(" ") and steps:
                break
        assert len(steps) == 5, steps
        env = clean_env(tmp_path)
        for args, shown in steps:
            done = cellctl(*args, env=env)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            text = done.stdout + done.stderr
            for ours, theirs in ours_to_page.items():
                text = text.replace(ours, theirs)
            actual = [_normal(line) for line in text.splitlines()]
            position = 0
            for line in filter(None, (_normal(s) for s in shown)):
                found = next((i for i in range(position, len(actual))
                              if actual[i].startswith(line)), None)
                assert found is not None, (args, line, actual)
                position = found + 1
        listed = cellctl("--config-file", str(conf), "--format", "json", "list_cells", env=env)
        assert sorted(c["name"] for c in json.loads(listed.stdout)) == ["cell0", "cell1"]
    finally:
        factory.drop_all()
