"""The ``[ironic]`` group of nova.conf, registered the way Nova 34 registers it.

``nova.conf.ironic`` registers its own options (``conductor_group``, alias
``partition_key``; ``shard``; ``peer_list``; ``api_max_retries``, ...) and then
keystoneauth's session, auth and adapter options (``auth_type``,
``endpoint_override``, ``region_name``, ``valid_interfaces``, ``cafile``, ...),
with ``service_type = baremetal`` and ``valid_interfaces = internal, public``.
Reading a file through the same registrations gives the same values Nova's
driver works with, and a ``ConfigOpts`` that keystoneauth's loaders take as
they are (as openstacksdk does from Nova's ``oslo_conf``).

oslo.config and keystoneauth are imported when a file is read, never at import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellctl.errors import ConfigError

GROUP = "ironic"
SERVICE_TYPE = "baremetal"
_VERSION_OPTS = ("version", "min_version", "max_version")  # Nova removes these
# Nova's own options of the group: how the driver behaves, not how it reaches Ironic.
_NOVA_OPTS = frozenset({"api_max_retries", "api_retry_interval", "serial_console_state_timeout",
                        "vnc_console_state_timeout", "conductor_group", "shard", "peer_list",
                        *_VERSION_OPTS})


@dataclass(frozen=True)
class IronicSettings:
    """What one nova-compute service's nova.conf says about Ironic."""

    host: str  # [DEFAULT] host (as Nova: defaults to the machine's name)
    conductor_group: str | None  # None: unset; "" is the default group, a real choice
    shard: str | None
    peer_list: tuple[str, ...]
    source: str  # the file(s) read
    conf: Any = field(default=None, compare=False, repr=False)  # the oslo ConfigOpts

    @property
    def reaches_ironic(self) -> bool:
        """Does this file say how to reach Ironic (an auth type or an endpoint)?"""
        group = self.conf[GROUP]
        return bool(group.auth_type or group.endpoint_override)


def connection_key(settings: IronicSettings) -> tuple[tuple[str, Any], ...]:
    """Everything of the ``[ironic]`` group that decides how Ironic is reached: the
    session and adapter options and the auth plugin's own options (from
    ``auth_section`` when set). Two services with equal keys get the same answers
    from Ironic for the same request, so one fetch serves both."""
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import loading as ks_loading
    from oslo_config import cfg

    conf = settings.conf
    group = conf[GROUP]
    auth_group = group.auth_section or GROUP
    try:
        auth_type = conf[auth_group].auth_type
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        auth_type = None  # as keystoneauth: loading will fail, and say so
    plugin = []
    if auth_type:
        # Registered first, as keystoneauth registers them when it loads the plugin, so
        # that the key is the same before and after; an unknown plugin: connecting says so.
        with contextlib.suppress(ks_exc.NoMatchingPlugin):
            plugin = ks_loading.get_auth_plugin_conf_options(auth_type)
        conf.register_opts(plugin, group=auth_group)
    found = [(name, _frozen(group[name])) for name in sorted(group) if name not in _NOVA_OPTS]
    if auth_group != GROUP:
        found += [(f"{auth_group}.{opt.dest}", _frozen(conf[auth_group][opt.dest]))
                  for opt in plugin]
    return tuple(found)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def register(conf: Any) -> None:
    """Nova 34's ``[ironic]`` options (nova/conf/ironic.py), plus ``[DEFAULT] host``."""
    from keystoneauth1 import loading as ks_loading
    from oslo_config import cfg

    conf.register_opt(cfg.StrOpt("host", sample_default="<current_hostname>"))
    group = cfg.OptGroup(GROUP)
    conf.register_group(group)
    conf.register_opts([
        cfg.IntOpt("api_max_retries", default=60, min=0),
        cfg.IntOpt("api_retry_interval", default=2, min=0),
        cfg.IntOpt("serial_console_state_timeout", default=10, min=0),
        cfg.IntOpt("vnc_console_state_timeout", default=60, min=0),
        cfg.StrOpt("conductor_group", deprecated_name="partition_key", default=None,
                   max_length=255, regex=r"^[a-zA-Z0-9_.-]*$"),
        cfg.StrOpt("shard", default=None, max_length=255, regex=r"^[a-zA-Z0-9_.-]+$"),
        cfg.ListOpt("peer_list", default=[]),
    ], group=GROUP)
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)
    adapter = [opt for opt in ks_loading.get_adapter_conf_options(include_deprecated=False)
               if opt.dest not in _VERSION_OPTS]
    cfg.set_defaults(adapter, valid_interfaces=["internal", "public"],
                     service_type=SERVICE_TYPE)
    conf.register_opts(adapter, group=GROUP)
    for name in _VERSION_OPTS:  # Nova registers dummies the operator cannot set
        conf.register_opt(cfg.Opt(name, type=_unsettable), group=GROUP)  # type: ignore[arg-type]


def _unsettable(_value: str) -> None:
    return None


def load(files: Sequence[str] = (), dirs: Sequence[str] = ()) -> IronicSettings:
    """The ``[ironic]`` settings of these files and directories, read by oslo.config in
    nova's order (files, then each directory's ``*.conf``); none: only defaults.

    Raises ConfigError saying what is wrong with a file.
    """
    import socket

    from keystoneauth1 import loading as ks_loading
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    register(conf)
    args = [f"--config-file={path}" for path in files]
    args += [f"--config-dir={path}" for path in dirs]
    source = ", ".join([*files, *dirs]) or "no file"
    try:
        conf(args, project="nova", default_config_files=[], default_config_dirs=[],
             use_env=False)
        # auth_section names the group the auth options are in: keystoneauth
        # registers auth_type there only once the files are read.
        ks_loading.register_auth_conf_options(conf, GROUP)
        host = conf.host or socket.gethostname()
        group = conf[GROUP]
        settings = IronicSettings(
            host=host, conductor_group=group.conductor_group, shard=group.shard,
            peer_list=tuple(group.peer_list), source=source, conf=conf)
    except cfg.Error as exc:
        raise ConfigError(f"Cannot read {source}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {source}: {exc}") from None
    except SystemExit:
        raise ConfigError(f"Cannot read {source}") from None
    return settings


def service_files(pairs: Sequence[str], directory: str | None) -> dict[str, str]:
    """``HOST=FILE`` pairs and a directory of ``HOST.conf`` files (or files named after
    the host), as host -> file. A pair wins over the directory for its host.

    Raises ConfigError on a pair without ``=`` or a missing directory.
    """
    found: dict[str, str] = {}
    if directory is not None:
        root = Path(directory)
        if not root.is_dir():
            raise ConfigError(f"--service-config-dir {directory}: not a directory")
        for path in sorted(root.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                host = path.name[:-5] if path.name.endswith(".conf") else path.name
                found[host] = str(path)
    for pair in pairs:
        host, sep, file = pair.partition("=")
        if not sep or not host.strip() or not file.strip():
            raise ConfigError(f"--service-config wants HOST=FILE, got {pair!r}")
        found[host.strip()] = file.strip()
    return found


def load_services(files: dict[str, str]) -> dict[str, IronicSettings]:
    """Each service's settings, by the host it was given under.

    The file's own ``[DEFAULT] host`` wins when it sets one (that is the name the
    service runs as); otherwise the given host is the service's host.
    """
    loaded: dict[str, IronicSettings] = {}
    for given, path in files.items():
        settings = load([path])
        if not settings.conf.host:
            settings = IronicSettings(given, settings.conductor_group, settings.shard,
                                      settings.peer_list, settings.source, settings.conf)
        loaded[given] = settings
    return loaded
