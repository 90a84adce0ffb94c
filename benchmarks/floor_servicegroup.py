"""The floor of ``list_hosts --status`` and ``service list``: the least work any
implementation must do for the same answer with the same service group driver.

Imports SQLAlchemy (as any implementation reading Nova's databases does), reads
the rows it needs once, streamed (the cells and host mappings from the API
database, the live services from the cell database), does the driver's bulk
reads (db: none; mc: memcached ``get_many`` of the services' keys, 1,000 a
request, each value's creation time read straight from the known pickle bytes;
zk: ZooKeeper ``multiRead`` of every service's znode, 1,000 a request, all
pipelined), judges each service and writes the same bytes cellctl writes
(JSON, or the PrettyTable-shaped table) with the cheapest direct formatting.
One cell; no checks, no warnings, no dead backends: a floor, not a tool.

    python benchmarks/floor_servicegroup.py {hosts|services} {json|table} {db|mc|zk} \\
        API_URL [--memcached HOST:PORT] [--zookeeper HOST:PORT --prefix /PATH]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import sys
from json.encoder import encode_basestring_ascii as quote
from typing import Any

import sqlalchemy as sa

DOWN_SECONDS = 60
BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["hosts", "services"])
    parser.add_argument("format", choices=["json", "table"])
    parser.add_argument("driver", choices=["db", "mc", "zk"])
    parser.add_argument("api_url")
    parser.add_argument("--memcached")
    parser.add_argument("--zookeeper")
    parser.add_argument("--prefix")
    args = parser.parse_args()
    api = sa.create_engine(args.api_url)
    with api.connect() as conn:
        cell_id, cell_uuid, cell_name, cell_url = conn.execute(sa.text(
            "SELECT id, uuid, name, database_connection FROM cell_mappings "
            "WHERE uuid <> '00000000-0000-0000-0000-000000000000'")).one()
        mapped = None
        if args.command == "hosts":
            mapped = {host for (host,) in conn.execution_options(yield_per=10_000).execute(
                sa.text("SELECT host FROM host_mappings WHERE cell_id = :id"), {"id": cell_id})}
    sv = sa.table("services", *(sa.column(n) for n in ("host", "binary", "topic")),
                  sa.column("disabled", sa.Boolean), sa.column("forced_down", sa.Boolean),
                  sa.column("last_seen_up", sa.DateTime), sa.column("created_at", sa.DateTime),
                  sa.column("disabled_reason"), sa.column("deleted"))
    query = sa.select(*(sv.c[n] for n in ("host", "binary", "topic", "disabled", "forced_down",
                                          "last_seen_up", "created_at", "disabled_reason"))
                      ).where(sv.c.deleted == 0)
    if args.command == "hosts":
        query = query.where(sv.c.binary == "nova-compute")
    cell = sa.create_engine(cell_url)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    judged: list[tuple[Any, ...]] = []
    with cell.connect() as conn:
        result = conn.execution_options(yield_per=10_000).execute(query)
        for part in result.partitions():
            if mapped is not None:
                part = [row for row in part if row[0] in mapped]
            up = alive(args, part, now)
            for row, live in zip(part, up, strict=True):
                forced = bool(row[4])
                if args.command == "hosts":
                    state = ("forced down" if forced else "down" if not live
                             else "disabled" if row[3] else "up")
                    judged.append((row[0], state))
                else:
                    judged.append((row[1], row[0], "disabled" if row[3] else "enabled",
                                   "up" if live and not forced else "down", forced, row[5],
                                   row[7]))
    if args.command == "hosts":
        judged += [(host, "no service") for host in mapped - {h for h, _ in judged}]
        judged.sort()
        rows = [(cell_name, cell_uuid, host, state) for host, state in judged]
        keys = ["cell_name", "cell_uuid", "hostname", "state"]
        headers = ["Cell Name", "Cell UUID", "Hostname", "State"]
    else:
        judged.sort(key=lambda r: (r[1], r[0]))
        rows = [(cell_name, cell_uuid, *r) for r in judged]
        keys = ["cell_name", "cell_uuid", "binary", "host", "status", "state", "forced_down",
                "last_seen_up", "disabled_reason"]
        headers = ["Cell Name", "Cell UUID", "Binary", "Host", "Status", "State", "Forced Down",
                   "Last Seen Up", "Disabled Reason"]
    (write_json if args.format == "json" else write_table)(keys, headers, rows)


def alive(args: argparse.Namespace, rows: list[Any], now: datetime.datetime) -> list[bool]:
    if args.driver == "db":
        return [abs((now - (r[5] or r[6])).total_seconds()) <= DOWN_SECONDS
                if (r[5] or r[6]) else False for r in rows]
    if args.driver == "mc":
        return mc_alive(args.memcached, rows, now)
    return zk_alive(args.zookeeper, args.prefix, rows)


def mc_alive(server: str, rows: list[Any], now: datetime.datetime) -> list[bool]:
    from pymemcache.client.base import Client

    client = Client(server)
    keys = [hashlib.sha1(f"{r[2]}:{r[0]}".encode()).hexdigest() for r in rows]
    found: dict[str, bytes] = {}
    for start in range(0, len(keys), BATCH):
        found.update(client.get_many(keys[start:start + BATCH]))
    client.close()
    epoch = now.replace(tzinfo=datetime.UTC).timestamp()
    up = []
    for key in keys:
        value = found.get(key)
        if value is None:
            up.append(False)
            continue
        start = value.index(b"\nF") + 2  # protocol 0: the creation time as text
        up.append(epoch - float(value[start:value.index(b"\n", start)]) <= DOWN_SECONDS)
    return up


def zk_alive(address: str, prefix: str, rows: list[Any]) -> list[bool]:
    from kazoo.client import KazooClient
    from kazoo.protocol.serialization import (
        GetData,
        MultiHeader,
        int_struct,
        multiheader_struct,
        read_buffer,
        stat_struct,
    )

    class MultiRead:  # ZooKeeper 3.6's multiRead of getData (kazoo lacks it)
        type = 22

        def __init__(self, paths: list[str]) -> None:
            self.paths = paths

        def serialize(self) -> bytearray:
            out = bytearray()
            for path in self.paths:
                out += MultiHeader(GetData.type, False, -1).serialize()
                out += GetData(path, None).serialize()
            return out + multiheader_struct.pack(-1, True, -1)

        def deserialize(self, data: bytes, offset: int) -> list[bool]:
            up = []
            header, offset = MultiHeader.deserialize(data, offset)
            while not header.done:
                if header.type == GetData.type:
                    value, offset = read_buffer(data, offset)
                    up.append(value == b"ZKMembers"
                              and int_struct.unpack_from(data, offset + 56)[0] > 0)
                    offset += stat_struct.size
                else:
                    offset += int_struct.size
                    up.append(False)
                header, offset = MultiHeader.deserialize(data, offset)
            return up

    zk = KazooClient(hosts=address)
    zk.start()
    paths = [f"{prefix}/{r[2]}/{r[0]}" for r in rows]
    answers = []
    for start in range(0, len(paths), BATCH):
        answer = zk.handler.async_result()
        zk._call(MultiRead(paths[start:start + BATCH]), answer)
        answers.append(answer)
    up = [live for answer in answers for live in answer.get(timeout=30)]
    zk.stop()
    zk.close()
    return up


def shown(value: Any, none_as: str) -> str:
    if value is None:
        return none_as
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ", "seconds")
    return str(value)


def encoded(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return quote(value.isoformat())
    return "null" if value is None else str(value)


def write_json(keys: list[str], headers: list[str], rows: list[tuple[Any, ...]]) -> None:
    template = "  {\n" + ",\n".join(f"    {quote(k)}: %s" for k in keys) + "\n  }"
    write = sys.stdout.write
    for start in range(0, len(rows), 1000):
        write(("[\n" if start == 0 else ",\n") + ",\n".join(
            template % tuple(encoded(v) for v in row) for row in rows[start:start + 1000]))
    write("\n]\n" if rows else "[]\n")


def write_table(keys: list[str], headers: list[str], rows: list[tuple[Any, ...]]) -> None:
    none_as = {"cell_name": "None", "last_seen_up": "-", "disabled_reason": "-"}
    blanks = [none_as.get(k, "") for k in keys]
    cells = [[shown(v, n) for v, n in zip(row, blanks, strict=True)] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.center(w) for c, w in zip(row, widths, strict=True)) + " |"
    out = sys.stdout
    out.write(f"{rule}\n{line(headers)}\n{rule}\n")
    for start in range(0, len(cells), 1000):
        out.write("".join(line(r) + "\n" for r in cells[start:start + 1000]))
    out.write(rule + "\n")


if __name__ == "__main__":
    main()
