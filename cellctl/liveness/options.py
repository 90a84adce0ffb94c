"""The service group's options, read from Settings in this one place.

Nova's names and defaults: ``[DEFAULT] servicegroup_driver`` (db),
``report_interval`` (10), ``service_down_time`` (60); ``[cache] enabled``
(false), ``backend`` (dogpile.cache.null), ``memcache_servers``
(localhost:11211), ``backend_expiration_time`` (unset); ``[zookeeper] address``
(unset), ``sg_prefix`` (/servicegroups), ``recv_timeout`` (4000 ms).

``_option`` is the only place that knows where a value comes from: a Settings
attribute of that name (a Setting with ``.value``/``.source``) when Settings
has one, else ``CELLCTL_<NAME>`` and then the config files (later files win),
read the way cellctl.settings reads them.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cellctl.errors import ConfigError

if TYPE_CHECKING:
    from cellctl.settings import Settings

MEMCACHED_BACKENDS = ("dogpile.cache.memcached", "oslo_cache.memcache_pool",
                      "dogpile.cache.pymemcache")
DEFAULT_SG_PREFIX = "/servicegroups"
DEFAULT_RECV_TIMEOUT_MS = 4000

# Settings attribute -> (section, key, default)
_WHERE: dict[str, tuple[str, str, str | None]] = {
    "servicegroup_driver": ("DEFAULT", "servicegroup_driver", "db"),
    "report_interval": ("DEFAULT", "report_interval", "10"),
    "cache_enabled": ("cache", "enabled", "false"),
    "cache_backend": ("cache", "backend", "dogpile.cache.null"),
    "cache_memcache_servers": ("cache", "memcache_servers", "localhost:11211"),
    "cache_expiration_time": ("cache", "expiration_time", "600"),
    "cache_backend_expiration_time": ("cache", "backend_expiration_time", None),
    "zookeeper_address": ("zookeeper", "address", None),
    "zookeeper_sg_prefix": ("zookeeper", "sg_prefix", DEFAULT_SG_PREFIX),
    "zookeeper_recv_timeout": ("zookeeper", "recv_timeout", str(DEFAULT_RECV_TIMEOUT_MS)),
}


@dataclass(frozen=True)
class Option:
    name: str
    value: str | None
    source: str


@dataclass(frozen=True)
class MemcacheOptions:
    enabled: bool
    backend: str
    servers: tuple[str, ...]
    backend_expiration_time: int | None


@dataclass(frozen=True)
class ZooKeeperOptions:
    address: str | None
    sg_prefix: str
    recv_timeout_ms: int


def _option(settings: Settings, name: str) -> Option:
    section, key, default = _WHERE[name]
    setting = getattr(settings, name, None)
    if setting is not None:  # registered by cellctl.settings
        return Option(name, setting.value, setting.source)
    env = "CELLCTL_" + name.upper()
    if env in os.environ:
        return Option(name, os.environ[env] or None, env)
    found = _from_files(tuple(settings.config_files), section, key)
    if found is not None:
        return Option(name, found[0] or None, f"{found[1]} [{section}] {key}")
    return Option(name, default, "default" if default is not None else "not set")


def _from_files(paths: tuple[str, ...], section: str, key: str) -> tuple[str, str] | None:
    found = None
    for path in paths:
        parser = configparser.ConfigParser(interpolation=None, strict=False,
                                           default_section="\x00none")
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except (OSError, configparser.Error):
            continue  # cellctl.settings has reported it already
        for candidate in (key, key.replace("_", "-")):
            if parser.has_option(section, candidate):
                found = (parser.get(section, candidate, raw=True).strip(), path)
    return found


def shown(settings: Settings) -> list[Option]:
    """Every option of the chosen driver, for ``cellctl config``."""
    driver = driver_name(settings)
    names = ["servicegroup_driver", "report_interval"]
    if driver == "mc":
        names += ["cache_enabled", "cache_backend", "cache_memcache_servers",
                  "cache_backend_expiration_time"]
    elif driver == "zk":
        names += ["zookeeper_address", "zookeeper_sg_prefix", "zookeeper_recv_timeout"]
    return [_option(settings, n) for n in names]


def driver_name(settings: Settings) -> str:
    option = _option(settings, "servicegroup_driver")
    value = (option.value or "db").strip()
    if value not in ("db", "mc", "zk"):
        raise ConfigError(f"servicegroup_driver must be one of db, mc, zk, got {value!r} "
                          f"from {option.source}")
    return value


def report_interval(settings: Settings) -> int:
    return _positive_int(_option(settings, "report_interval"))


def service_down_time(settings: Settings) -> int:
    return int(settings.service_down_seconds)


def memcache_options(settings: Settings) -> MemcacheOptions:
    enabled = _bool(_option(settings, "cache_enabled"))
    backend = (_option(settings, "cache_backend").value or "dogpile.cache.null").strip()
    servers_opt = _option(settings, "cache_memcache_servers")
    servers = tuple(s.strip() for s in (servers_opt.value or "").split(",") if s.strip())
    expire_opt = _option(settings, "cache_backend_expiration_time")
    expire = _positive_int(expire_opt) if expire_opt.value is not None else None
    return MemcacheOptions(enabled, backend, servers, expire)


def zookeeper_options(settings: Settings) -> ZooKeeperOptions:
    address = _option(settings, "zookeeper_address").value
    prefix = (_option(settings, "zookeeper_sg_prefix").value or DEFAULT_SG_PREFIX).strip()
    if not prefix.startswith("/"):
        raise ConfigError(f"[zookeeper] sg_prefix must be an absolute znode path, got {prefix!r}")
    timeout = _positive_int(_option(settings, "zookeeper_recv_timeout"))
    return ZooKeeperOptions(address.strip() if address else None, prefix.rstrip("/") or "/",
                            timeout)


def _bool(option: Option) -> bool:
    value = (option.value or "false").strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{option.name} must be true or false, got {option.value!r} "
                      f"from {option.source}")


def _positive_int(option: Option) -> int:
    try:
        number = int(option.value or "")
        if number > 0:
            return number
    except ValueError:
        pass
    raise ConfigError(f"{option.name} must be a positive whole number, got {option.value!r} "
                      f"from {option.source}")
