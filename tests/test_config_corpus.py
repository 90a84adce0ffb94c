"""The corpus (tests/config_corpus.py) resolved by cellctl and, in the same test, by a
plain oslo.config ConfigOpts as the reference; then all of it by Nova 34's own CONF.

The reference registers the options itself, as Nova 34 and the oslo libraries
define them (oslo.messaging's transport_url default included), and reads the
values the way Nova's code does (``conf.database.connection``): it shares no code
with cellctl/settings.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from config_corpus import CORPUS, Case

from cellctl.errors import ConfigError
from cellctl.settings import nova_pybasedir, resolve

# setting name -> (group, option) as Nova names them
OPTIONS = {
    "api_database_connection": ("api_database", "connection"),
    "database_connection": ("database", "connection"),
    "transport_url": ("DEFAULT", "transport_url"),
    "service_down_time": ("DEFAULT", "service_down_time"),
    "report_interval": ("DEFAULT", "report_interval"),
    "servicegroup_driver": ("DEFAULT", "servicegroup_driver"),
    "cache_enabled": ("cache", "enabled"),
    "cache_backend": ("cache", "backend"),
    "cache_memcache_servers": ("cache", "memcache_servers"),
    "cache_expiration_time": ("cache", "expiration_time"),
    "cache_backend_expiration_time": ("cache", "backend_expiration_time"),
    "zookeeper_address": ("zookeeper", "address"),
    "zookeeper_sg_prefix": ("zookeeper", "sg_prefix"),
    "zookeeper_recv_timeout": ("zookeeper", "recv_timeout"),
}
NOVA_OPTIONS = {k: v for k, v in OPTIONS.items() if not k.startswith("zookeeper")}


def write_case(case: Case, root: Path) -> None:
    (root / "home").mkdir(parents=True, exist_ok=True)
    for relative, content in case.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def case_args(case: Case, root: Path) -> list[tuple[str, str]]:
    return [(kind, path if path.startswith("~") else str(root / path))
            for kind, path in case.args]


def _my_ipv4() -> str:
    # as oslo_utils.netutils.get_my_ipv4 (the first way; no traffic is sent)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.0", 80))
        return str(probe.getsockname()[0])


def reference(args: list[tuple[str, str]]) -> dict[str, Any]:
    """What a plain oslo.config ConfigOpts with Nova's option definitions reads."""
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="api_database")
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="database")
    conf.register_opts([
        cfg.StrOpt("transport_url", default="rabbit://", secret=True),
        cfg.IntOpt("service_down_time", default=60),
        cfg.IntOpt("report_interval", default=10),
        cfg.StrOpt("servicegroup_driver", default="db", choices=["db", "mc", "zk"]),
        cfg.StrOpt("pybasedir", default=nova_pybasedir()),
        cfg.StrOpt("state_path", default="$pybasedir"),
        cfg.StrOpt("my_ip", default=_my_ipv4()),
        cfg.HostDomainOpt("host", default=socket.gethostname()),
    ])
    conf.register_opts([
        cfg.BoolOpt("enabled", default=False),
        cfg.StrOpt("backend", default="dogpile.cache.null"),
        cfg.ListOpt("memcache_servers", default=["localhost:11211"]),
        cfg.IntOpt("expiration_time", default=600, min=1),
        cfg.IntOpt("backend_expiration_time", min=1),
    ], group="cache")
    conf.register_opts([
        cfg.StrOpt("address"), cfg.StrOpt("sg_prefix", default="/servicegroups"),
        cfg.IntOpt("recv_timeout", default=4000),
    ], group="zookeeper")
    argv: list[str] = []
    for kind, path in args:
        argv += [f"--config-{kind}", path]
    conf(argv, project="nova", prog="nova-manage")
    values: dict[str, Any] = {}
    for name, (group, option) in OPTIONS.items():
        values[name] = conf[option] if group == "DEFAULT" else conf[group][option]
        location = conf.get_location(option) if name == "transport_url" else None
        if location is not None and location.location == cfg.Locations.opt_default:
            values[name] = None  # cellctl's one documented difference: no rabbit:// default
    return values


@pytest.fixture
def case_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HOME is the case's own, so oslo.config's default search finds only its files."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CELLCTL_STATE_DIR", str(tmp_path / "state"))
    for name in list(os.environ):
        if name.startswith(("OS_", "CELLCTL_")) and name != "CELLCTL_STATE_DIR":
            monkeypatch.delenv(name)
    return tmp_path


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_corpus(case: Case, case_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = case_env
    write_case(case, root)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    args = case_args(case, root)
    if case.error:
        with pytest.raises(Exception):  # noqa: B017 - the reference rejects it in its own way
            reference(args)
        with pytest.raises(ConfigError) as rejected:
            resolve(config_paths=args)  # type: ignore[arg-type]
        message = str(rejected.value)
        assert case.error in message
        assert case.error_file is not None and str(root / case.error_file) in message
        assert "\n" not in message
        return
    expected = reference(args)
    settings = resolve(config_paths=args)  # type: ignore[arg-type]
    ours = {name: getattr(settings, name).value for name in OPTIONS}
    assert ours == expected
    for name, value in case.expect.items():
        assert ours[name] == value, name
    for name, source in case.sources.items():
        if source.startswith("OS_") or source == "default":
            assert getattr(settings, name).source == source
        else:
            path, section = source.split(" ", 1)
            assert getattr(settings, name).source == f"{root / path} {section}"
    assert settings.read, "every case reads some file"
    assert not settings.embedded_in_use


def test_my_ip_is_novas_default(case_env: Path) -> None:
    (case := next(c for c in CORPUS if c.id == "my-ip-default"))
    write_case(case, case_env)
    settings = resolve(config_paths=[("file", str(case_env / "nova.conf"))])
    assert settings.transport_url.value == f"rabbit://u:p@{_my_ipv4()}:5672/"


def test_host_and_state_path_defaults(case_env: Path) -> None:
    conf = case_env / "nova.conf"
    conf.write_text("[DEFAULT]\ntransport_url = rabbit://u:p@$host:5672/\n"
                    "[database]\nconnection = sqlite:///$state_path/nova.sqlite\n")
    settings = resolve(config_files=[str(conf)])
    assert settings.transport_url.value == f"rabbit://u:p@{socket.gethostname()}:5672/"
    # Nova's state_path default: $pybasedir, the directory the nova package is in
    assert settings.database_connection.value == f"sqlite:///{nova_pybasedir()}/nova.sqlite"


def test_environ_mapping_is_the_os_source(case_env: Path) -> None:
    """A Python caller's environ holds the OS_* variables too, not os.environ."""
    conf = case_env / "nova.conf"
    conf.write_text("[database]\nconnection = sqlite:////file\n")
    environ = {"CELLCTL_STATE_DIR": str(case_env / "state"),
               "OS_DATABASE__CONNECTION": "sqlite:////from-mapping"}
    settings = resolve(config_files=[str(conf)], environ=environ)
    assert settings.database_connection.value == "sqlite:////from-mapping"
    assert settings.database_connection.source == "OS_DATABASE__CONNECTION"
    assert resolve(config_files=[str(conf)], environ={}).database_connection.value == \
        "sqlite:////file"


_NOVA_READER = textwrap.dedent("""\
    import json, os, sys, warnings
    warnings.simplefilter("ignore")
    import nova.cmd.manage  # noqa: F401 - registers every option nova-manage has
    import nova.conf
    from nova import config
    from oslo_messaging import transport
    CONF = nova.conf.CONF
    OPTIONS = json.loads(sys.argv[1])
    sys.argv = ["/usr/bin/nova-manage"]  # oslo.config's default program name comes from here
    results = {}
    for case in json.load(sys.stdin):
        os.environ["HOME"] = case["home"]
        for name in [n for n in os.environ if n.startswith("OS_")]:
            del os.environ[name]
        os.environ.update(case["env"])
        CONF.reset()
        CONF.clear()
        try:
            config.parse_args(["nova-manage", *case["argv"]], configure_db=False,
                              init_rpc=False)
            # what rpc.init -> oslo_messaging.get_transport registers
            CONF.register_opts(transport._transport_opts)
            values = {}
            for name, (group, option) in OPTIONS.items():
                values[name] = CONF[option] if group == "DEFAULT" else CONF[group][option]
            results[case["id"]] = {"values": values}
        except BaseException as exc:  # noqa - SystemExit included
            results[case["id"]] = {"error": type(exc).__name__ + ": " + str(exc)}
    print(json.dumps(results))
""")


def test_corpus_as_nova_34_reads_it(nova_venv_path: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case once more, read by Nova 34's own CONF (nova.config.parse_args, as
    nova-manage calls it) in the nova virtualenv: the same values, the same rejections."""
    for name in list(os.environ):
        if name.startswith(("OS_", "CELLCTL_")):
            monkeypatch.delenv(name)
    cases = [c for c in CORPUS if not c.nova_differs]
    batch = []
    ours: dict[str, Any] = {}
    for case in cases:
        root = tmp_path / case.id
        write_case(case, root)
        args = case_args(case, root)
        monkeypatch.setenv("HOME", str(root / "home"))
        monkeypatch.setenv("CELLCTL_STATE_DIR", str(root / "state"))
        for name, value in case.env.items():
            monkeypatch.setenv(name, value)
        try:
            settings = resolve(config_paths=args)  # type: ignore[arg-type]
            ours[case.id] = {n: getattr(settings, n).value for n in NOVA_OPTIONS}
        except ConfigError as exc:
            ours[case.id] = f"error: {exc}"
        for name in case.env:
            monkeypatch.delenv(name)
        argv = [a for kind, path in args for a in (f"--config-{kind}", path)]
        batch.append({"id": case.id, "home": str(root / "home"), "env": case.env,
                      "argv": argv})
    done = subprocess.run(
        [str(nova_venv_path / "bin" / "python"), "-c", _NOVA_READER, json.dumps(NOVA_OPTIONS)],
        input=json.dumps(batch), capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("CELLCTL_")})
    assert done.returncode == 0, done.stderr[-3000:]
    nova = json.loads(done.stdout.strip().splitlines()[-1])
    for case in cases:
        theirs = nova[case.id]
        if case.error:
            assert "error" in theirs, (case.id, theirs)
            assert str(ours[case.id]).startswith("error: "), (case.id, ours[case.id])
            continue
        assert "values" in theirs, (case.id, theirs)
        values = theirs["values"]
        if values["transport_url"] == "rabbit://" and ours[case.id]["transport_url"] is None:
            values["transport_url"] = None  # oslo.messaging's default; cellctl has none
        assert ours[case.id] == values, case.id
