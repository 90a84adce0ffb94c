"""The bare-metal nodes, read from Ironic's API the way Nova 34's driver reads them.

Nova's ``IronicDriver`` gets an openstacksdk connection from the ``[ironic]``
group of nova.conf (``nova.utils.get_sdk_adapter('baremetal', admin=True,
check_service=True)``: keystoneauth's auth plugin and session from that group,
then ``openstack.connection.Connection(session=..., oslo_conf=CONF,
service_types={'baremetal'}, strict_proxies=True)``, which also takes the
adapter options ``endpoint_override``, ``region_name``, ``valid_interfaces``
from the group). It lists nodes with ``baremetal.nodes(fields=_NODE_FIELDS,
**filters)``: ``conductor_group`` (API 1.46) when set, ``shard`` (API 1.82)
when set; openstacksdk follows Ironic's pages (``limit``/``marker``).

openstacksdk builds that proxy from keystoneauth alone: the auth plugin and
session above, and a keystoneauth ``Adapter`` from the group's adapter options
(``from_conf`` runs ``keystoneauth1.loading.adapter.process_conf_options`` on
the group) with baremetal's major version 1 discovered at the endpoint. This
module makes that adapter directly (``load_adapter_from_conf_options``), asks
the same discovery, sends the listing's requests with openstacksdk's
microversion for ``Node`` and follows the same ``next`` links: the same
requests, without importing openstacksdk (its import and objects were most of
the start-up and memory beside the API's own paging time).

``IronicClient()`` checks that Ironic answers within the probe budget (one
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
API_VERSION = "1"  # the major version openstacksdk's baremetal proxy asks for
# openstacksdk's Node._max_microversion (4.x): the highest it sends for a listing
NODE_MAX_MICROVERSION = "1.109"
# openstacksdk's baremetal proxy retries these (when the group's status_code_retries
# asks for retries; from oslo_conf its defaults.json value of 5 is not used)
RETRIABLE = [409, 503]


class IronicUnreachable(Exception):
    """Ironic's API could not be reached or refused the listing (the message says why)."""


@dataclass(frozen=True, slots=True)
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
    """One keystoneauth adapter to the baremetal service, reaching Ironic as Nova does."""

    def __init__(self, settings: IronicSettings, *, budget: float) -> None:
        try:
            from keystoneauth1 import exceptions as ks_exc
            from keystoneauth1 import loading as ks_loading
        except ImportError as exc:
            raise IronicUnreachable(
                f"reading Ironic needs keystoneauth1 (pip install 'cellctl[ironic]'): {exc}"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (
            ks_exc.ClientException, OSError, ValueError, TypeError)
        for name in ("keystoneauth", "stevedore"):
            # Their complaints (e.g. "Failed to discover ...") become our one warning.
            logging.getLogger(name).addHandler(logging.NullHandler())
            logging.getLogger(name).propagate = False
        conf = settings.conf
        group = conf[GROUP]
        try:
            with warnings.catch_warnings():  # keystoneauth's deprecation notes
                warnings.simplefilter("ignore")
                auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
                session = ks_loading.load_session_from_conf_options(conf, GROUP, auth=auth)
                self._adapter = ks_loading.load_adapter_from_conf_options(
                    conf, GROUP, session=session, auth=auth,
                    min_version=API_VERSION, max_version=f"{API_VERSION}.latest",
                    retriable_status_codes=group.retriable_status_codes or RETRIABLE)
                self._page_timeout = group.timeout or PAGE_TIMEOUT
                session.timeout = budget  # the first answer must come within the budget
                data = self._adapter.get_endpoint_data()  # version discovery
                session.timeout = self._page_timeout
        except self._errors as exc:
            raise IronicUnreachable(_why(exc)) from None
        if data is None or not data.service_url:
            raise IronicUnreachable(f"no {SERVICE_TYPE} endpoint was discoverable")
        self._url: str = data.service_url.rstrip("/")
        self._range = (data.min_microversion, data.max_microversion)

    def supports(self, version: str) -> bool:
        """Does the API speak this microversion (Nova's ``_can_send_version``)?"""
        from keystoneauth1 import discover

        low, high = self._range
        return bool(low and high and discover.version_between(low, high, version))

    def microversion(self) -> str | None:
        """The microversion of the listing: openstacksdk's for ``Node`` (the highest
        both it, ``NODE_MAX_MICROVERSION``, and the API speak), None without any."""
        from keystoneauth1 import discover

        low, high = self._range
        if not high:
            return None
        ours = discover.normalize_version_number(NODE_MAX_MICROVERSION)
        if low and ours < discover.normalize_version_number(low):
            return None
        return discover.version_to_string(min(ours, discover.normalize_version_number(high)))

    def nodes(self, wanted: Filter = Filter(), *, fields: tuple[str, ...] = FIELDS
              ) -> Iterator[Node]:
        """Every node that passes ``wanted``, page by page, with ``fields``.

        The requests are openstacksdk's for ``baremetal.nodes(fields=..., **filters)``
        (``Resource.list``: ``GET /v1/nodes`` with the query, the microversion, then
        each page's ``next`` link), each node read from the JSON as it is."""
        from sys import intern
        from urllib.parse import parse_qs, urljoin, urlparse

        params: dict[str, Any] = {"fields": ",".join(fields), **wanted.kwargs()}
        uri: str | None = f"{self._url}/nodes"
        errors: tuple[type[BaseException], ...] = (*self._errors, KeyError)  # not a listing
        try:
            microversion = self.microversion()
            while uri:
                response = self._adapter.get(uri, params=params, microversion=microversion,
                                             headers={"Accept": "application/json"})
                data = response.json()
                for raw in data["nodes"]:  # a group's or shard's name: one string
                    group, shard = raw.get("conductor_group"), raw.get("shard")
                    yield Node(raw["uuid"], raw.get("instance_uuid"),
                               None if group is None else intern(group),
                               None if shard is None else intern(shard))
                uri = data.get("next")
                if uri:  # as openstacksdk: the link's query updates the first one's (Ironic
                    # leaves the conductor_group and shard filters out of its next links)
                    parts = urlparse(uri)
                    params.update(parse_qs(parts.query))
                    uri = urljoin(uri, parts.path)
        except errors as exc:
            raise IronicUnreachable(_why(exc)) from None

    def close(self) -> None:
        self._adapter.session.session.close()


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
