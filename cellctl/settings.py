"""Resolve every setting in one place: flag > environment > config files > default.

Config files are INI files compatible with nova.conf; later files win. The
embedded defaults (SQLite files in the state directory, the in-memory kombu
transport) apply only when no config file is given: an operator who points
cellctl at a nova.conf must see a missing value reported as missing, not
silently replaced by a local SQLite file.
"""

from __future__ import annotations

import configparser
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cellctl.errors import ConfigError

ENV_PREFIX = "CELLCTL_"
DEFAULT_SERVICE_DOWN_TIME = 60
DEFAULT_TRANSPORT_URL = "memory:///"
EMBEDDED = "embedded default"
NOT_SET = "not set"


@dataclass(frozen=True)
class Setting:
    name: str
    value: str | None
    # e.g. "--transport-url", "CELLCTL_TRANSPORT_URL", "nova.conf [DEFAULT] transport_url"
    source: str

    @property
    def is_set(self) -> bool:
        return self.value is not None

    @property
    def is_embedded_default(self) -> bool:
        return self.source == EMBEDDED


@dataclass(frozen=True)
class _Spec:
    name: str
    env: str
    section: str
    key: str
    flag: str | None


_SPECS = {
    "api_database_connection": _Spec(
        "api_database_connection", "API_DATABASE_CONNECTION", "api_database", "connection",
        "--api-database-connection",
    ),
    "database_connection": _Spec(
        "database_connection", "DATABASE_CONNECTION", "database", "connection",
        "--database_connection",
    ),
    "transport_url": _Spec(
        "transport_url", "TRANSPORT_URL", "DEFAULT", "transport_url", "--transport-url"
    ),
    "service_down_time": _Spec(
        "service_down_time", "SERVICE_DOWN_TIME", "DEFAULT", "service_down_time", None
    ),
}


@dataclass(frozen=True)
class Settings:
    api_database_connection: Setting
    database_connection: Setting
    transport_url: Setting
    service_down_time: Setting
    state_dir: Setting
    config_files: tuple[str, ...]

    @property
    def service_down_seconds(self) -> int:
        return int(self.service_down_time.value or DEFAULT_SERVICE_DOWN_TIME)

    def all(self) -> list[Setting]:
        return [
            self.api_database_connection,
            self.database_connection,
            self.transport_url,
            self.service_down_time,
            self.state_dir,
        ]

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
    api_database_connection: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve all settings. Raises ConfigError for unreadable files or bad values."""
    environ = os.environ if environ is None else environ
    parser = _read_config(config_files)
    use_defaults = not config_files
    state_dir = _state_dir(environ)
    defaults = {
        "api_database_connection": _sqlite_url(Path(state_dir.value or "") / "api.sqlite"),
        "database_connection": _sqlite_url(Path(state_dir.value or "") / "cell1.sqlite"),
        "transport_url": DEFAULT_TRANSPORT_URL,
        "service_down_time": str(DEFAULT_SERVICE_DOWN_TIME),
    }
    flags = {"api_database_connection": api_database_connection}
    resolved: dict[str, Setting] = {}
    for name, spec in _SPECS.items():
        resolved[name] = _resolve_one(
            spec,
            flag=flags.get(name),
            environ=environ,
            parser=parser,
            # nova's own default for service_down_time holds with a nova.conf too
            default=defaults[name] if use_defaults or name == "service_down_time" else None,
        )
    _check_down_time(resolved["service_down_time"])
    settings = Settings(
        state_dir=state_dir, config_files=tuple(config_files), **resolved
    )
    if any(s.is_embedded_default for s in settings.all() if s.name.endswith("connection")):
        _ensure_state_dir(Path(state_dir.value or ""))
    return settings


def _resolve_one(
    spec: _Spec,
    *,
    flag: str | None,
    environ: Mapping[str, str],
    parser: _SourcedConfig,
    default: str | None,
) -> Setting:
    if flag:
        return Setting(spec.name, flag, spec.flag or spec.name)
    env_name = ENV_PREFIX + spec.env
    if env_name in environ:
        # An empty variable explicitly unsets the value (and its default).
        return Setting(spec.name, environ[env_name] or None, env_name)
    found = parser.get(spec.section, spec.key)
    if found is not None:
        value, path = found
        return Setting(spec.name, value or None, f"{path} [{spec.section}] {spec.key}")
    if default is not None:
        return Setting(spec.name, default, EMBEDDED)
    return Setting(spec.name, None, NOT_SET)


class _SourcedConfig:
    """INI values with the file each came from; later files win, as in oslo.config."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, path: str, parser: configparser.ConfigParser) -> None:
        for section in parser.sections():
            for key, value in parser.items(section, raw=True):
                self._values[(section, key.replace("-", "_"))] = (value.strip(), path)

    def get(self, section: str, key: str) -> tuple[str, str] | None:
        return self._values.get((section, key))


def _read_config(paths: Sequence[str]) -> _SourcedConfig:
    config = _SourcedConfig()
    for path in paths:
        # [DEFAULT] is an ordinary section in nova.conf, not configparser's
        # defaults-for-every-section; oslo.config allows repeated keys.
        parser = configparser.ConfigParser(
            interpolation=None, strict=False, default_section="\x00none"
        )
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except OSError as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc.strerror}") from None
        except configparser.Error as exc:
            first_line = str(exc).splitlines()[0]
            raise ConfigError(f"Cannot parse config file {path}: {first_line}") from None
        config.add(path, parser)
    return config


def _state_dir(environ: Mapping[str, str]) -> Setting:
    if environ.get(ENV_PREFIX + "STATE_DIR"):
        return Setting("state_dir", environ[ENV_PREFIX + "STATE_DIR"], ENV_PREFIX + "STATE_DIR")
    import platformdirs

    return Setting("state_dir", platformdirs.user_data_dir("cellctl"), "platform user data dir")


def _ensure_state_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Cannot create state directory {path}: {exc.strerror}") from None


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.absolute()}"


def _check_down_time(setting: Setting) -> None:
    try:
        if setting.value is not None and int(setting.value) <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"service_down_time must be a positive number of seconds, "
            f"got {setting.value!r} from {setting.source}"
        ) from None
