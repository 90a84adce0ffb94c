"""Resolve every setting in one place: flag > ``CELLCTL_*`` > configuration > embedded default.

"Configuration" is read exactly as nova-manage reads it, by oslo.config itself
(imported here, lazily, only when settings are resolved): a ``ConfigOpts`` for
the project ``nova`` and the program ``nova-manage``, given the
``--config-file``/``--config-dir`` arguments in their command-line order, with
oslo.config's default files and directories when they are not given. Only the
options cellctl reads are registered, with Nova's names, groups, types and
defaults, plus the ones values commonly substitute (``$state_path``,
``$pybasedir``, ``$my_ip``, ``$host``). So ``$name``/``${name}`` substitution
and its escapes (``$$``, ``\\$``), quotes, section names, ignored keys, parse
errors, ``OS_<GROUP>__<OPT>`` environment values and ``~`` expansion are
oslo.config's own. doc/configuration.rst has the details.

The embedded defaults (SQLite files in the state directory, the in-memory
kombu transport) apply only when no configuration file is given or found: an
operator who points cellctl at a nova.conf must see a missing value reported
as missing, not silently replaced by a local SQLite file.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from cellctl.errors import ConfigError

if TYPE_CHECKING:
    from oslo_config import cfg

T = TypeVar("T")

ENV_PREFIX = "CELLCTL_"
DEFAULT_SERVICE_DOWN_TIME = 60
DEFAULT_REPORT_INTERVAL = 10
DEFAULT_TRANSPORT_URL = "memory:///"
EMBEDDED = "embedded default"
DEFAULT = "default"  # the option's own default, as Nova (or oslo.cache) defines it
NOT_SET = "not set"
# Whose defaults oslo.config searches for: nova-manage's (project nova, program nova-manage).
NOVA_PROJECT = "nova"
NOVA_PROG = "nova-manage"
SERVICEGROUP_DRIVERS = ("db", "mc", "zk")  # zk: Nova's old driver (gone since 13.0.0)
# oslo.cache 4.3.0's [cache] backend choices, as Nova 34 has them.
CACHE_BACKENDS = (
    "oslo_cache.memcache_pool", "oslo_cache.dict", "oslo_cache.etcd3gw",
    "dogpile.cache.pymemcache", "dogpile.cache.memcached", "dogpile.cache.pylibmc",
    "dogpile.cache.bmemcached", "dogpile.cache.dbm", "dogpile.cache.redis",
    "dogpile.cache.redis_sentinel", "dogpile.cache.memory", "dogpile.cache.memory_pickle",
    "dogpile.cache.null",
)

ConfigKind = Literal["file", "dir"]
ConfigPath = tuple[ConfigKind, str]  # ("file", "/etc/nova/nova.conf") or ("dir", "...conf.d")


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    value: T | None
    # e.g. "--transport-url", "CELLCTL_TRANSPORT_URL", "/etc/nova/nova.conf [DEFAULT]
    # transport_url", "OS_DEFAULT__TRANSPORT_URL", "default", "embedded default", "not set"
    source: str

    @property
    def is_set(self) -> bool:
        return self.value is not None

    @property
    def is_embedded_default(self) -> bool:
        return self.source == EMBEDDED


@dataclass(frozen=True)
class ConfigRead:
    """One configuration file or directory read, in the order oslo.config read it."""

    kind: ConfigKind
    path: str  # absolute
    # "--config-file", "--config-dir", "default search", or "--config-dir DIR" / "DIR"
    # (default search) for a file read from a directory
    origin: str


OptKind = Literal["str", "int", "bool", "list"]


@dataclass(frozen=True)
class SettingSpec:
    """One setting, declared once: ``Settings`` has a field and ``resolve()`` a keyword
    of this name (tests/test_settings.py checks both), ``cellctl config`` a row."""

    name: str  # Settings attribute and resolve() keyword
    group: str  # oslo.config group; "DEFAULT" for options without one
    option: str  # the option's name in that group
    kind: OptKind  # its oslo.config type (StrOpt, IntOpt, BoolOpt, ListOpt)
    default: Any = None  # the option's own default, as Nova (or oslo.cache) defines it
    env: str | None = None  # CELLCTL_ variable, without the prefix
    flag: str | None = None  # the CLI flag that sets it, for the sources report
    # cellctl's embedded default (from the state directory) when no configuration is found
    embedded: Callable[[Path], str] | None = None
    secret: bool = False
    choices: tuple[str, ...] | None = None
    min: int | None = None

    def opt(self, cfg: Any) -> cfg.Opt:
        """The oslo.config option, registered as Nova registers it."""
        kwargs: dict[str, Any] = {"default": self.default}
        if self.secret:
            kwargs["secret"] = True
        if self.choices is not None:
            kwargs["choices"] = list(self.choices)
        if self.min is not None:
            kwargs["min"] = self.min
        opt_class = {"str": cfg.StrOpt, "int": cfg.IntOpt, "bool": cfg.BoolOpt,
                     "list": cfg.ListOpt}[self.kind]
        return opt_class(self.option, **kwargs)


# Every setting cellctl reads, each as Nova 34 (oslo.db, oslo.messaging, oslo.cache)
# has it. One deliberate difference: oslo.messaging's ``transport_url`` defaults to
# ``rabbit://`` (a broker on localhost); cellctl has no default for it, so a missing
# transport URL is reported instead of stored in a cell mapping.
SPECS: tuple[SettingSpec, ...] = (
    # nova/conf/database.py
    SettingSpec("api_database_connection", "api_database", "connection", "str", secret=True,
                env="API_DATABASE_CONNECTION", flag="--api-database-connection",
                embedded=lambda state: _sqlite_url(state / "api.sqlite")),
    # oslo.db options
    SettingSpec("database_connection", "database", "connection", "str", secret=True,
                env="DATABASE_CONNECTION", flag="--database_connection",
                embedded=lambda state: _sqlite_url(state / "cell1.sqlite")),
    # oslo.messaging (see above)
    SettingSpec("transport_url", "DEFAULT", "transport_url", "str", secret=True,
                env="TRANSPORT_URL", flag="--transport-url",
                embedded=lambda state: DEFAULT_TRANSPORT_URL),
    # nova/conf/service.py; 0 is valid (cellctl.liveness.options.down_seconds)
    SettingSpec("service_down_time", "DEFAULT", "service_down_time", "int",
                DEFAULT_SERVICE_DOWN_TIME, env="SERVICE_DOWN_TIME"),
    SettingSpec("report_interval", "DEFAULT", "report_interval", "int",
                DEFAULT_REPORT_INTERVAL),
    # nova/conf/servicegroup.py has db and mc; cellctl also reads Nova's old zk
    SettingSpec("servicegroup_driver", "DEFAULT", "servicegroup_driver", "str", "db",
                env="SERVICEGROUP_DRIVER", choices=SERVICEGROUP_DRIVERS),
    # oslo.cache 4.3.0 (oslo_cache/_opts.py)
    SettingSpec("cache_enabled", "cache", "enabled", "bool", False),
    SettingSpec("cache_backend", "cache", "backend", "str", "dogpile.cache.null",
                choices=CACHE_BACKENDS),
    SettingSpec("cache_memcache_servers", "cache", "memcache_servers", "list",
                ["localhost:11211"]),
    SettingSpec("cache_expiration_time", "cache", "expiration_time", "int", 600, min=1),
    SettingSpec("cache_backend_expiration_time", "cache", "backend_expiration_time", "int",
                min=1),
    # the last nova/servicegroup/drivers/zk.py (removed in Nova 13.0.0)
    SettingSpec("zookeeper_address", "zookeeper", "address", "str"),
    SettingSpec("zookeeper_sg_prefix", "zookeeper", "sg_prefix", "str", "/servicegroups"),
    SettingSpec("zookeeper_recv_timeout", "zookeeper", "recv_timeout", "int", 4000),
)


def _nova_options(cfg: Any) -> list[tuple[str, cfg.Opt]]:
    """The options registered: every setting's, and ``state_path`` (nova/conf/paths.py),
    which values commonly substitute."""
    return [(spec.group, spec.opt(cfg)) for spec in SPECS] + [
        ("DEFAULT", cfg.StrOpt("state_path", default="$pybasedir"))]


# [DEFAULT] options that values substitute, registered only when a value refers
# to one, so that their defaults (one of which asks the routing table) are
# computed only then. Nova registers them with these defaults.
def _lazy_options(cfg: Any) -> dict[str, Callable[[], cfg.Opt]]:
    return {
        # nova/conf/paths.py: the directory the nova package is installed in
        "pybasedir": lambda: cfg.StrOpt("pybasedir", default=nova_pybasedir()),
        # nova/conf/netconf.py
        "my_ip": lambda: cfg.StrOpt("my_ip", default=my_ipv4()),
        "host": lambda: cfg.HostDomainOpt("host", default=socket.gethostname()),
    }


@dataclass(frozen=True)
class Settings:
    """Every resolved setting: one field per SPECS entry, in its order (tests check it)."""

    api_database_connection: Setting[str]
    database_connection: Setting[str]
    transport_url: Setting[str]
    service_down_time: Setting[int]
    report_interval: Setting[int]
    servicegroup_driver: Setting[str]
    cache_enabled: Setting[bool]
    cache_backend: Setting[str]
    cache_memcache_servers: Setting[list[str]]
    cache_expiration_time: Setting[int]
    cache_backend_expiration_time: Setting[int]
    zookeeper_address: Setting[str]
    zookeeper_sg_prefix: Setting[str]
    zookeeper_recv_timeout: Setting[int]
    # CELLCTL_STATE_DIR as resolve() found it; None: unset (``state_dir`` is then the
    # platform's user data directory, looked up only when asked: platformdirs is not
    # imported by commands that never use the embedded databases).
    state_dir_from_env: str | None = None
    # Every configuration file and directory read, in order (empty: none given or found).
    read: tuple[ConfigRead, ...] = ()
    # Resolved for the command line: messages then name arguments by their flags.
    from_cli: bool = False

    @functools.cached_property
    def state_dir(self) -> Setting[str]:
        """Where cellctl keeps its embedded databases."""
        return _state_dir(self.state_dir_from_env)

    def argument(self, name: str, flag: str) -> str:
        """How the caller passes ``name``: ``flag`` on the command line, else the keyword."""
        return flag if self.from_cli else f"{name}="

    @property
    def config_files(self) -> tuple[str, ...]:
        """The configuration files read, in order: later ones win."""
        return tuple(r.path for r in self.read if r.kind == "file")

    @property
    def config_dirs(self) -> tuple[str, ...]:
        return tuple(r.path for r in self.read if r.kind == "dir")

    @property
    def embedded_in_use(self) -> list[Setting[str]]:
        """The settings that are cellctl's embedded defaults (no configuration found)."""
        return [s for s in self.settings() if s.is_embedded_default]

    @property
    def embedded_note(self) -> str | None:
        """What the CLI tells an operator before a command writes to embedded defaults."""
        used = self.embedded_in_use
        if not used:
            return None
        return ("No configuration file given or found (see `cellctl config`): using cellctl's "
                f"embedded default for {', '.join(s.name for s in used)} "
                f"(state directory {self.state_dir.value})")

    def settings(self) -> list[Setting[Any]]:
        """The settings of SPECS, in order."""
        return [getattr(self, spec.name) for spec in SPECS]

    def all(self) -> list[Setting[Any]]:
        """The settings of SPECS, then the state directory."""
        return [*self.settings(), self.state_dir]

    @functools.cached_property
    def embedded_urls(self) -> frozenset[str]:
        """Database URLs that are cellctl's own defaults, safe to create and migrate."""
        return frozenset(
            s.value
            for s in (self.api_database_connection, self.database_connection)
            if s.is_embedded_default and s.value
        ) | ({_cell0_default(self)} if self.database_connection.is_embedded_default else set())


def _cell0_default(settings: Settings) -> str:
    from cellctl.urls import derive_cell0_url

    return derive_cell0_url(settings.database_connection.value)


def resolve(
    *,
    config_files: Sequence[str] = (),
    config_dirs: Sequence[str] = (),
    config_paths: Sequence[ConfigPath] | None = None,
    default_config_files: Sequence[str] | None = None,
    default_config_dirs: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    from_cli: bool = False,
    embedded: bool = True,
    api_database_connection: str | None = None,
    database_connection: str | None = None,
    transport_url: str | None = None,
    service_down_time: int | None = None,
    report_interval: int | None = None,
    servicegroup_driver: str | None = None,
    cache_enabled: bool | None = None,
    cache_backend: str | None = None,
    cache_memcache_servers: Sequence[str] | None = None,
    cache_expiration_time: int | None = None,
    cache_backend_expiration_time: int | None = None,
    zookeeper_address: str | None = None,
    zookeeper_sg_prefix: str | None = None,
    zookeeper_recv_timeout: int | None = None,
) -> Settings:
    """Resolve all settings; raises ConfigError (one line, masked) for a file oslo.config
    rejects, cannot read or decode, for a value of the wrong type and for a malformed
    database or transport URL (bad port, missing ``//``, unknown driver, bad query).

    ``config_files`` then ``config_dirs`` are read as ``--config-file`` and
    ``--config-dir``; ``config_paths`` gives both in one sequence instead, in
    command-line order (the CLI's way). Without files (or directories) the
    default ones are oslo.config's for nova-manage: ``default_config_files``
    and ``default_config_dirs`` replace that search (``[]``: none). ``environ``
    (default ``os.environ``) holds the ``CELLCTL_*`` and ``OS_<GROUP>__<OPT>``
    variables. Every other keyword sets that setting, above everything else;
    ``from_cli`` names such values by their flag in ``cellctl config``. ``embedded``
    False: no embedded default, a setting nothing gives is not set (nova-manage's
    reading, which has no databases of its own).
    """
    keywords = locals()
    given: dict[str, Any] = {spec.name: keywords[spec.name] for spec in SPECS}
    environ = os.environ if environ is None else environ
    paths: Sequence[ConfigPath] = config_paths if config_paths is not None else (
        [("file", f) for f in config_files] + [("dir", d) for d in config_dirs])
    config = _Configuration(paths, default_config_files, default_config_dirs, environ)
    state_dir_from_env = environ.get(ENV_PREFIX + "STATE_DIR") or None
    state_dir = functools.cache(lambda: _state_dir(state_dir_from_env).value or "")
    resolved: dict[str, Setting[Any]] = {}
    for spec in SPECS:
        value = given[spec.name]
        if value is not None and value != "":
            label = spec.flag if from_cli and spec.flag else f"keyword {spec.name}"
            resolved[spec.name] = Setting(spec.name, config.convert(spec, value, label), label)
        elif spec.env and ENV_PREFIX + spec.env in environ:
            name = ENV_PREFIX + spec.env
            # An empty variable explicitly unsets the value (and its default).
            raw = environ[name]
            resolved[spec.name] = Setting(spec.name, config.convert(spec, raw, name)
                                          if raw else None, name)
        else:
            setting = config.setting(spec)
            if setting.value is None and spec.embedded and embedded and not config.read:
                setting = Setting(spec.name, spec.embedded(Path(state_dir())), EMBEDDED)
            resolved[spec.name] = setting
    settings = Settings(state_dir_from_env=state_dir_from_env, read=tuple(config.read),
                        from_cli=from_cli, **resolved)
    if any(s.is_embedded_default for s in settings.settings() if s.name.endswith("connection")):
        _ensure_state_dir(Path(state_dir()))
    from cellctl.url_settings import check_urls

    check_urls([(s.value, s.source) for s in (settings.api_database_connection,
                                               settings.database_connection)],
               (settings.transport_url.value, settings.transport_url.source))
    return settings


class _Configuration:
    """oslo.config's view of the deployment's files, as nova-manage would get it."""

    def __init__(self, paths: Sequence[ConfigPath], default_files: Sequence[str] | None,
                 default_dirs: Sequence[str] | None, environ: Mapping[str, str]) -> None:
        from cellctl.lazyload import oslo_config_cfg

        oslo_config_cfg()  # first: netaddr, rfc3986 and stevedore load only if used
        from oslo_config import cfg

        self._cfg = cfg
        if default_files is None:
            default_files = cfg.find_config_files(NOVA_PROJECT, NOVA_PROG)
        if default_dirs is None:
            default_dirs = cfg.find_config_dirs(NOVA_PROJECT, NOVA_PROG)
        self.read = _files_read(paths, default_files, default_dirs)
        self._sections: dict[str, dict[str, dict[str, list[str]]]] = {}
        self._lazy = _lazy_options(cfg)
        conf = cfg.ConfigOpts()
        self._opts: dict[tuple[str, str], cfg.Opt] = {}
        for group, opt in _nova_options(cfg):
            conf.register_opt(opt, group=None if group == "DEFAULT" else group)
            self._opts[(group, opt.name)] = opt
        if environ is not os.environ:
            _read_environment_from(conf, environ)
        # "--config-file=PATH": a path that starts with "-" stays a path.
        args = [f"--config-{kind}={path}" for kind, path in paths]
        try:
            conf(args, project=NOVA_PROJECT, prog=NOVA_PROG, default_config_files=list(
                default_files), default_config_dirs=list(default_dirs), use_env=True)
        except cfg.ConfigFileParseError as exc:
            raise ConfigError(_parse_error(exc)) from None
        except cfg.ConfigFilesNotFoundError as exc:
            raise ConfigError(f"Cannot read config file {', '.join(exc.config_files)}: "
                              "No such file or directory") from None
        except cfg.ConfigFilesPermissionDeniedError as exc:
            raise ConfigError(f"Cannot read config file {', '.join(exc.config_files)}: "
                              "Permission denied") from None
        except cfg.ConfigDirNotFoundError as exc:
            raise ConfigError(f"Cannot read config directory {exc.config_dir}: "
                              "No such file or directory") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(self._decode_error(exc)) from None
        except OSError as exc:
            raise ConfigError(f"Cannot read config file {exc.filename}: {exc.strerror}") from None
        except cfg.Error as exc:
            raise ConfigError(f"Cannot read the configuration: {exc}") from None
        except SystemExit:  # argparse's way to reject an argument (it has said why)
            raise ConfigError("Cannot read the configuration: invalid --config-file "
                              "or --config-dir") from None
        self._conf = conf

    def setting(self, spec: SettingSpec) -> Setting[Any]:
        """The option's value (substituted and converted by oslo.config) and its source."""
        cfg = self._cfg
        group = None if spec.group == "DEFAULT" else spec.group
        for _ in range(len(self._lazy) + 1):
            try:
                # get_location() first: it raises what went wrong, where reading a
                # [DEFAULT] option by name turns every error into NoSuchOptError.
                location = self._conf.get_location(spec.option, group)
                value = self._conf[spec.group][spec.option] if group else \
                    self._conf[spec.option]
                break
            except cfg.NoSuchOptError as exc:
                if not self._register_lazy(exc.opt_name):
                    raise ConfigError(
                        f"Cannot substitute ${exc.opt_name} in {self._where(spec)}: cellctl "
                        f"knows no option {exc.opt_name} (write $$ for a literal $)") from None
            except ValueError as exc:  # ConfigFileValueError, ConfigSourceValueError
                cause = exc.__context__ if isinstance(exc.__context__, ValueError) else exc
                raise ConfigError(f"Invalid value in {self._where(spec)}: {cause}") from None
            except cfg.Error as exc:
                raise ConfigError(f"Cannot read {self._where(spec)}: {exc}") from None
        if location is None or value is None:
            return Setting(spec.name, value, NOT_SET)
        if location.location == cfg.Locations.environment:
            return Setting(spec.name, value, location.detail)
        if location.location == cfg.Locations.user:
            return Setting(spec.name, value, self._where(spec))
        return Setting(spec.name, value, DEFAULT)

    def convert(self, spec: SettingSpec, value: Any, label: str) -> Any:
        """A value given to cellctl itself (flag, keyword, CELLCTL_*), checked by the
        option's own type; never substituted."""
        try:
            return self._opts[(spec.group, spec.option)].type(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"Invalid value for {spec.name} from {label}: {exc}") from None

    def _register_lazy(self, name: str) -> bool:
        factory = self._lazy.pop(name, None)
        if factory is None:
            return False
        try:
            self._conf.register_opt(factory())
        except self._cfg.Error as exc:  # e.g. a host name that is no valid domain name
            raise ConfigError(f"Cannot substitute ${name}: {exc}") from None
        return True

    def _where(self, spec: SettingSpec) -> str:
        """Where the option's value comes from: the environment variable or the file
        and section. oslo.config's get_location() names the last file with the
        section, not the one with the option, so the files are looked through here."""
        env_name = f"OS_{spec.group.upper()}__{spec.option.upper()}"
        if env_name in self._environ_keys():
            return env_name
        for entry in reversed(self.read):
            if entry.kind == "file" and spec.option in self._file_sections(entry.path).get(
                    spec.group, {}):
                return f"{entry.path} [{spec.group}] {spec.option}"
        return f"[{spec.group}] {spec.option}"

    def _environ_keys(self) -> Mapping[str, str]:
        driver = getattr(self._conf, "_env_driver", None)
        return driver.environ if isinstance(driver, _MappingEnvironment) else os.environ

    def _file_sections(self, path: str) -> dict[str, dict[str, list[str]]]:
        """A file's options by normalized section name, parsed by oslo.config's own parser."""
        if path not in self._sections:
            raw: dict[str, dict[str, list[str]]] = {}
            # Parsed once already by oslo.config, so no error is expected here.
            with contextlib.suppress(self._cfg.ParseError, OSError, UnicodeDecodeError):
                self._cfg.ConfigParser(path, raw).parse()
            normalized: dict[str, dict[str, list[str]]] = {}
            for section, options in raw.items():
                normalized.setdefault(_group_name(section), {}).update(options)
            self._sections[path] = normalized
        return self._sections[path]

    def _decode_error(self, exc: UnicodeDecodeError) -> str:
        """oslo.config does not say which file it could not decode: find it."""
        for entry in self.read:
            if entry.kind != "file":
                continue
            try:
                with open(entry.path, "rb") as handle:
                    data = handle.read()
                data.decode(exc.encoding)
            except UnicodeDecodeError as bad:
                line = data[:bad.start].count(b"\n") + 1
                return f"Cannot decode config file {entry.path} line {line}: {bad.reason} " \
                       f"(not {exc.encoding})"
            except OSError:
                continue
        return f"Cannot decode a config file: {exc}"


def _group_name(section: str) -> str:
    """oslo.config's rule: section names are case-insensitive, except DEFAULT."""
    return section if section == "DEFAULT" else section.lower()


def _files_read(paths: Sequence[ConfigPath], default_files: Sequence[str],
                default_dirs: Sequence[str]) -> list[ConfigRead]:
    """What oslo.config's ConfigOpts reads, in its order (cfg.ConfigOpts._parse_config_files):
    the default files unless a --config-file is given, the default directories that
    exist unless a --config-dir is given, then the arguments in order; each directory
    is its ``*.conf`` files, sorted."""
    read: list[ConfigRead] = []
    if not any(kind == "file" for kind, _ in paths):
        read += [ConfigRead("file", _fixpath(f), "default search") for f in default_files]
    if not any(kind == "dir" for kind, _ in paths):
        for directory in default_dirs:
            if os.path.exists(directory):
                read += _directory(directory, "default search", directory)
    for kind, path in paths:
        if kind == "file":
            read.append(ConfigRead("file", _fixpath(path), "--config-file"))
        else:
            read += _directory(os.path.expanduser(path), "--config-dir",
                               f"--config-dir {path}")
    return read


def _directory(directory: str, origin: str, file_origin: str) -> list[ConfigRead]:
    files = sorted(glob.glob(os.path.join(directory, "*.conf")))
    return [ConfigRead("dir", _fixpath(directory), origin)] + [
        ConfigRead("file", _fixpath(f), file_origin) for f in files]


def _fixpath(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _parse_error(exc: cfg.ConfigFileParseError) -> str:
    from oslo_config import iniparser

    cause = exc.__context__
    if isinstance(cause, iniparser.ParseError):
        return f"Cannot parse config file {exc.config_file} line {cause.lineno}: {cause.msg}" + (
            f": {cause.line.strip()!r}" if cause.line else "")
    return f"Cannot parse config file {exc.config_file}: {exc.msg}"


class _MappingEnvironment:
    """oslo.config's environment source (``OS_<GROUP>__<OPT>``) over a given mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        from oslo_config.sources import _environment

        self.environ = environ
        self._source = _environment.EnvironmentConfigurationSource

    def get_name(self, group_name: str | None, option_name: str) -> str:
        return self._source.get_name(group_name, option_name)

    def get(self, group_name: str | None, option_name: str, opt: Any) -> tuple[Any, Any]:
        from oslo_config import cfg, sources

        name = self.get_name(group_name, option_name)
        if name in self.environ:
            return self.environ[name], cfg.LocationInfo(cfg.Locations.environment, name)
        return sources._NoValue, None


def _read_environment_from(conf: cfg.ConfigOpts, environ: Mapping[str, str]) -> None:
    if not hasattr(conf, "_env_driver"):  # pragma: no cover - a future oslo.config
        raise ConfigError("This oslo.config cannot read OS_* variables from a given environ")
    conf._env_driver = _MappingEnvironment(environ)  # type: ignore[assignment]


def nova_pybasedir() -> str:
    """Nova's ``pybasedir`` default: the directory the ``nova`` package is installed in
    (nova/conf/paths.py: ``abspath(dirname(nova/conf/paths.py)/../../)``), found without
    importing nova; where no nova package is importable, the one cellctl is installed in."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("nova")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        package = next(iter(spec.submodule_search_locations))
    else:
        package = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(package, os.pardir))


def my_ipv4() -> str:
    """Nova's ``my_ip`` default, as oslo.utils' ``netutils.get_my_ipv4()`` finds it: the
    source address of a route to a documentation address (RFC 5737; nothing is sent),
    else the address of the default route's interface, else 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.0", 80))
            return str(probe.getsockname()[0])
    except OSError:
        return _default_interface_ipv4()


def _default_interface_ipv4() -> str:
    import fcntl
    import struct

    try:
        with open("/proc/net/route") as routes:
            interface = next((fields[0] for fields in (r.strip().split("\t") for r in routes)
                              if len(fields) > 1 and fields[1] == "00000000"), None)
        if interface is None:
            return "127.0.0.1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                 struct.pack("256s", interface.encode()[:15]))
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return "127.0.0.1"


def _state_dir(from_env: str | None) -> Setting[str]:
    if from_env:
        return Setting("state_dir", from_env, ENV_PREFIX + "STATE_DIR")
    import platformdirs

    return Setting("state_dir", platformdirs.user_data_dir("cellctl"), "platform user data dir")


def _ensure_state_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Cannot create state directory {path}: {exc.strerror}") from None


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.absolute()}"
