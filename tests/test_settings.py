"""Settings precedence (flag > environment > config files > embedded default) and `config`."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from cellctl.cli import main
from cellctl.errors import ConfigError
from cellctl.liveness.options import down_seconds
from cellctl.settings import resolve

NOVA_CONF = textwrap.dedent("""\
    [DEFAULT]
    transport_url = rabbit://nova:mqsecret@ctl:5672/
    service_down_time = 90
    debug = True

    [api_database]
    connection = mysql+pymysql://nova:apisecret@ctl/nova_api?charset=utf8

    [database]
    connection = mysql+pymysql://nova:dbsecret@ctl/nova?charset=utf8
    max_retries = -1
""")


@pytest.fixture
def nova_conf(tmp_path):
    path = tmp_path / "nova.conf"
    path.write_text(NOVA_CONF)
    return str(path)


def test_embedded_defaults_without_config(tmp_path):
    settings = resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path / "state")})
    assert settings.api_database_connection.value == f"sqlite:///{tmp_path}/state/api.sqlite"
    assert settings.database_connection.value == f"sqlite:///{tmp_path}/state/cell1.sqlite"
    assert settings.transport_url.value == "memory:///"
    assert down_seconds(settings) == 60
    assert all(s.source == "embedded default" for s in settings.all()[:3])
    # Nova's own default, whether or not a configuration file is read
    assert settings.service_down_time.source == "default"
    assert (tmp_path / "state").is_dir()


def test_nova_conf_is_read_as_is(nova_conf, tmp_path):
    settings = resolve(config_files=[nova_conf], environ={"CELLCTL_STATE_DIR": str(tmp_path)})
    assert settings.api_database_connection.value == \
        "mysql+pymysql://nova:apisecret@ctl/nova_api?charset=utf8"
    assert settings.database_connection.value == \
        "mysql+pymysql://nova:dbsecret@ctl/nova?charset=utf8"
    assert settings.transport_url.value == "rabbit://nova:mqsecret@ctl:5672/"
    assert down_seconds(settings) == 90
    assert settings.transport_url.source == f"{nova_conf} [DEFAULT] transport_url"


def test_precedence_flag_env_file(nova_conf, tmp_path):
    environ = {"CELLCTL_STATE_DIR": str(tmp_path),
               "CELLCTL_API_DATABASE_CONNECTION": "sqlite:///env.sqlite",
               "CELLCTL_TRANSPORT_URL": "memory:///"}
    settings = resolve(config_files=[nova_conf], environ=environ,
                       api_database_connection="sqlite:///flag.sqlite", from_cli=True)
    assert settings.api_database_connection.value == "sqlite:///flag.sqlite"
    assert settings.api_database_connection.source == "--api-database-connection"
    # a Python caller is not told of flags
    from_python = resolve(config_files=[nova_conf], environ=environ,
                          api_database_connection="sqlite:///flag.sqlite")
    assert from_python.api_database_connection.source == "keyword api_database_connection"
    assert settings.transport_url.value == "memory:///"
    assert settings.transport_url.source == "CELLCTL_TRANSPORT_URL"
    assert settings.database_connection.source.endswith("[database] connection")


def test_later_config_files_win(nova_conf, tmp_path):
    override = tmp_path / "override.conf"
    override.write_text("[database]\nconnection = sqlite:////tmp/override.sqlite\n")
    settings = resolve(config_files=[nova_conf, str(override)],
                       environ={"CELLCTL_STATE_DIR": str(tmp_path)})
    assert settings.database_connection.value == "sqlite:////tmp/override.sqlite"
    assert settings.transport_url.value == "rabbit://nova:mqsecret@ctl:5672/"


def test_config_file_without_a_value_leaves_it_unset(tmp_path):
    partial = tmp_path / "partial.conf"
    partial.write_text("[api_database]\nconnection = sqlite:////tmp/api.sqlite\n")
    settings = resolve(config_files=[str(partial)], environ={"CELLCTL_STATE_DIR": str(tmp_path)})
    assert settings.database_connection.value is None
    assert settings.transport_url.value is None
    assert settings.transport_url.source == "not set"
    assert down_seconds(settings) == 60


def test_empty_environment_variable_unsets(tmp_path):
    settings = resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path), "CELLCTL_TRANSPORT_URL": ""})
    assert settings.transport_url.value is None


@pytest.mark.parametrize(
    ("content", "message"),
    [("no section header\n", "Cannot parse config file"),
     ("[DEFAULT]\nservice_down_time = soon\n", "service_down_time")],
)
def test_bad_config_files(tmp_path, content, message):
    path = tmp_path / "bad.conf"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        resolve(config_files=[str(path)], environ={"CELLCTL_STATE_DIR": str(tmp_path)})


def test_missing_config_file_is_one_line_exit_1(tmp_path):
    runner = CliRunner(env={"CELLCTL_STATE_DIR": str(tmp_path)})
    result = runner.invoke(main, ["--config-file", str(tmp_path / "nope.conf"), "list_cells"])
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: Cannot read config file")
    assert result.stderr.count("\n") == 1


def test_config_command_masks_and_names_sources(nova_conf, tmp_path):
    runner = CliRunner(env={"CELLCTL_STATE_DIR": str(tmp_path)})
    result = runner.invoke(main, ["--config-file", nova_conf, "config"])
    assert result.exit_code == 0
    for secret in ("apisecret", "dbsecret", "mqsecret"):
        assert secret not in result.output
    assert "mysql+pymysql://nova:****@ctl/nova_api?charset=utf8" in result.stdout
    as_json = json.loads(
        runner.invoke(main, ["--config-file", nova_conf, "config", "--format", "json"]).stdout)
    by_name = {row["setting"]: row for row in as_json}
    assert by_name["transport_url"] == {
        "setting": "transport_url", "value": "rabbit://nova:****@ctl:5672/",
        "source": f"{nova_conf} [DEFAULT] transport_url"}
    assert by_name["service_down_time"]["value"] == "90"


def test_every_setting_is_a_keyword_argument(tmp_path):
    """A Python caller builds Settings without a CLI; values are typed, sources named."""
    settings = resolve(
        environ={"CELLCTL_STATE_DIR": str(tmp_path)}, default_config_files=[],
        default_config_dirs=[],
        api_database_connection="sqlite:///api.sqlite", database_connection="sqlite:///c.sqlite",
        transport_url="rabbit://u:p@mq//", service_down_time=0, report_interval=4,
        servicegroup_driver="mc", cache_enabled=True, cache_backend="dogpile.cache.pymemcache",
        cache_memcache_servers=["127.0.0.1:11211", "127.0.0.2:11211"],
        cache_expiration_time=30, cache_backend_expiration_time=90,
        zookeeper_address="127.0.0.1:2181", zookeeper_sg_prefix="/sg",
        zookeeper_recv_timeout=1000)
    values = {s.name: s.value for s in settings.all()}
    assert values == {
        "api_database_connection": "sqlite:///api.sqlite",
        "database_connection": "sqlite:///c.sqlite", "transport_url": "rabbit://u:p@mq//",
        "service_down_time": 0, "report_interval": 4, "servicegroup_driver": "mc",
        "cache_enabled": True, "cache_backend": "dogpile.cache.pymemcache",
        "cache_memcache_servers": ["127.0.0.1:11211", "127.0.0.2:11211"],
        "cache_expiration_time": 30, "cache_backend_expiration_time": 90,
        "zookeeper_address": "127.0.0.1:2181", "zookeeper_sg_prefix": "/sg",
        "zookeeper_recv_timeout": 1000, "state_dir": str(tmp_path)}
    assert settings.servicegroup_driver.source == "keyword servicegroup_driver"
    assert down_seconds(settings) == 10  # Nova: 0 <= report_interval -> int(2.5 * 4)
    assert settings.read == () and settings.embedded_in_use == []
    with pytest.raises(ConfigError, match="servicegroup_driver from keyword"):
        resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path)}, servicegroup_driver="redis")
    with pytest.raises(ConfigError, match="cache_expiration_time"):
        resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path)}, cache_expiration_time=0)


@pytest.mark.parametrize(("down", "interval", "seconds"),
                         [(60, 10, 60), (10, 10, 25), (0, 10, 25), (-5, 10, 25), (11, 10, 11),
                          (20, 20, 50), (30, 20, 30)])
def test_service_down_seconds_as_nova_computes_it(tmp_path, down, interval, seconds):
    conf = tmp_path / "nova.conf"
    conf.write_text(f"[DEFAULT]\nservice_down_time = {down}\nreport_interval = {interval}\n")
    settings = resolve(config_files=[str(conf)], environ={"CELLCTL_STATE_DIR": str(tmp_path)})
    assert settings.service_down_time.value == down
    assert down_seconds(settings) == seconds


def test_default_config_files_replace_the_search(tmp_path, nova_conf):
    settings = resolve(default_config_files=[nova_conf], default_config_dirs=[],
                       environ={"CELLCTL_STATE_DIR": str(tmp_path)})
    assert settings.config_files == (nova_conf,)
    assert settings.transport_url.source == f"{nova_conf} [DEFAULT] transport_url"
    # a --config-file replaces the default files
    other = tmp_path / "other.conf"
    other.write_text("[DEFAULT]\n")
    replaced = resolve(config_files=[str(other)], default_config_files=[nova_conf],
                       default_config_dirs=[], environ={"CELLCTL_STATE_DIR": str(tmp_path)})
    assert replaced.config_files == (str(other),)
    assert replaced.transport_url.value is None


def test_config_without_any_file_says_embedded_defaults_apply(tmp_path):
    runner = CliRunner(env={"CELLCTL_STATE_DIR": str(tmp_path), "HOME": str(tmp_path)})
    rows = json.loads(runner.invoke(main, ["config", "--format", "json"]).stdout)
    assert rows[0] == {"setting": "config_file", "value": None,
                       "source": "none given or found (nova-manage's default search): "
                                 "embedded defaults apply"}
    by_name = {row["setting"]: row for row in rows}
    assert by_name["transport_url"] == {"setting": "transport_url", "value": "memory:///",
                                        "source": "embedded default"}


@pytest.mark.parametrize(
    ("keyword", "url", "shown"),
    [("api_database_connection", "mysql+pymysql://root:pw@127.0.0.1:abc/nc_api", "port 'abc'"),
     ("database_connection", "mysql+pymysql//root:pw@127.0.0.1/nc", "mysql+pymysql//root:****@"),
     ("database_connection", "mysql+nodriver://root@127.0.0.1/nc", "'mysql+nodriver'"),
     ("api_database_connection", "mysql+pymysql://root@h/nc?charset", "'charset'"),
     ("transport_url", "rabbit://guest:pw@h:abc/", "port 'abc'")],
)
def test_resolve_rejects_malformed_urls_as_config_errors(tmp_path, keyword, url, shown):
    """Issue 22: validated once, where settings resolve: a ConfigError naming the source,
    never a ValueError at first use."""
    import cellctl

    with pytest.raises(cellctl.ConfigError) as raised:
        cellctl.resolve(default_config_files=[], default_config_dirs=[],
                        environ={"CELLCTL_STATE_DIR": str(tmp_path)}, **{keyword: url})
    message = str(raised.value)
    assert shown in message and f"keyword {keyword}" in message
    assert ":pw@" not in message and "\n" not in message


def test_every_setting_is_declared_once_in_the_table(tmp_path):
    """Settings' fields, resolve()'s keywords and `cellctl config`'s rows follow SPECS."""
    import dataclasses
    import inspect

    from cellctl.settings import SPECS, Settings

    names = [spec.name for spec in SPECS]
    assert len(set(names)) == len(names)
    fields = [f.name for f in dataclasses.fields(Settings)]
    assert fields == [*names, "state_dir_from_env", "read", "from_cli"]
    keywords = [name for name, param in inspect.signature(resolve).parameters.items()
                if param.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keywords[keywords.index(names[0]):] == names
    assert len({(spec.group, spec.option) for spec in SPECS}) == len(SPECS)
    assert len({spec.env for spec in SPECS if spec.env}) == len([s for s in SPECS if s.env])
    runner = CliRunner(env={"CELLCTL_STATE_DIR": str(tmp_path)})
    rows = json.loads(runner.invoke(main, ["config", "--format", "json"]).stdout)
    assert [row["setting"] for row in rows if row["setting"] in names] == names
