"""The ``[ironic]`` settings of each service's nova.conf, and Nova's rules on them.

No Ironic and no database here: what is read from the files, what is refused,
and the rings Nova's driver builds from them (``cellctl.ironic``). The whole
command, against a real Ironic and Nova's own driver, is tests/test_ironic_owners.py.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from tooz.hashring import HashRing as ToozRing

from cellctl.cli import main
from cellctl.errors import ConfigError
from cellctl.hashring import HashRing
from cellctl.ironic import config
from cellctl.ironic.nodes import Filter, Node
from cellctl.ironic.ownership import (
    InvalidPeerList,
    Peer,
    Shares,
    contradictions,
    managed_nodes,
    ring_members,
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_nova_names_types_and_defaults(tmp_path):
    path = write(tmp_path, "a.conf", "[DEFAULT]\nhost = bm-1\n[ironic]\n"
                 "partition_key = g1\npeer_list = bm-1, bm-2\nauth_type = none\n"
                 "endpoint_override = http://ironic:6385\nregion_name = r1\n")
    settings = config.load([path])
    assert (settings.host, settings.conductor_group, settings.shard) == ("bm-1", "g1", None)
    assert settings.peer_list == ("bm-1", "bm-2")
    assert settings.reaches_ironic
    group = settings.conf.ironic
    assert group.region_name == "r1" and group.valid_interfaces == ["internal", "public"]
    assert group.service_type == "baremetal"
    assert Filter.of(settings).kwargs() == {"conductor_group": "g1"}


def test_empty_conductor_group_is_the_default_group_not_unset(tmp_path):
    settings = config.load([write(tmp_path, "a.conf", "[ironic]\nconductor_group =\n")])
    assert settings.conductor_group == ""
    assert Filter.of(settings).kwargs() == {"conductor_group": ""}
    assert not settings.reaches_ironic
    assert config.load([]).conductor_group is None


def test_connection_key_is_how_ironic_is_reached_not_what_is_asked(tmp_path):
    """Equal keys share one fetch: the filters and Nova's own options are not in it;
    the endpoint, the region and the auth plugin's credentials are."""
    auth = ("[ironic]\nauth_type = password\nauth_url = http://keystone:5000/v3\n"
            "username = nova\npassword = secret\n")
    keys = {name: config.connection_key(config.load([write(tmp_path, name, text)]))
            for name, text in {
                "a": auth + "shard = s1\n",
                "b": auth + "conductor_group = g1\npeer_list = x\napi_max_retries = 3\n",
                "region": auth + "region_name = r2\n",
                "password": auth.replace("secret", "other"),
                "section": "[ironic]\nauth_section = ks\n[ks]\nauth_type = password\n"
                           "auth_url = http://keystone:5000/v3\nusername = nova\n"
                           "password = secret\n",
                "noauth": "[ironic]\nauth_type = none\nendpoint_override = http://i:6385\n",
            }.items()}
    assert keys["a"] == keys["b"]
    again = config.load([write(tmp_path, "noauth2", "[ironic]\nauth_type = none\n"
                               "endpoint_override = http://i:6385\n")])
    # Stable: asking twice (which registers the plugin's options) gives one key.
    assert config.connection_key(again) == config.connection_key(again) == keys["noauth"]
    assert len({keys[n] for n in ("a", "region", "password", "section", "noauth")}) == 5
    assert ("ks.password", "secret") in keys["section"]


@pytest.mark.parametrize("text", ["[ironic]\nshard = a b\n", "[ironic]\nshard =\n",
                                  "[ironic]\nconductor_group = g/1\n", "[ironic\n"])
def test_values_nova_refuses_are_refused(tmp_path, text):
    with pytest.raises(ConfigError, match=r"a\.conf"):
        config.load([write(tmp_path, "a.conf", text)])


def test_service_files_pairs_win_over_the_directory(tmp_path):
    root = tmp_path / "dir"
    root.mkdir()
    (root / "bm-1.conf").write_text("")
    (root / "bm-2").write_text("")
    (root / ".hidden").write_text("")
    found = config.service_files(["bm-2=/x/bm-2.conf"], str(root))
    assert found == {"bm-1": str(root / "bm-1.conf"), "bm-2": "/x/bm-2.conf"}
    with pytest.raises(ConfigError, match="HOST=FILE"):
        config.service_files(["bm-1"], None)
    with pytest.raises(ConfigError, match="not a directory"):
        config.service_files([], str(tmp_path / "missing"))


def test_the_files_own_host_wins_over_the_name_given(tmp_path):
    named = write(tmp_path, "a.conf", "[DEFAULT]\nhost = real-name\n")
    unnamed = write(tmp_path, "b.conf", "[ironic]\nshard = s1\n")
    loaded = config.load_services({"given-a": named, "given-b": unnamed})
    assert loaded["given-a"].host == "real-name"
    assert loaded["given-b"].host == "given-b" and loaded["given-b"].shard == "s1"


def settings_of(host, **ironic):
    return config.IronicSettings(host=host, conductor_group=ironic.get("conductor_group"),
                                 shard=ironic.get("shard"),
                                 peer_list=tuple(ironic.get("peer_list", ())), source="test")


PEERS = [Peer("bm-1", False, True, True), Peer("BM-2", False, True, True),
         Peer("bm-3", True, True, True),  # disabled: in nobody else's ring
         Peer("bm-4", False, True, False),  # down
         Peer("bm-5", False, False, True)]  # no ironic compute_nodes row yet


def test_rings_by_configuration():
    assert ring_members(settings_of("bm-1"), PEERS) == {"bm-1", "bm-2"}
    # a service always counts itself in: disabled, down or brand new
    assert ring_members(settings_of("bm-3"), PEERS) == {"bm-1", "bm-2", "bm-3"}
    assert ring_members(settings_of("bm-5"), PEERS) == {"bm-1", "bm-2", "bm-5"}
    assert ring_members(settings_of("bm-1", shard="s1"), PEERS) == {"bm-1"}
    # peer_list is compared exactly: "bm-2" is not "BM-2"
    grouped = settings_of("bm-1", conductor_group="g", peer_list=["bm-1", "bm-2", "bm-4"])
    assert ring_members(grouped, PEERS) == {"bm-1"}
    grouped = settings_of("bm-1", conductor_group="g", peer_list=["bm-1", "BM-2"])
    assert ring_members(grouped, PEERS) == {"bm-1", "bm-2"}
    for bad in ([], ["bm-2"]):
        with pytest.raises(InvalidPeerList):
            ring_members(settings_of("bm-1", conductor_group="g", peer_list=bad), PEERS)
    unknown = [*PEERS, Peer("bm-6", False, True, None)]
    assert ring_members(settings_of("bm-1"), unknown) is None
    assert ring_members(settings_of("bm-1", shard="s"), unknown) == {"bm-1"}


def test_managed_nodes_as_the_driver_picks_them():
    me = settings_of("BM-1")
    members = ["bm-1", "bm-2", "bm-3"]
    listing = [Node(f"{i:08x}-0000-4000-8000-000000000000", None, "", None)
               for i in range(300)]
    listing += [Node("mine", "i-1", "", None), Node("theirs", "i-2", "", None)]
    got = managed_nodes(me, HashRing(members), listing, {"i-1"})
    tooz = ToozRing(members, partitions=32)
    expected = [n.uuid for n in listing[:300]
                if tooz.get_nodes(n.uuid.encode("utf-8")) == {"bm-1"}]
    assert 60 < len(expected) < 140
    assert got == [*expected, "mine"]
    shares, counts = Shares(HashRing(members)), Shares(HashRing(members), keep=False)
    for node in listing:
        shares.add(node)
        counts.add(node)
    many = {f"i-{n}" for n in range(10)}  # more own instances than the listing carries
    for host, own in (("BM-1", {"i-1"}), ("bm-2", {"i-2", "i-9"}), ("bm-3", set()),
                      ("bm-2", many)):
        expected = managed_nodes(settings_of(host), HashRing(members), listing, own)
        assert sorted(shares.of(host, own)) == sorted(expected)
        assert counts.count(host, own) == shares.count(host, own) == len(expected)
    with pytest.raises(ValueError):
        counts.of("bm-1", set())


def test_contradictions():
    found = contradictions({
        "a": settings_of("a", shard="s1"), "b": settings_of("b", shard="s1"),
        "c": settings_of("c", shard="s2"),
        "d": settings_of("d", conductor_group="g1", peer_list=["d", "e"]),
        "e": settings_of("e", conductor_group="g2", peer_list=["e"]),
        "f": settings_of("f", conductor_group="g1", peer_list=["d"]),
        "plain": settings_of("plain"),
    })
    assert found["a"] == ["shares shard s1 with b"] and found["c"] == []
    assert found["d"] == ["peer e serves another conductor group or a shard"]
    assert found["e"] == []
    assert found["f"][0].startswith("invalid peer_list")
    assert "manages every node" in found["plain"][0]
    assert contradictions({"x": settings_of("x"), "y": settings_of("y")}) == {"x": [], "y": []}


def test_unreadable_service_file_is_exit_1(tmp_path):
    runner = CliRunner(env={"HOME": str(tmp_path),
                            "CELLCTL_STATE_DIR": str(tmp_path / "state")})
    done = runner.invoke(main, ["ironic", "owners", "--service-config", "bm-1"])
    assert done.exit_code == 1 and "HOST=FILE" in done.stderr
    bad = write(tmp_path, "bad.conf", "[ironic]\nshard = a b\n")
    done = runner.invoke(main, ["ironic", "owners", "--service-config", f"bm-1={bad}"])
    assert done.exit_code == 1 and "bad.conf" in done.stderr
    assert "Traceback" not in done.stderr


def test_filters_an_older_api_cannot_take_are_dropped_as_nova_drops_them():
    both = settings_of("a", conductor_group="g1", shard="s1")
    assert Filter.of(both).kwargs() == {"conductor_group": "g1", "shard": "s1"}
    assert Filter.of(both, shards=False).kwargs() == {"conductor_group": "g1"}
    # the conductor group is tried first: without 1.46 the shard is never asked
    assert Filter.of(both, groups=False).kwargs() == {}
    assert Filter.of(settings_of("a", shard="s1"), groups=False).kwargs() == {"shard": "s1"}
    # and without 1.46 the ring is not limited to peer_list
    grouped = settings_of("bm-1", conductor_group="g", peer_list=["bm-1"])
    assert ring_members(grouped, PEERS, api_has_groups=False) == {"bm-1", "bm-2"}
