"""The bare-metal nodes, read from Ironic's API the way Nova 34's driver reads them.

Nova's ``IronicDriver`` gets an openstacksdk connection from the ``[ironic]``
group of nova.conf (``nova.utils.get_sdk_adapter('baremetal', admin=True,
check_service=True)``: keystoneauth's auth plugin and session from that group,
then ``openstack.connection.Connection(session=..., oslo_conf=CONF,
service_types={'baremetal'}, strict_proxies=True)``, which also takes the
adapter options ``endpoint_override``, ``region_name``, ``valid_interfaces``
from the group). It lists nodes with ``baremetal.nodes(fields=_NODE_FIELDS,
**filters)``: ``conductor_group`` (API 1.46) when set, ``shard`` (API 1.82)
when set; openstacksdk follows Ironic's pages (``limit``/``marker``). This
module does the same, with the same libraries, imported only when called.

``connect`` checks that Ironic answers within the probe budget (one
version-discovery request); the listing itself then gets the group's
``timeout`` (or a minute per page). Any failure is ``IronicUnreachable``, with
one line saying why, never a traceback.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cellctl.ironic.config import GROUP, SERVICE_TYPE, IronicSettings

# nova.virt.ironic.driver._NODE_FIELDS, in Ironic's names
NOVA_FIELDS = ("uuid", "power_state", "target_power_state", "provision_state",
               "target_provision_state", "last_error", "maintenance", "properties",
               "instance_uuid", "traits", "resource_class")
# What cellctl adds to see which services' filters a node passes.
FIELDS = (*NOVA_FIELDS, "conductor_group", "shard")
CONDUCTOR_GROUP_VERSION = "1.46"
SHARD_VERSION = "1.82"
PAGE_TIMEOUT = 60.0  # seconds per page when [ironic] timeout is unset


class IronicUnreachable(Exception):
    """Ironic's API could not be reached or refused the listing (the message says why)."""


@dataclass(frozen=True)
class Node:
    uuid: str
    instance_uuid: str | None
    conductor_group: str | None  # None: not asked (a filtered listing)
    shard: str | None


@dataclass(frozen=True)
class Filter:
    """The listing one service asks for: Nova's kwargs to ``nodes()``."""

    conductor_group: str | None = None
    shard: str | None = None

    @classmethod
    def of(cls, settings: IronicSettings, *, groups: bool = True, shards: bool = True
           ) -> Filter:
        """What the service's driver asks for, given whether the API speaks the
        conductor group (1.46) and shard (1.82) filters. As ``_refresh_cache``: a
        version the API lacks drops that filter and every one after it (the
        conductor group is tried first)."""
        if settings.conductor_group is not None and not groups:
            return cls()
        if settings.shard and not shards:
            return cls(settings.conductor_group, None)
        return cls(settings.conductor_group, settings.shard or None)

    def passes(self, node: Node) -> bool:
        """May Ironic list ``node`` for this filter? A node whose conductor group was
        not read (the database's nodes) may pass any."""
        if node.conductor_group is None:
            return True
        if self.conductor_group is not None and (
                node.conductor_group.lower() != self.conductor_group.lower()):
            return False
        return not self.shard or node.shard == self.shard

    def kwargs(self) -> dict[str, str]:
        given: dict[str, str] = {}
        if self.conductor_group is not None:
            given["conductor_group"] = self.conductor_group
        if self.shard:
            given["shard"] = self.shard
        return given


class IronicClient:
    """One openstacksdk connection to the baremetal service, made as Nova makes it."""

    def __init__(self, settings: IronicSettings, *, budget: float) -> None:
        try:
            from keystoneauth1 import exceptions as ks_exc
            from keystoneauth1 import loading as ks_loading
            from openstack import connection
            from openstack import exceptions as sdk_exc
        except ImportError as exc:
            raise IronicUnreachable(
                f"reading Ironic needs openstacksdk (pip install 'cellctl[ironic]'): {exc}"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (
            ks_exc.ClientException, sdk_exc.SDKException, OSError, ValueError)
        for name in ("keystoneauth", "openstack", "stevedore"):
            # Their complaints (e.g. "Failed to discover ...") become our one warning.
            logging.getLogger(name).addHandler(logging.NullHandler())
            logging.getLogger(name).propagate = False
        conf = settings.conf
        try:
            with warnings.catch_warnings():  # openstacksdk's deprecation notes
                warnings.simplefilter("ignore")
                auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
                session = ks_loading.load_session_from_conf_options(conf, GROUP, auth=auth)
                self._page_timeout = conf[GROUP].timeout or PAGE_TIMEOUT
                session.timeout = budget  # the first answer must come within the budget
                self._conn = connection.Connection(
                    session=session, oslo_conf=conf, service_types=[SERVICE_TYPE],
                    strict_proxies=True)
                self._proxy = self._conn.baremetal  # strict: discovery happens here
                session.timeout = self._page_timeout
        except self._errors as exc:
            raise IronicUnreachable(_why(exc)) from None

    def supports(self, version: str) -> bool:
        """Does the API speak this microversion (Nova's ``_can_send_version``)?"""
        from openstack import utils as sdk_utils

        try:
            return bool(sdk_utils.supports_microversion(self._proxy, version))
        except self._errors as exc:
            raise IronicUnreachable(_why(exc)) from None

    def nodes(self, wanted: Filter = Filter(), *, fields: tuple[str, ...] = FIELDS
              ) -> Iterator[Node]:
        """Every node that passes ``wanted``, page by page, with ``fields``.

        The requests are openstacksdk's for ``baremetal.nodes(fields=..., **filters)``
        (``Resource.list``: the same session, microversion, query and ``next`` links),
        made here so that each node is read from the JSON as it is, not built into
        an openstacksdk object first (40 times the CPU at 100,000 nodes)."""
        from urllib.parse import parse_qs, urljoin, urlparse

        from openstack import exceptions as sdk_exc
        from openstack.baremetal.v1 import node as sdk_node

        params: dict[str, Any] = {"fields": ",".join(fields), **wanted.kwargs()}
        uri: str | None = sdk_node.Node.base_path
        errors: tuple[type[BaseException], ...] = (  # KeyError, TypeError: no listing
            *self._errors, KeyError, TypeError)
        try:
            with warnings.catch_warnings():  # openstacksdk's deprecation notes are not ours
                warnings.simplefilter("ignore")
                microversion = sdk_node.Node._get_microversion(self._proxy)
                while uri:
                    response = self._proxy.get(uri, params=params, microversion=microversion,
                                               headers={"Accept": "application/json"})
                    sdk_exc.raise_from_response(response)
                    data = response.json()
                    for raw in data["nodes"]:
                        yield Node(raw["uuid"], raw.get("instance_uuid"),
                                   raw.get("conductor_group"), raw.get("shard"))
                    uri = data.get("next")
                    if uri:  # as openstacksdk: the link's query becomes the parameters
                        parts = urlparse(uri)
                        params = dict(parse_qs(parts.query))
                        uri = urljoin(uri, parts.path)
        except errors as exc:
            raise IronicUnreachable(_why(exc)) from None

    def close(self) -> None:
        self._conn.close()


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
