"""Four real ``cellctl discover_hosts`` processes at once on the same databases."""

from __future__ import annotations

import pytest
from hostsupport import add_hosts, add_node, cellctl_process, host_mappings, node_flags, setup_cells

HOSTS = 3000  # three batches per run, so the runs interleave
RUNS = 4


@pytest.fixture
def cloud(cloud_no_pg):
    """SQLite and MariaDB: PostgreSQL would add time but no coverage here."""
    return cloud_no_pg


def test_concurrent_discover_maps_each_host_once(cloud):
    cell1, cell2 = setup_cells(cloud, extra_cells=1)
    hosts = [f"compute-{i:05d}" for i in range(HOSTS)]
    add_hosts(cloud.cell_urls[0], hosts[: HOSTS // 2])
    add_hosts(cloud.cell_urls[1], hosts[HOSTS // 2 :])
    add_node(cloud.cell_urls[0], hosts[0], hypervisor="second-node")

    procs = [cellctl_process(cloud, "discover_hosts", "--verbose") for _ in range(RUNS)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    codes = [proc.returncode for proc in procs]

    for out, err in outputs:
        assert "Traceback" not in out + err
    assert set(codes) <= {0, 2}, outputs
    assert len(cloud.api_rows("host_mappings")) == HOSTS  # exactly one mapping per host
    by_host = host_mappings(cloud)
    assert all(by_host[h] == cell1 for h in hosts[: HOSTS // 2])
    assert all(by_host[h] == cell2 for h in hosts[HOSTS // 2 :])
    # Every mapping was created by exactly one of the runs.
    created = sum(out.count("Creating host mapping") for out, _ in outputs)
    assert created == HOSTS
    for url in cloud.cell_urls:
        assert set(node_flags(url).values()) == {1}  # every node marked mapped
