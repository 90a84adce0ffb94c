"""Time ``cellctl audit`` on 1,000,000 instances over 4 cells plus 100,000 hosts, on MariaDB.

Builds a fresh cloud (an API database and four cell databases, created and
dropped here): each cell gets its share of instances (``cellctl dev
add-instances``) and of compute hosts (a service and a node each, bulk
inserted), everything is mapped by the real ``map_instances`` and
``discover_hosts``, then ``--findings`` inconsistencies of every kind are
planted. First the floor is measured: a plain streaming merge of the
sorted UUID streams (PyMySQL unbuffered cursors, one Python pass; see
``floor``). ``cellctl audit`` is then run as a child process end to end
(start-up included) and its wall time and peak RSS printed beside the
floor's, with the ratio, after checking that it found exactly what was
planted; then ``audit --fix`` and a second ``audit --fix`` (which must find
nothing fixable) the same way.

    .venv/bin/python benchmarks/bench_audit.py [--instances 1000000] [--hosts 100000]
        [--cells 4] [--findings 100] [--repeat N]
        [--build-only FILE | --measure FILE [--keep]]

Every step that touches data runs in a child process, so this process stays
small; each child is run and measured by ``measure.Child``. MariaDB from
CELLCTL_TEST_MYSQL (default root@127.0.0.1:3306). Not run by .ci/run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from measure import MYSQL_SERVER, Child, best, cellctl, seed_compute_hosts, times


def step(*args: str) -> Child:
    """This script, in a child, doing one data step."""
    return Child([sys.executable, __file__, *args], {}).expect(0)


def admin(statement: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(MYSQL_SERVER)
    with engine.connect() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()


def build(args: argparse.Namespace, workdir: Path) -> dict:
    """The cloud, mapped, with the findings planted: what ``measure`` needs to know."""
    tag = uuid.uuid4().hex[:8]
    names = [f"cellctl_bench_audit_api_{tag}"] + [
        f"cellctl_bench_audit_cell{n}_{tag}" for n in range(1, args.cells + 1)]
    for name in names:
        step("--admin", f"CREATE DATABASE {name}")
    api_url = f"{MYSQL_SERVER}/{names[0]}"
    cell_urls = [f"{MYSQL_SERVER}/{name}" for name in names[1:]]
    env = {"CELLCTL_STATE_DIR": str(workdir / "state"),
           "CELLCTL_API_DATABASE_CONNECTION": api_url,
           "CELLCTL_DATABASE_CONNECTION": cell_urls[0],
           "CELLCTL_TRANSPORT_URL": "memory:///"}
    cloud = {"names": names, "env": env, "findings": args.findings, "cell_urls": cell_urls}
    try:
        cellctl(env, "api_db", "sync").expect(0)
        per_cell = args.instances // args.cells
        hosts_per_cell = args.hosts // args.cells
        started = time.perf_counter()
        cells = []
        for n, url in enumerate(cell_urls, 1):
            cell_env = {**env, "CELLCTL_DATABASE_CONNECTION": url}
            cellctl(cell_env, "db", "sync").expect(0)
            created = cellctl(cell_env, "--format", "json", "create_cell", "--name", f"cell{n}",
                              "--database_connection", url,
                              "--transport-url", f"memory:///cell{n}").expect(0)
            cells.append(json.loads(created.out)["uuid"])
            cellctl(cell_env, "dev", "add-instances", "--count", str(per_cell),
                    "--host", f"c{n}-host-000000").expect(0)
            step("--seed-hosts", url, f"c{n}-host-", str(hosts_per_cell))
            cellctl(cell_env, "map_instances", "--cell_uuid", cells[-1]).expect(0)
        cellctl(env, "discover_hosts").expect(0)
        print(f"built {per_cell * args.cells:,} instances and {hosts_per_cell * args.cells:,} "
              f"hosts in {args.cells} cells in {time.perf_counter() - started:.0f} s", flush=True)
        step("--plant", api_url, json.dumps(cell_urls), json.dumps(cells), str(args.findings))
        ids = json.loads(step("--cell-ids", api_url, json.dumps(cells)).out)
        cloud["cell_ids"] = ids
    except BaseException:
        drop(cloud)
        raise
    return cloud


def measure(cloud: dict, repeat: int = 1) -> None:
    """The floor and audit, alternated ``repeat`` times (the best of each taken: the
    machine may be shared), then audit --fix and audit --fix again, each timed with its
    peak RSS; every ratio is to the floor measured in the same run."""
    env, n = cloud["env"], cloud["findings"]
    expected = {kind: n for kind in KINDS}
    expected["leftover_marker"] = 1
    floors, audits = [], []
    for _ in range(repeat):
        base = Child([sys.executable, __file__, "--floor",
                         env["CELLCTL_API_DATABASE_CONNECTION"], json.dumps(cloud["cell_urls"]),
                         json.dumps(cloud["cell_ids"])], {}).expect(0)
        floors.append(base)
        print(f"{'floor':20} {base.seconds:5.1f} s, peak RSS {base.rss_mib:4.0f} MiB "
              f"({base.out.strip()})", flush=True)
        first = cellctl(env, "--format", "json", "audit").expect(1)
        check(first, expected, "audit")
        audits.append(first)
        ratio(first, base)
    base = best(floors)
    if repeat > 1:
        fastest = best(audits)
        print(f"best of {repeat}: floor {base.seconds:.1f} s, audit {fastest.seconds:.1f} s",
              flush=True)
        ratio(fastest, base)
    fixed = cellctl(env, "--format", "json", "audit", "--fix").expect(1)
    check(fixed, expected, "audit --fix")
    ratio(fixed, base)
    again = cellctl(env, "--format", "json", "audit", "--fix").expect(1)
    payload = json.loads(again.out)
    if any(payload["fixed"].values()) or any(f["fixable"] for f in payload["findings"]):
        raise SystemExit(f"second --fix still found fixable findings: {payload['counts']}")
    report(again, "audit --fix (again)", payload)
    ratio(again, base)


def drop(cloud: dict) -> None:
    for name in cloud["names"]:
        step("--admin", f"DROP DATABASE IF EXISTS {name}")


KINDS = ("instance_without_mapping", "mapping_without_instance", "mapping_in_wrong_cell",
         "mapping_without_cell", "host_mapping_without_host",
         "node_mapped_without_host_mapping", "host_in_several_cells", "leftover_marker")


def check(child: Child, expected: dict[str, int], label: str) -> None:
    payload = json.loads(child.out)
    if payload["counts"] != expected:
        raise SystemExit(f"{label}: expected {expected}, found {payload['counts']}")
    report(child, label, payload)


def ratio(child: Child, base: Child) -> None:
    print(f"{'':20} {times(child.seconds, base.seconds, 5)} the floor's time, "
          f"{times(child.rss_mib, base.rss_mib)} its peak RSS", flush=True)


def report(child: Child, label: str, payload: dict) -> None:
    print(f"{label:20} {child.seconds:5.1f} s, peak RSS {child.rss_mib:4.0f} MiB, "
          f"exit {child.code}, {sum(payload['counts'].values())} findings, "
          f"{sum(payload['fixed'].values())} fixed", flush=True)


# --- data steps, each run in a child --------------------------------------------


def floor(api_url: str, cell_urls: list[str], cell_ids: list[int]) -> None:
    """The least any audit can do: each cell's ``SELECT uuid FROM instances ORDER BY uuid``
    and the API's ``SELECT instance_uuid, cell_id FROM instance_mappings ORDER BY
    instance_uuid`` on PyMySQL unbuffered cursors, merged in one Python pass that counts
    instances without mapping, mappings without instance and mappings in another cell;
    then the host rows the host checks need (host mappings, each cell's live nodes' and
    nova-compute services' hosts), sorted by the databases and merged the same way."""
    import heapq
    import itertools

    import pymysql
    import pymysql.cursors
    import sqlalchemy as sa

    def stream(url: str, query: str, tag: int):  # type: ignore[no-untyped-def]
        parsed = sa.engine.make_url(url)
        conn = pymysql.connect(host=parsed.host, port=parsed.port or 3306,
                               user=parsed.username, password=parsed.password or "",
                               database=parsed.database,
                               cursorclass=pymysql.cursors.SSCursor)
        with conn.cursor() as cur:
            cur.execute(query)
            while rows := cur.fetchmany(10_000):
                for row in rows:
                    yield row[0].lower(), tag, row[-1]
        conn.close()

    sources = [stream(api_url, "SELECT instance_uuid, cell_id FROM instance_mappings "
                               "ORDER BY instance_uuid", -1)]
    sources += [stream(url, "SELECT uuid FROM instances ORDER BY uuid", cid)
                for url, cid in zip(cell_urls, cell_ids, strict=True)]
    unmapped = orphans = elsewhere = 0
    for _key, group in itertools.groupby(heapq.merge(*sources), key=lambda item: item[0]):
        rows = list(group)
        mapped = [cell for _, tag, cell in rows if tag == -1]
        holders = [tag for _, tag, _ in rows if tag != -1]
        if not mapped:
            unmapped += len(holders)
        elif mapped[0] is not None and mapped[0] not in holders:
            if holders:
                elsewhere += 1
            else:
                orphans += 1
    # The hosts: host mappings, and each cell's live nodes' and nova-compute services'
    # hosts, each sorted by the database in one order (lower case, binary) and merged.
    folded = "ORDER BY CAST(LOWER(host) AS BINARY)"
    hosts = [stream(api_url, f"SELECT host, cell_id FROM host_mappings {folded}", -1)]
    for url, cid in zip(cell_urls, cell_ids, strict=True):
        hosts.append(stream(url, "SELECT host, MAX(mapped) FROM compute_nodes WHERE deleted = 0 "
                                 f"AND host IS NOT NULL GROUP BY host {folded}", cid))
        hosts.append(stream(url, "SELECT host, 0 FROM services WHERE deleted = 0 AND host IS "
                                 "NOT NULL AND `binary` = 'nova-compute' GROUP BY host "
                                 f"{folded}", cid))
    gone = lost = several = 0
    for _key, group in itertools.groupby(heapq.merge(*hosts), key=lambda item: item[0]):
        rows = list(group)
        mapped = [cell for _, tag, cell in rows if tag == -1]
        holders = {tag for _, tag, _ in rows if tag != -1}
        gone += sum(1 for cell in mapped if cell not in holders)
        if not mapped and any(tag != -1 and (marked or 0) >= 1 for _, tag, marked in rows):
            lost += 1
        several += len(holders) > 1
    print(f"{unmapped} without mapping, {orphans} without instance, {elsewhere} elsewhere; "
          f"hosts: {gone} mapped but gone, {lost} marked without mapping, "
          f"{several} in several cells")


def cell_ids(api_url: str, cells: list[str]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(api_url)
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT uuid, id FROM cell_mappings")).all())
    engine.dispose()
    print(json.dumps([ids[cell] for cell in cells]))


def seed_hosts(url: str, prefix: str, count: int) -> None:
    """``count`` compute hosts, a nova-compute service and a node each, in bulk."""
    seed_compute_hosts(url, count, lambda n: f"{prefix}{n:06d}")


def plant(api_url: str, cell_urls: list[str], cells: list[str], n: int) -> None:
    """``n`` findings of every kind (one marker), each made as it happens in real clouds."""
    import datetime

    import sqlalchemy as sa

    api = sa.create_engine(api_url)
    engines = [sa.create_engine(url) for url in cell_urls]
    with api.begin() as conn:
        ids = dict(conn.execute(sa.text("SELECT uuid, id FROM cell_mappings")).all())
    c1, c2, c3, c4 = (ids[c] for c in cells[:4])

    def cell_uuids(engine: sa.Engine, limit: int, offset: int = 0) -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT uuid FROM instances ORDER BY id LIMIT :n OFFSET :o"),
                {"n": limit, "o": offset}).scalars())

    with api.begin() as conn:
        # instance_without_mapping: mappings lost for cell1 instances.
        conn.execute(sa.text("DELETE FROM instance_mappings WHERE instance_uuid IN :u")
                     .bindparams(sa.bindparam("u", expanding=True)),
                     {"u": cell_uuids(engines[0], n, 1000)})
        # mapping_in_wrong_cell: cell3 instances whose mappings say cell4.
        conn.execute(sa.text("UPDATE instance_mappings SET cell_id = :c4 "
                             "WHERE instance_uuid IN :u")
                     .bindparams(sa.bindparam("u", expanding=True)),
                     {"c4": c4, "u": cell_uuids(engines[2], n, 1000)})
        # mapping_without_cell: builds that never finished, two days ago.
        old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(2)
        conn.execute(sa.text(
            "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
            "queued_for_delete, created_at) VALUES (:u, NULL, 'p', 'u', 0, :t)"),
            [{"u": str(uuid.uuid4()), "t": old} for _ in range(n)])
        # leftover_marker
        conn.execute(sa.text(
            "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
            "queued_for_delete, created_at) VALUES (:u, NULL, :m, :m, 0, :t)"),
            {"u": str(uuid.uuid4()).replace("-", " "), "m": "INSTANCE_MIGRATION_MARKER",
             "t": old})
        # node_mapped_without_host_mapping: cell2 hosts whose mappings were deleted.
        conn.execute(sa.text("DELETE FROM host_mappings WHERE cell_id = :c AND host LIKE "
                             "'c2-host-%' ORDER BY host DESC LIMIT :n"), {"c": c2, "n": n})
    # mapping_without_instance: cell2 instances archived (rows gone, mappings left).
    with engines[1].begin() as conn:
        conn.execute(sa.text("DELETE FROM instances WHERE uuid IN :u")
                     .bindparams(sa.bindparam("u", expanding=True)),
                     {"u": cell_uuids(engines[1], n, 1000)})
    # host_mapping_without_host: cell1 hosts deleted from the cell, still mapped.
    with engines[0].begin() as conn:
        conn.execute(sa.text("DELETE FROM compute_nodes WHERE host LIKE 'c1-host-%' "
                             "AND host <> 'c1-host-000000' ORDER BY host DESC LIMIT :n"),
                     {"n": n})
        conn.execute(sa.text("DELETE FROM services WHERE host LIKE 'c1-host-%' "
                             "AND host <> 'c1-host-000000' ORDER BY host DESC LIMIT :n"),
                     {"n": n})
    # host_in_several_cells: cell3 host names with a service in cell4 too.
    from cellctl.clock import utcnow
    from cellctl.tables.cell import services
    from cellctl.tables.rows import service_row

    with engines[3].begin() as conn:
        conn.execute(services.insert(), [service_row(f"c3-host-{k:06d}", "nova-compute",
                                                     now=utcnow()) for k in range(1, n + 1)])
    _ = (c1, c3)
    for engine in [api, *engines]:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--findings", type=int, default=100)
    parser.add_argument("--build-only", metavar="FILE",
                        help="build the cloud, keep it, describe it in FILE (for --measure)")
    parser.add_argument("--measure", metavar="FILE",
                        help="measure (then drop) a cloud kept by --build-only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate the floor and audit this many times (best of each)")
    parser.add_argument("--keep", action="store_true",
                        help="with --measure: keep the cloud (to measure it again)")
    parser.add_argument("--admin", help=argparse.SUPPRESS)
    parser.add_argument("--seed-hosts", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--plant", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--cell-ids", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.admin:
        admin(args.admin)
    elif args.seed_hosts:
        url, prefix, count = args.seed_hosts
        seed_hosts(url, prefix, int(count))
    elif args.plant:
        api_url, urls, cells, n = args.plant
        plant(api_url, json.loads(urls), json.loads(cells), int(n))
    elif args.floor:
        api_url, urls, ids = args.floor
        floor(api_url, json.loads(urls), json.loads(ids))
    elif args.cell_ids:
        cell_ids(args.cell_ids[0], json.loads(args.cell_ids[1]))
    elif args.measure:
        cloud = json.loads(Path(args.measure).read_text())
        try:
            with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
                cloud["env"]["CELLCTL_STATE_DIR"] = tmp
                measure(cloud, args.repeat)
        finally:
            if not args.keep:
                drop(cloud)
    else:
        if args.cells < 4:
            raise SystemExit("--cells must be at least 4 (the planted findings use four)")
        with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
            cloud = build(args, Path(tmp))
            if args.build_only:
                Path(args.build_only).write_text(json.dumps(cloud))
                print(f"kept; measure with: {sys.argv[0]} --measure {args.build_only}")
                return
            try:
                measure(cloud, args.repeat)
            finally:
                drop(cloud)

if __name__ == "__main__":
    main()
