"""The service group's options, read from Settings in this one place.

Nova's names and defaults (cellctl.settings registers them as Nova does):
``[DEFAULT] servicegroup_driver`` (db), ``report_interval`` (10),
``service_down_time`` (60); ``[cache] enabled`` (false), ``backend``
(dogpile.cache.null), ``memcache_servers`` (localhost:11211),
``backend_expiration_time`` (unset); ``[zookeeper] address`` (unset),
``sg_prefix`` (/servicegroups), ``recv_timeout`` (4000 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellctl.errors import ConfigError
from cellctl.settings import (
    DEFAULT_REPORT_INTERVAL,
    DEFAULT_SERVICE_DOWN_TIME,
    SERVICEGROUP_DRIVERS,
)

if TYPE_CHECKING:
    from cellctl.settings import Setting, Settings

MEMCACHED_BACKENDS = ("dogpile.cache.memcached", "oslo_cache.memcache_pool",
                      "dogpile.cache.pymemcache")
DEFAULT_SG_PREFIX = "/servicegroups"
DEFAULT_RECV_TIMEOUT_MS = 4000


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


def driver_name(settings: Settings) -> str:
    setting = settings.servicegroup_driver
    value = str(setting.value or "db").strip()
    if value not in SERVICEGROUP_DRIVERS:
        raise ConfigError(f"servicegroup_driver must be one of {', '.join(SERVICEGROUP_DRIVERS)}, "
                          f"got {value!r} from {setting.source}")
    return value


def down_seconds(settings: Settings) -> int:
    """Seconds without a heartbeat after which a service is down, as Nova's service
    group decides it (``nova.servicegroup.api.API``): ``service_down_time``, but
    ``int(2.5 * report_interval)`` when it is not above ``report_interval``."""
    down = settings.service_down_time.value
    interval = settings.report_interval.value
    down = DEFAULT_SERVICE_DOWN_TIME if down is None else down
    interval = DEFAULT_REPORT_INTERVAL if interval is None else interval
    return int(interval * 2.5) if down <= interval else down


def memcache_options(settings: Settings) -> MemcacheOptions:
    servers = settings.cache_memcache_servers.value
    if isinstance(servers, str):
        servers = servers.split(",")
    expire = settings.cache_backend_expiration_time
    return MemcacheOptions(
        enabled=_bool(settings.cache_enabled),
        backend=str(settings.cache_backend.value or "dogpile.cache.null").strip(),
        servers=tuple(s.strip() for s in servers or () if s.strip()),
        backend_expiration_time=None if expire.value is None else _positive_int(expire))


def zookeeper_options(settings: Settings) -> ZooKeeperOptions:
    address = settings.zookeeper_address.value
    prefix_setting = settings.zookeeper_sg_prefix
    prefix = str(prefix_setting.value or DEFAULT_SG_PREFIX).strip()
    if not prefix.startswith("/"):
        raise ConfigError(f"[zookeeper] sg_prefix must be an absolute znode path, got "
                          f"{prefix!r} from {prefix_setting.source}")
    timeout = settings.zookeeper_recv_timeout
    return ZooKeeperOptions(
        address=str(address).strip() if address else None,
        sg_prefix=prefix.rstrip("/") or "/",
        recv_timeout_ms=DEFAULT_RECV_TIMEOUT_MS if timeout.value is None
        else _positive_int(timeout))


def _bool(setting: Setting[Any]) -> bool:
    value = setting.value
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{setting.name} must be true or false, got {value!r} "
                      f"from {setting.source}")


def _positive_int(setting: Setting[Any]) -> int:
    value: Any = setting.value
    try:
        number = int(value)
        if number > 0:
            return number
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{setting.name} must be a positive whole number, got "
                      f"{setting.value!r} from {setting.source}")
