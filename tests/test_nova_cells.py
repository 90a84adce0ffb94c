"""Cell mappings side by side with nova-manage 34 on databases Nova built itself.

Each step runs ``nova-manage cell_v2 ...`` on one copy of the cloud and
``cellctl cell_v2 ...`` with the same arguments and the same kind of nova.conf
on an identical copy, then compares exit codes and the rows left in the API
and cell databases (see tests/nova_support.py).
"""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from nova_env import TRANSPORT_URL, schema_shape, table_ddl
from nova_support import CELL0_UUID, DbUrl, seed_uuid

pytestmark = [pytest.mark.nova, pytest.mark.mysql]

UUID_LINE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def schema_fingerprint(side, role):
    """Every table's DDL and Nova's recorded revision: what a migration would change."""
    with side.engine(role).connect() as conn:
        versions = list(conn.execute(sa.text("SELECT version_num FROM alembic_version")))
    return table_ddl(side.engine(role)), versions


def test_sync_recognises_nova_schema_and_changes_nothing(side_by_side):
    pair = side_by_side
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    before = {role: schema_fingerprint(pair.ours, role) for role in pair.ours.databases}

    api = pair.cellctl("api_db", "sync")
    cells = pair.cellctl("db", "sync")
    versions = [pair.cellctl("api_db", "version"), pair.cellctl("db", "version")]

    assert (api.code, cells.code) == (0, 0), (api, cells)
    # stdout stays empty, as nova-manage's (kolla counts any stdout as a change)
    assert api.stdout == cells.stdout == ""
    assert "managed by Nova" in api.stderr
    # [database] and cell0: both recognised, both left alone
    assert cells.stderr.count("managed by Nova") == 2, cells.stderr
    assert [v.code for v in versions] == [0, 0]
    assert versions[0].stdout == "cdeec0c85668\n"  # the revision alone, as nova-manage
    assert versions[1].stdout == "ab450ba04102\n"
    assert "managed by Nova" in versions[0].stderr
    after = {role: schema_fingerprint(pair.ours, role) for role in pair.ours.databases}
    assert after == before
    assert not any("cellctl_" in create for ddl, _ in after.values() for create in ddl)


def test_db_sync_leaves_an_empty_cell0_to_nova(side_by_side):
    """Documented difference: beside a Nova [database], nova-manage db sync creates Nova's
    schema in an empty cell0; cellctl cannot, and must not create its own there (Nova's
    db sync would then fail on cell0 for ever): it says so and exits 1."""
    pair = side_by_side
    pair.empty_database("cell1_cell0")
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    _, ours = pair.step("db", "sync", nova_code=0, cellctl_code=1, same_state=False)
    assert "nova-manage db sync" in ours.stdout
    assert table_ddl(pair.ours.engine("cell1_cell0")) == []
    synced = pair.nova_manage("db", "sync", side=pair.ours)
    assert synced.code == 0, synced
    assert schema_shape(pair.ours.engine("cell1_cell0")) == schema_shape(
        pair.nova.engine("cell1_cell0"))


def test_map_cell0(side_by_side):
    pair = side_by_side
    # cell0's URL is derived from [database] (with its ?charset=utf8 query)
    pair.step("cell_v2", "map_cell0", code=0)
    (cell0,) = pair.ours.rows("api", "cell_mappings")
    assert cell0["database_connection"] == pair.ours.url("cell1_cell0")
    # already set up: the first URL stays
    nova, ours = pair.step("cell_v2", "map_cell0", "--database_connection",
                           pair.ours.url("api"), code=0)
    assert nova.lines == ours.lines == ["Cell0 is already setup"]


def test_create_and_list_cells(side_by_side):
    pair = side_by_side
    pair.add_database("cell2")
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    nova, ours = pair.step("cell_v2", "create_cell", "--name", "cell2", "--transport-url",
                           "rabbit://u:secret@mq2:5672/", "--database_connection",
                           DbUrl("cell2"), "--verbose", code=0)
    assert UUID_LINE.match(nova.lines[-1]) and UUID_LINE.match(ours.lines[-1])

    # The transport URL alone already belongs to cell2.
    pair.step("cell_v2", "create_cell", "--name", "again", "--transport-url",
              "rabbit://u:secret@mq2:5672/", "--database_connection",
              "mysql+pymysql://nova:pw@elsewhere/nova", code=2)
    # Both URLs from nova.conf; disabled; a template URL is stored as written.
    pair.step("cell_v2", "create_cell", "--disabled", code=0)
    pair.step("cell_v2", "create_cell", "--name", "templated", "--transport-url",
              "{scheme}://{username}:{password}@other-{hostname}:{port}/",
              "--database_connection", "mysql+pymysql://nova:pw@db3/nova3", code=0)

    nova, ours = pair.step("cell_v2", "list_cells", "--verbose", code=0)
    pair.assert_same_table(nova, ours)
    assert "rabbit://u:secret@mq2:5672/" in ours.stdout
    nova, ours = pair.step("cell_v2", "list_cells", code=0)
    # nova-manage's masking, flaws included: cell0's none:/// shows as none:/
    assert "none:/" in [row[2] for row in pair.table(pair.ours, ours)]
    assert pair.table(pair.ours, ours) == pair.table(pair.nova, nova)
    assert "secret" not in ours.stdout

    # Documented difference: nova-manage stores a transport no driver knows.
    pair.step("cell_v2", "create_cell", "--name", "typo", "--transport-url", "rabit://mq:5672/",
              "--database_connection", "mysql+pymysql://nova:pw@db4/nova4",
              nova_code=0, cellctl_code=1, same_state=False)
    stored = [[c["transport_url"] for c in side.rows("api", "cell_mappings")]
              for side in (pair.nova, pair.ours)]
    assert "rabit://mq:5672/" in stored[0] and "rabit://mq:5672/" not in stored[1]
    # the templated cell's URL is shown expanded against [DEFAULT] transport_url
    assert "rabbit://guest:****@other-127.0.0.1:5672/" in ours.stdout


def test_create_cell_without_transport_url(side_by_side):
    """Documented difference: with no transport URL anywhere, nova-manage stores
    oslo.messaging's default ``rabbit://`` (a broker on localhost); cellctl refuses."""
    pair = side_by_side
    pair.write_conf(transport_url=None)
    _, ours = pair.step("cell_v2", "create_cell", "--name", "x", nova_code=0,
                           cellctl_code=1, same_state=False)
    assert [c["transport_url"] for c in pair.nova.rows("api", "cell_mappings")] == ["rabbit://"]
    assert pair.ours.rows("api", "cell_mappings") == []
    assert "Must specify --transport-url" in ours.stdout


def test_update_cell(side_by_side):
    pair = side_by_side
    pair.add_database("cell2")
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    cell1 = pair.add_cell("cell1", "cell1")
    cell2 = pair.add_cell("cell2", "cell2")
    mq2 = "rabbit://guest:guest@mq-cell2:5672/"
    # nova-manage always writes some transport URL over the cell's (nova.conf's, else
    # oslo.messaging's default rabbit://; see the test below): each step names the
    # cell's own, so what is compared is the rest. No [database] here: the cells keep theirs.
    pair.write_conf(database=False)

    pair.step("cell_v2", "update_cell", "--cell_uuid", cell1, "--name", "renamed",
              "--transport-url", "rabbit://u:p@mq9:5672/", "--database_connection",
              "mysql+pymysql://nova:pw@db9/nova", code=0)
    # cell1's database URL alone is taken
    pair.step("cell_v2", "update_cell", "--cell_uuid", cell2, "--database_connection",
              "mysql+pymysql://nova:pw@db9/nova", "--transport-url", mq2, code=3)
    pair.step("cell_v2", "update_cell", "--cell_uuid", cell2, "--disable",
              "--transport-url", mq2, code=0)
    nova, ours = pair.step("cell_v2", "update_cell", "--cell", cell2, "--disable",
                           "--transport-url", mq2, code=0)
    assert nova.lines == ours.lines == [f"Cell {cell2} is already disabled"]
    pair.step("cell_v2", "update_cell", "--cell_uuid", cell2, "--disable", "--enable",
              "--transport-url", mq2, code=4)
    pair.step("cell_v2", "update_cell", "--cell_uuid", CELL0_UUID, "--disable",
              "--transport-url", "none:///", code=5)
    pair.step("cell_v2", "update_cell", "--cell_uuid", str(uuid.uuid4()), "--name", "x", code=1)


def test_update_cell_copies_config_urls(side_by_side):
    """As nova-manage: URLs the command line does not name are taken from nova.conf
    and persisted. Documented difference: without [DEFAULT] transport_url nova-manage
    writes oslo.messaging's rabbit://, cellctl leaves the cell's URL as it is."""
    pair = side_by_side
    pair.add_database("cell2")
    cell2 = pair.add_cell("cell2", "cell2")
    nova, ours = pair.step("cell_v2", "update_cell", "--cell_uuid", cell2, "--name", "renamed",
                           code=0)
    assert nova.lines == ours.lines and len(ours.lines) == 2
    (row,) = pair.ours.rows("api", "cell_mappings")
    assert (row["name"], row["transport_url"], row["database_connection"]) == (
        "renamed", TRANSPORT_URL, pair.ours.url("cell1"))

    pair.write_conf(transport_url=None, database=False)
    pair.step("cell_v2", "update_cell", "--cell_uuid", cell2, "--name", "again", code=0,
              same_state=False)
    (nova_row,) = pair.nova.rows("api", "cell_mappings")
    (ours_row,) = pair.ours.rows("api", "cell_mappings")
    assert nova_row["transport_url"] == "rabbit://"
    assert (ours_row["name"], ours_row["transport_url"]) == ("again", TRANSPORT_URL)

    # An invalid URL: nova-manage prints a line and carries on (exit 0, the URL replaced
    # by the fallback above); cellctl stops with 2 and changes nothing.
    nova, ours = pair.step("cell_v2", "update_cell", "--cell_uuid", cell2, "--transport-url",
                           "not-a-url", nova_code=0, cellctl_code=2, same_state=False)
    assert "Invalid transport URL" in nova.stdout and "Invalid transport URL" in ours.stdout
    (after,) = pair.ours.rows("api", "cell_mappings")
    assert after["transport_url"] == TRANSPORT_URL


def test_delete_cell(side_by_side):
    pair = side_by_side
    for role in ("cell2", "cell3"):
        pair.add_database(role)
    with_host = pair.add_cell("hosts", "cell1")
    pair.add_compute_nodes("cell1", [{"host": "compute1", "mapped": 1}])
    pair.map_host("compute1", with_host)
    living = pair.add_cell("living", "cell2")
    (alive,) = pair.add_instances("cell2", [{"host": "compute2"}])
    pair.map_instance(alive, living)
    deleted_only = pair.add_cell("deleted", "cell3")
    (gone,) = pair.add_instances("cell3", [{"host": "compute3", "deleted": True}])
    pair.map_instance(gone, deleted_only)

    pair.step("cell_v2", "delete_cell", "--cell_uuid", seed_uuid("nowhere"), code=1)
    pair.step("cell_v2", "delete_cell", "--cell_uuid", with_host, code=2)
    pair.step("cell_v2", "delete_cell", "--cell_uuid", living, code=3)
    pair.step("cell_v2", "delete_cell", "--cell_uuid", living, "--force", code=3)
    pair.step("cell_v2", "delete_cell", "--cell_uuid", deleted_only, code=4)
    pair.step("cell_v2", "delete_cell", "--cell_uuid", deleted_only, "--force", code=0)
    pair.step("cell_v2", "delete_cell", "--cell_uuid", with_host, "--force", code=0)
    # what is left: the cell with a living instance, and compute1 unmapped again
    assert [c["name"] for c in pair.ours.rows("api", "cell_mappings")] == ["living"]
    assert [n["mapped"] for n in pair.ours.rows("cell1", "compute_nodes")] == [0]

