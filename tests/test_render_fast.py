"""The fast writers of big listings give the slow writers' bytes, on randomized tables;
and the heartbeat fast path gives the allow-list unpickler's answer, on random and
mutated heartbeats (no server needed: pure functions)."""

from __future__ import annotations

import datetime
import io
import json
import pickle
import random
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cellctl.liveness import memcache
from cellctl.liveness.memcache import NotAHeartbeat, heartbeat_value
from cellctl.render import _json_default, _pretty, render
from cellctl.result import Column, Result, Rows, Table

ALPHABETS = [string.ascii_letters + string.digits + "-_. :/", string.printable,
             "abcé—日本\u200b\x1b", ""]


def random_value(rng: random.Random) -> object:
    kind = rng.randrange(9)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-10**12, 10**12)
    if kind == 3:
        return rng.choice([rng.uniform(-1e6, 1e6), 0.1, float("inf"), float("nan")])
    if kind == 4:
        return datetime.datetime(2000, 1, 1) + datetime.timedelta(
            seconds=rng.randint(0, 10**9), microseconds=rng.choice([0, rng.randint(0, 999999)]))
    if kind == 5:
        return [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]
    alphabet = rng.choice(ALPHABETS[:1] * 6 + ALPHABETS)
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) if alphabet else ""


def random_table(rng: random.Random, plain: bool) -> tuple[list[Column], list[tuple[object, ...]]]:
    names = ["Cell Name", "UUID", "x", "Forced Down", "é"][: 4 if plain else 5]
    columns = [Column(f"k{i}", rng.choice(names) + " " * i,  # headers are unique
                      none_as=rng.choice(["", "None", "-"]))
               for i in range(rng.randint(1, 6))]
    rows = []
    for _ in range(rng.randint(0, 40)):
        row = []
        for _ in columns:
            value = random_value(rng)
            if plain and isinstance(value, str):
                value = "".join(c for c in value if c.isascii() and c.isprintable())
            row.append(value)
        rows.append(tuple(row))
    return columns, rows


@pytest.mark.parametrize("seed", range(60))
def test_tables_and_json_as_prettytable_and_json_write_them(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from cellctl import render_fast

    monkeypatch.setattr(render_fast, "CHUNK", 7)  # several chunks a table
    rng = random.Random(seed)
    columns, rows = random_table(rng, plain=seed % 3 != 0)
    keys = [c.key for c in columns]
    dicts = [dict(zip(keys, row, strict=True)) for row in rows]
    for table in (Table(columns, Rows(keys, rows)), Table(columns, dicts)):
        out = io.StringIO()
        render(Result(table=table), "table", out=out, err=io.StringIO())
        assert out.getvalue() == _pretty(Table(columns, dicts)) + "\n", seed
        out = io.StringIO()
        render(Result(table=table), "json", out=out, err=io.StringIO())
        slow = json.JSONEncoder(indent=2, default=_json_default).encode(dicts) + "\n"
        assert out.getvalue() == slow, seed


def test_the_fast_table_is_used_and_is_prettytables_for_a_big_listing() -> None:
    from cellctl.render_fast import pretty_lines

    rng = random.Random(7)
    hosts = [f"cmp-{rng.randint(0, 10**rng.randint(1, 9))}" for _ in range(3000)]
    columns = [Column("host", "Hostname"), Column("state", "State")]
    rows = Rows(["host", "state"], [(h, rng.choice(["up", "down", "no service"])) for h in hosts])
    assert pretty_lines(["Hostname", "State"], 3000,
                        lambda start, stop: [hosts[start:stop], ["up"] * (min(stop, 3000) - start)]
                        ) is not None
    out = io.StringIO()
    render(Result(table=Table(columns, rows)), "table", out=out, err=io.StringIO())
    assert out.getvalue() == _pretty(Table(columns, list(rows))) + "\n"


def test_an_empty_table_is_written_fast_as_prettytable_writes_it() -> None:
    """An empty listing (list_cells on a new deployment) needs neither PrettyTable nor
    wcwidth, whose import costs more than the rest of the command's rendering."""
    from cellctl.render_fast import pretty_lines

    headers = ["Name", "UUID", "Transport URL", "Database Connection", "Disabled"]
    lines = pretty_lines(headers, 0, lambda start, stop: [[] for _ in headers])
    assert lines is not None
    columns = [Column(h.lower(), h) for h in headers]
    assert "\n".join(lines) == _pretty(Table(columns, []))


def test_rows_read_as_dicts() -> None:
    rows = Rows(["a", "b"], [(1, "x"), (2, None)])
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert rows[1] == {"a": 2, "b": None} and rows[:1] == [{"a": 1, "b": "x"}]
    assert len(rows) == 2 and [row["b"] for row in rows] == ["x", None]


# --- the heartbeat fast path ------------------------------------------------------


def either(data: bytes) -> object:
    """What ``loads`` makes of ``data``: the value, or the refusal."""
    try:
        return memcache.loads(data)
    except NotAHeartbeat:
        return NotAHeartbeat


def slow(data: bytes) -> object:
    try:
        return memcache._unpickle(data)
    except NotAHeartbeat:
        return NotAHeartbeat


def heartbeats(rng: random.Random, count: int) -> list[bytes]:
    found = []
    for _ in range(count):
        when = datetime.datetime(2000, 1, 1) + datetime.timedelta(
            seconds=rng.randint(0, 2 * 10**9), microseconds=rng.randint(0, 999999))
        ct = rng.choice([rng.uniform(0, 4e9), float(rng.randint(0, 10**9)), 0.0])
        found.append(heartbeat_value(rng.choice([0, 2, 4, pickle.HIGHEST_PROTOCOL]),
                                     now=when, ct=ct))
    return found


def test_known_shape_gives_the_unpicklers_heartbeat() -> None:
    rng = random.Random(23)
    fast = 0
    for data in heartbeats(rng, 3000):
        known = memcache._known_shape(data)
        assert known is None or known == memcache._unpickle(data), data
        fast += known is not None
    # every protocol-0 and protocol-5 heartbeat (what the memcache clients write) is fast
    assert fast >= 1300


def test_known_shape_mutated_answers_as_the_unpickler() -> None:
    """One byte changed, removed or added anywhere, a global renamed: loads (fast
    path first) and the allow-list unpickler agree: the same heartbeat, or both
    refuse. Run in a child held to 1 GiB of address space, whose peak RSS must stay
    small: a mutated pickle must not make the unpickler allocate (a LONG_BINPUT to
    slot 2**31 once took 20 GiB here)."""
    script = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        sys.path.insert(0, %r)
        import random
        from test_render_fast import either, heartbeats, slow
        rng = random.Random(5)
        checked = 0
        for data in heartbeats(rng, 300):
            for _ in range(10):
                at = rng.randrange(len(data))
                kind = rng.randrange(4)
                if kind == 0:
                    mutated = data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
                elif kind == 1:
                    mutated = data[:at] + data[at + 1:]
                elif kind == 2:
                    mutated = data[:at] + bytes([rng.randrange(256)]) + data[at:]
                else:
                    mutated = data.replace(
                        rng.choice([b"datetime\\n", b"tuple", b"encode", b"CachedValue", b"1"]),
                        rng.choice([b"system\\n", b"list", b"eval", b"X", b"9"]), 1)
                assert either(mutated) == slow(mutated), mutated
                checked += 1
        peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
        print(checked, int(peak.split()[1]))
    """) % str(Path(__file__).parent)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    checked, peak_kib = map(int, child.stdout.split())
    assert checked == 3000 and peak_kib < 300 * 1024


def test_a_pickle_that_would_exhaust_memory_is_refused_before_unpickling() -> None:
    evil = b"\x80\x02K\x01r\x00\x00\x00\x7f."  # LONG_BINPUT to slot 2**31 - 2**24
    with pytest.raises(NotAHeartbeat, match="memoizes at slot"):
        memcache.loads(evil)
    with pytest.raises(NotAHeartbeat, match="larger than any heartbeat"):
        memcache.loads(heartbeat_value(0) + b" " * memcache.MAX_VALUE)


def test_hostile_pickles_are_refused_on_the_fast_path_too() -> None:
    import os

    evil = pickle.dumps(os.system, protocol=0)
    for data in (evil, heartbeat_value(0).replace(b"c_codecs\nencode", b"cos\nsystem"),
                 heartbeat_value(5).replace(b"datetime\x94\x8c\x08datetime",
                                            b"datetime\x94\x8c\x08timezone")):
        assert memcache._known_shape(data) is None
        with pytest.raises(NotAHeartbeat):
            memcache.loads(data)
