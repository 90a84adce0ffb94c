"""The nova-manage face, byte for byte: stdout and exit codes beside nova-manage 34.

Deployment tools run nova-manage and read its standard output (section 5 of
the deploy-tool contracts: kolla, OpenStack-Ansible, puppet, TripleO, the
charms, openstack-helm, nova-operator). Each case here runs the same command
with nova-manage on one copy of a Nova-made MariaDB cloud and with cellctl on
an identical copy (tests/nova_support.py), and compares the exit codes and
stdout byte for byte, generated UUIDs and per-copy database names aside. What
cellctl writes on stderr is only checked to be harmless.
"""

from __future__ import annotations

import re

import pytest
from nova_env import TRANSPORT_URL, Outcome
from nova_support import CELL0_UUID, DbUrl, SideBySide, seed_uuid

pytestmark = [pytest.mark.nova, pytest.mark.mysql]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DB_NAME = re.compile(r"ctn_[0-9a-f]{8}_[nc]_")
# oslo.log's records: nova-manage logs to stdout when no log file is set (kolla
# and the other tools set one, so their stdout never holds these).
_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \d+ [A-Z]+ .*\n?", re.MULTILINE)
GENERATED = "generated-uuid-xxxx-xxxx-xxxxxxxxxxxx"  # 36 characters: tables keep their widths


CRASH = "An error has occurred:\n"
# The last line of nova-manage's traceback: "nova.exception.CellMappingNotFound: ..."
_EXCEPTION_LINE = re.compile(r"^(?:\w+\.)*(\w+: .*)$")
_QUALIFIED = re.compile(r"^(?:\w+\.)+\w+: ")


def normalised(pair: SideBySide, outcome: Outcome) -> str:
    """stdout with log records removed, generated UUIDs and the copy's name replaced
    by text of the same length (so table widths are untouched).

    A crash keeps nova-manage's first line and its exception's line, without the
    module path: cellctl prints no traceback (a documented difference; tools only
    see the exit code, 255).
    """
    text = _LOG_RECORD.sub("", outcome.stdout)
    # nova-manage runs under eventlet, whose sockets name the errno (ECONNREFUSED)
    # where the standard library says "Connection refused".
    text = text.replace("[Errno 111] ECONNREFUSED", "[Errno 111] Connection refused")
    if text.startswith(CRASH) and "Traceback (most recent call last)" in text:
        lines = [line for line in text.splitlines() if line.strip()]
        # the exception's line: the last one that names a qualified exception (a
        # driver error's text may add a "(Background on this error ...)" line)
        last = next((line for line in reversed(lines) if _QUALIFIED.match(line)), lines[-1])
        text = CRASH + _EXCEPTION_LINE.sub(r"\1", last) + "\n"
    text = _UUID.sub(lambda m: m.group() if m.group() in pair.seeded_cells else GENERATED, text)
    return _DB_NAME.sub("ctn_XXXXXXXX_x_", text)


def same(pair: SideBySide, *args: str | DbUrl, code: int,
         except_tables: tuple[str, ...] = ()) -> tuple[Outcome, Outcome]:
    """Run both; same exit code ``code``, same stdout bytes; stderr without tracebacks."""
    nova, ours = pair.step(*args, code=code, same_state=False)
    assert_same_stdout(pair, nova, ours, args)
    pair.assert_same_state(" ".join(map(str, args)), except_tables)
    return nova, ours


def assert_same_stdout(pair: SideBySide, nova: Outcome, ours: Outcome, args: tuple) -> None:
    assert normalised(pair, ours) == normalised(pair, nova), (
        f"stdout differs for {args}\n--- nova-manage\n{nova.stdout}--- cellctl\n{ours.stdout}")
    assert "Traceback" not in ours.stderr, ours.stderr


def cloud(pair: SideBySide) -> dict[str, str]:
    """cell0, a named cell with a password, an unnamed disabled cell, a multi-host
    transport, a templated cell and two cells sharing a name."""
    pair.add_database("cell2")
    pair.add_database("cell3")
    return {
        "cell0": pair.add_cell("cell0", None, cell_uuid=CELL0_UUID),
        "cell1": pair.add_cell("cell1", "cell1", transport_url=TRANSPORT_URL),
        "unnamed": pair.add_cell(None, "cell2", disabled=True,
                                 transport_url="rabbit://nova:pw9@h9:5672/"),
        "multi": pair.add_cell("multi", "cell3", transport_url=(
            "rabbit://nova:pw1@h1:5671,nova:pw2@h2:5671//nova?ssl=1")),
        "tmpl": pair.add_cell("tmpl", "cell3", cell_uuid=seed_uuid("tmpl"), transport_url=(
            "{scheme}://{username}:{password}@other-{hostname}:{port}/")),
        "dup": pair.add_cell("multi", "cell3", cell_uuid=seed_uuid("dup"),
                             transport_url="rabbit://a@b/"),
    }


# --- list_cells and list_hosts: PrettyTable, masking, order -----------------


def test_list_cells_bytes(side_by_side):
    pair = side_by_side
    nova, _ = same(pair, "cell_v2", "list_cells", code=0)
    assert "|  Name |" not in nova.stdout  # the unnamed cell's empty name widens nothing
    same(pair, "cell_v2", "list_cells", "--verbose", code=0)
    cloud(pair)
    nova, ours = same(pair, "cell_v2", "list_cells", code=0)
    assert re.search(r"\| +none:/ +\|", ours.stdout)  # cell0's none:/// as nova masks it
    assert "rabbit://nova:****@h2:5671//nova?ssl=1" in ours.stdout
    same(pair, "cell_v2", "list_cells", "--verbose", code=0)
    # cellctl's own spelling of the same command: the same bytes
    nova, ours = pair.nova_manage("cell_v2", "list_cells"), pair.cellctl("list_cells")
    assert (nova.code, ours.code) == (0, 0)
    assert_same_stdout(pair, nova, ours, ("list_cells",))


def test_list_hosts_bytes(side_by_side):
    pair = side_by_side
    same(pair, "cell_v2", "list_hosts", code=0)
    cells = cloud(pair)
    for host, cell in (("zeta", "cell1"), ("alpha", "unnamed"), ("mid", "cell1")):
        pair.map_host(host, cells[cell])
    same(pair, "cell_v2", "list_hosts", code=0)
    same(pair, "cell_v2", "list_hosts", "--cell_uuid", cells["cell1"], code=0)
    same(pair, "cell_v2", "list_hosts", "--cell_uuid", seed_uuid("nowhere"), code=1)


# --- map_cell0, create_cell, update_cell, delete_cell ------------------------


def test_map_cell0_bytes(side_by_side):
    pair = side_by_side
    nova, _ = same(pair, "cell_v2", "map_cell0", code=0)
    assert nova.stdout == ""
    nova, _ = same(pair, "cell_v2", "map_cell0", code=0)
    assert nova.stdout == "Cell0 is already setup\n"


def test_create_cell_bytes(side_by_side):
    pair = side_by_side
    pair.add_database("cell2")
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    # explicit URLs, --verbose: exactly the new UUID (puppet stores stdout.strip())
    _, ours = same(pair, "cell_v2", "create_cell", "--name", "cell2", "--transport-url",
                      "rabbit://u:secret@mq2:5672/", "--database_connection", DbUrl("cell2"),
                      "--verbose", code=0)
    assert _UUID.fullmatch(ours.stdout.strip()) and ours.stdout.count("\n") == 1
    # kolla's re-deploy: the duplicate sentence on stdout, exit 2
    _, ours = same(pair, "cell_v2", "create_cell", "--name", "cell2", "--transport-url",
                      "rabbit://u:secret@mq2:5672/", "--database_connection", DbUrl("cell2"),
                      code=2)
    assert "already exists" in ours.stdout
    # the config fallback, with both notices before the UUID
    _, ours = same(pair, "cell_v2", "create_cell", "--name", "cell1", "--verbose", code=0)
    assert ours.stdout.startswith("--transport-url not provided in the command line")
    # again: the configured URLs now belong to cell1
    same(pair, "cell_v2", "create_cell", "--name", "cell1", code=2)
    # OpenStack-Ansible's templates on an existing cell: nova-manage makes a second
    # cell (templates never count as duplicates, LP#1923899) and exits 0
    templated = ("cell_v2", "create_cell", "--name", "cell1",
                 "--database_connection",
                 "{scheme}://{username}:{password}@{hostname}:{port}/{path}?{query}",
                 "--transport-url",
                 "{scheme}://{username}:{password}@{hostname}:{port}/{path}?{query}")
    same(pair, "cell_v2", "list_cells", "--verbose", code=0)
    same(pair, *templated, code=0)
    same(pair, *templated, code=0)
    same(pair, "cell_v2", "create_cell", "--transport-url", "not-a-url", code=1)
    # Masked: the password-less [database] test URL expands {password} to "None" in
    # nova-manage and to "" in cellctl (documented), which masking hides.
    same(pair, "cell_v2", "list_cells", code=0)


def test_create_cell_without_database(side_by_side):
    pair = side_by_side
    pair.write_conf(database=False)
    same(pair, "cell_v2", "create_cell", "--name", "x", code=1)


def test_update_cell_bytes(side_by_side):
    pair = side_by_side
    pair.add_database("cell2")
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    cell1 = pair.add_cell("cell1", "cell2", transport_url="rabbit://old:old@mq-old:5672/")
    cell2 = pair.add_cell("cell2", "cell2", transport_url="rabbit://c2:c2@mq-c2:5672/")
    # no URL flags: nova.conf's [DEFAULT]/transport_url and [database]/connection
    # are persisted into the cell (openstack-helm, nova-operator, kolla)
    _, ours = same(pair, "cell_v2", "update_cell", "--cell_uuid", cell1, "--name", "cell1",
                      code=0)
    assert ours.stdout.count("not provided in the command line") == 2
    stored = {c["uuid"]: c for c in pair.ours.rows("api", "cell_mappings")}
    assert stored[cell1]["transport_url"] == TRANSPORT_URL
    assert stored[cell1]["database_connection"] == pair.ours.url("cell1")
    same(pair, "cell_v2", "update_cell", "--cell_uuid", cell1, code=0)  # idempotent
    # another cell with the same configured URLs: 3
    same(pair, "cell_v2", "update_cell", "--cell_uuid", cell2, code=3)
    same(pair, "cell_v2", "update_cell", "--cell_uuid", seed_uuid("nowhere"), code=1)
    # cell0's masked transport written back as it is listed (openstack-helm)
    for transport in ("none:/", "none:///"):
        same(pair, "cell_v2", "update_cell", "--cell_uuid", CELL0_UUID, "--transport-url",
             transport, "--database_connection", DbUrl("cell1_cell0"), code=0)
    same(pair, "cell_v2", "update_cell", "--cell_uuid", cell2, "--disable", "--enable",
         "--transport-url", "rabbit://c2:c2@mq-c2:5672/", "--database_connection",
         DbUrl("cell2"), code=4)
    same(pair, "cell_v2", "update_cell", "--cell_uuid", CELL0_UUID, "--disable",
         "--transport-url", "none:///", "--database_connection", DbUrl("cell1_cell0"), code=5)


def test_update_cell_config_unset_leaves_urls(side_by_side):
    """Documented difference: with no [DEFAULT]/transport_url, nova-manage 34 stores
    oslo.messaging's default ``rabbit://`` (a broker on localhost) and says it used
    the configuration; cellctl leaves the transport as it is, silently. nova-operator's
    cell0 job is the one caller, and nothing reads cell0's transport afterwards."""
    pair = side_by_side
    pair.write_conf(transport_url=None, database=False)
    cell = pair.add_cell("cell1", "cell1")
    nova, ours = pair.step("cell_v2", "update_cell", "--cell_uuid", cell, "--name", "renamed",
                           code=0, same_state=False)
    assert normalised(pair, nova) == (
        "--transport-url not provided in the command line, using the value "
        "[DEFAULT]/transport_url from the configuration file\n")
    assert ours.stdout == ""
    stored = [{c["uuid"]: c for c in side.rows("api", "cell_mappings")}[cell]
              for side in (pair.nova, pair.ours)]
    assert stored[0]["transport_url"] == "rabbit://"
    assert stored[1]["transport_url"] == "rabbit://guest:guest@mq-cell1:5672/"
    assert stored[0]["name"] == stored[1]["name"] == "renamed"
    assert stored[0]["database_connection"] == pair.nova.url("cell1")
    assert stored[1]["database_connection"] == pair.ours.url("cell1")


def test_delete_cell_bytes(side_by_side):
    pair = side_by_side
    pair.add_database("cell2")
    hosts = pair.add_cell("hosts", "cell1")
    pair.map_host("h1", hosts)
    empty = pair.add_cell("empty", "cell2")
    same(pair, "cell_v2", "delete_cell", "--cell_uuid", seed_uuid("nowhere"), code=1)
    same(pair, "cell_v2", "delete_cell", "--cell_uuid", hosts, code=2)
    same(pair, "cell_v2", "delete_cell", "--cell_uuid", empty, code=0)


# --- schema commands ---------------------------------------------------------


def test_schema_commands_bytes(side_by_side):
    """kolla counts any stdout of a sync as a change; its bootstrap runs
    ``db sync --local_cell``; nova's gate runs the version commands."""
    pair = side_by_side
    _, ours = same(pair, "db", "sync", code=0)  # cell0 not mapped yet
    assert ours.stdout == "WARNING: cell0 mapping not found - not syncing cell0.\n"
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    for args in (("api_db", "sync"), ("db", "sync"), ("db", "sync", "--local_cell")):
        _, ours = same(pair, *args, code=0)
        assert ours.stdout == "", (args, ours)
    same(pair, "api_db", "version", code=0)
    same(pair, "db", "version", code=0)
    same(pair, "api_db", "sync", "12", code=255)


def test_schema_sync_failures_bytes(side_by_side):
    """An unknown revision and an unreachable database: nova-manage crashes (255,
    ``An error has occurred:``), except ``db sync`` reaching for cell0, which prints its
    ``Could not access cell0`` text and exits 1 before ``[database]`` is touched."""
    pair = side_by_side
    pair.empty_database("api")
    nova, ours = pair.step("api_db", "sync", "nosuchrev", code=255, same_state=False)
    assert_same_stdout(pair, nova, ours, ("api_db", "sync", "nosuchrev"))
    assert ours.stdout == ("An error has occurred:\n"
                           "CommandError: Can't locate revision identified by 'nosuchrev'\n")
    # no cell_mappings table: cell0 cannot be read. The text is byte for byte
    # nova-manage's up to the driver's error; the [SQL: ...] lines after it name
    # each tool's own query.
    nova, ours = pair.step("db", "sync", code=1, same_state=False)
    head = 8  # "ERROR: Could not access cell0." ... "Error: (pymysql.err.ProgrammingError) ..."
    assert (normalised(pair, ours).splitlines()[:head]
            == normalised(pair, nova).splitlines()[:head]), (nova.stdout, ours.stdout)
    assert ours.stdout.splitlines()[7].startswith("Error: (pymysql.err.ProgrammingError) (1146")
    # nothing can be reached: every URL of both confs points at a closed port
    for side in pair.sides.values():
        side.dispose()
        side.conf.write_text(re.sub(r"@([\w.]+):\d+/", r"@\1:1/", side.conf.read_text()))
    for args in (("api_db", "sync"), ("db", "sync", "--local_cell")):
        nova, ours = pair.step(*args, code=255, same_state=False)
        assert_same_stdout(pair, nova, ours, args)
        assert ours.stdout.startswith("An error has occurred:\nDBConnectionError: "
                                      "(pymysql.err.OperationalError) (2003, "), ours.stdout
    nova, ours = pair.step("db", "sync", code=1, same_state=False)
    assert_same_stdout(pair, nova, ours, ("db", "sync"))  # every byte, the driver's text too
    assert ours.stdout.startswith("ERROR: Could not access cell0.\n"), ours.stdout
    assert ours.stdout.endswith("(Background on this error at: https://sqlalche.me/e/21/e3q8)\n")


# --- discover_hosts, map_instances, verify_instance ---------------------------


def test_discover_hosts_bytes(side_by_side):
    pair = side_by_side
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    cell1 = pair.add_cell("cell1", "cell1")
    pair.add_compute_nodes("cell1", [{"host": "c1"}, {"host": "c2"}])
    same(pair, "cell_v2", "discover_hosts", "--cell_uuid", seed_uuid("nowhere"), code=255)
    nodes = ("cell1.compute_nodes",)  # documented: cellctl marks every node it maps
    same(pair, "cell_v2", "discover_hosts", "--verbose", code=0, except_tables=nodes)
    same(pair, "cell_v2", "discover_hosts", "--verbose", "--strict", code=1,
         except_tables=nodes)
    same(pair, "cell_v2", "discover_hosts", "--cell_uuid", cell1, "--verbose", code=0,
         except_tables=nodes)
    same(pair, "cell_v2", "discover_hosts", code=0, except_tables=nodes)


def test_map_instances_bytes(side_by_side):
    pair = side_by_side
    cell1 = pair.add_cell("cell1", "cell1")
    pair.add_instances("cell1", [{} for _ in range(3)])
    _, ours = same(pair, "cell_v2", "map_instances", "--cell_uuid", seed_uuid("nowhere"),
                      code=255)
    assert ours.stdout.startswith("An error has occurred:\n") and "has no mapping" in ours.stdout
    same(pair, "cell_v2", "map_instances", "--cell_uuid", cell1, "--max-count", "0", code=127)
    same(pair, "cell_v2", "map_instances", "--cell_uuid", cell1, "--max-count", "2", code=1)
    same(pair, "cell_v2", "map_instances", "--cell_uuid", cell1, "--max-count", "2", code=0)


def test_verify_instance_bytes(side_by_side):
    pair = side_by_side
    cell1 = pair.add_cell("cell1", "cell1")
    live, unmapped = pair.add_instances("cell1", [{}, {}])
    pair.map_instance(live, cell1)
    pair.map_instance(unmapped, None)
    same(pair, "cell_v2", "verify_instance", "--uuid", live, code=0)
    same(pair, "cell_v2", "verify_instance", "--uuid", unmapped, code=2)
    same(pair, "cell_v2", "verify_instance", "--uuid", seed_uuid("nowhere"), code=1)
    same(pair, "cell_v2", "verify_instance", "--uuid", seed_uuid("nowhere"), "--quiet", code=1)


def test_simple_cell_setup_bytes(side_by_side):
    pair = side_by_side
    same(pair, "cell_v2", "simple_cell_setup", code=1)  # no compute nodes
    pair.add_compute_nodes("cell1", [{"host": "c1"}])
    # Documented difference: cellctl marks the nodes of the hosts it maps.
    nodes = ("cell1.compute_nodes",)
    same(pair, "cell_v2", "simple_cell_setup", code=0, except_tables=nodes)
    # already set up (grenade)
    same(pair, "cell_v2", "simple_cell_setup", code=0, except_tables=nodes)


def test_unreachable_cell0_bytes(side_by_side):
    """cell0 mapped to a database that cannot be reached: ``db sync`` prints nova-manage's
    ``Could not access cell0`` text (1); ``simple_cell_setup`` its ``Unable to sync cell0
    schema:`` line with the driver's text, and goes on (0)."""
    pair = side_by_side
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    for side in pair.sides.values():
        side.execute("api", "UPDATE cell_mappings SET database_connection = "
                     "REPLACE(database_connection, :port, :closed)",
                     {"port": ":" + side.url("api").split(":")[-1].split("/")[0] + "/",
                      "closed": ":1/"})
    _, ours = same(pair, "db", "sync", code=1)
    assert ours.stdout.startswith("ERROR: Could not access cell0.\n"), ours.stdout
    pair.add_compute_nodes("cell1", [{"host": "c1"}])
    nodes = ("cell1.compute_nodes",)  # documented: cellctl marks the nodes it maps
    _, ours = same(pair, "cell_v2", "simple_cell_setup", code=0, except_tables=nodes)
    assert ("Cell0 is already setup\nUnable to sync cell0 schema: "
            "(pymysql.err.OperationalError) (2003, ") in ours.stdout, ours.stdout
