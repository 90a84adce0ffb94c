"""Database and transport URLs: parsing, masking, validation, cell0 naming.

Transport URLs are oslo.messaging style: several hosts may share one URL,
separated by commas (``rabbit://u:p@h1:5672,u:p@h2:5672/vhost``), which neither
urllib nor kombu parse. Database URLs are SQLAlchemy URLs. Both are split here
by one parser that keeps the original text of every part, so masking and the
cell0 name change only the part they mean to change.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from cellctl.errors import InvalidURL

MASK = "****"

# Query parameters whose values are secrets (e.g. ?password=... for PyMySQL).
_SECRET_QUERY_KEYS = re.compile(r"(?i)^(password|passwd|pwd|secret|token|ssl_key_password)$")

# One host entry of a netloc: [user[:password]@]host. The password is matched
# lazily but the host must run to a comma or the end and cannot hold "@", so a
# password containing "@", ":" or "," still parses as a whole.
_HOST_ENTRY = re.compile(
    r"(?:(?P<user>[^:@,]*)(?::(?P<password>.*?))?@)?(?P<host>\[[^\]]*\](?::[^@,]*)?|[^@,\[\]]*)(?=,|$)",
    re.DOTALL,
)

# Schemes oslo.messaging accepts that are not kombu transport names, and the
# kombu transport each maps to for connecting.
_OSLO_SCHEMES = {"rabbit": "amqp", "none": None}


@dataclass(frozen=True)
class HostEntry:
    user: str | None
    password: str | None
    host: str  # host with optional :port, as written

    @property
    def hostname(self) -> str:
        if self.host.startswith("["):
            return self.host[1 : self.host.find("]")]
        return self.host.rpartition(":")[0] if ":" in self.host else self.host

    @property
    def port(self) -> str | None:
        tail = self.host[self.host.find("]") + 1 :] if self.host.startswith("[") else self.host
        return tail.rpartition(":")[2] if ":" in tail else None

    def render(self, password: str | None) -> str:
        if self.user is None:
            return self.host
        creds = self.user if password is None else f"{self.user}:{password}"
        return f"{creds}@{self.host}"


@dataclass(frozen=True)
class SplitURL:
    """A URL cut into scheme, host entries, path and query, text preserved."""

    scheme: str
    hosts: tuple[HostEntry, ...]
    path: str  # from the "/" after the netloc up to "?", "" if none
    query: str | None  # after "?", None if no "?"

    def render(self, *, hide_passwords: bool) -> str:
        netloc = ",".join(
            h.render(MASK if hide_passwords and h.password is not None else h.password)
            for h in self.hosts
        )
        query = self.query
        if hide_passwords and query:
            query = _mask_query(query)
        return f"{self.scheme}://{netloc}{self.path}" + ("" if query is None else f"?{query}")


def split_url(url: str) -> SplitURL:
    """Split ``scheme://netloc/path?query``; raise InvalidURL if it has no scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise InvalidURL("No scheme specified")
    # A password may hold "/" or "?", so the netloc ends at the first "/" or
    # "?" after the last "@". (An "@" in the query makes the netloc too long,
    # which over-masks but never leaks.) "scheme:///..." has an empty netloc.
    end = 0 if rest.startswith("/") else _first_of(rest, "/?", after=max(rest.rfind("@"), 0))
    netloc, tail = rest[:end], rest[end:]
    path, qmark, query = tail.partition("?")
    return SplitURL(scheme, _split_hosts(netloc), path, query if qmark else None)


def _first_of(text: str, chars: str, *, after: int) -> int:
    positions = [p for p in (text.find(c, after) for c in chars) if p >= 0]
    return min(positions) if positions else len(text)


def _split_hosts(netloc: str) -> tuple[HostEntry, ...]:
    entries: list[HostEntry] = []
    pos = 0
    while True:
        match = _HOST_ENTRY.match(netloc, pos)
        if match is None:
            raise InvalidURL("Cannot parse the host part of the URL")
        entries.append(HostEntry(match["user"], match["password"], match["host"]))
        pos = match.end()
        if pos >= len(netloc):
            return tuple(entries)
        pos += 1  # the comma


def _mask_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        key, eq, _value = part.partition("=")
        parts.append(f"{key}={MASK}" if eq and _SECRET_QUERY_KEYS.match(key) else part)
    return "&".join(parts)


def mask(url: str | None) -> str | None:
    """Hide every password in ``url``, keeping its shape (``none:///``, sqlite paths)."""
    if not url:
        return url
    try:
        return split_url(url).render(hide_passwords=True)
    except InvalidURL:
        # Not a URL we can parse: hide everything that could be credentials.
        if "@" not in url:
            return url
        head, _, host = url.rpartition("@")
        scheme, sep, _creds = head.partition("://")
        return f"{scheme}{sep}{MASK}@{host}" if sep else f"{MASK}@{host}"


def mask_like_nova(url: str | None) -> str | None:
    """``url`` masked byte for byte as ``nova-manage cell_v2 list_cells`` masks it.

    nova's ``mask_passwd_in_url``: ``urlparse``, then ``re.sub(':.*@', ':****@')``
    on the netloc only (greedy: a multi-host URL keeps only its last host), then
    ``urlunparse`` (which shows ``none:///`` as ``none:/``). Deployment tools read
    this column and write it back (openstack-helm), so it must be nova's bytes.
    """
    if not url:
        return url
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(url)
    netloc = re.sub(":.*@", f":{MASK}@", parsed.netloc)
    return urlunparse(parsed._replace(netloc=netloc))


def mask_text(text: str, secrets: list[str | None]) -> str:
    """Replace each known URL (and its password) inside free text, e.g. a driver error."""
    for url in secrets:
        if not url:
            continue
        text = text.replace(url, mask(url) or "")
        try:
            for entry in split_url(url).hosts:
                if entry.password:
                    text = text.replace(entry.password, MASK)
        except InvalidURL:
            pass
    return text


# --- transport URLs -------------------------------------------------------


# Schemes accepted without importing kombu (about 10-20 ms at start-up): oslo.messaging's
# own, and kombu transport names every kombu release since 4.0 has had. Any other
# scheme is decided by kombu's registry, as before (tests/test_urls.py checks both).
_WELL_KNOWN_SCHEMES = frozenset(_OSLO_SCHEMES) | {"amqp", "amqps", "pyamqp", "memory"}


def known_transport_schemes() -> set[str]:
    from kombu.transport import TRANSPORT_ALIASES

    return set(TRANSPORT_ALIASES) | set(_OSLO_SCHEMES)


def is_known_transport_scheme(scheme: str) -> bool:
    """Whether kombu or oslo.messaging knows ``scheme`` (kombu imported only for rare ones)."""
    return scheme in _WELL_KNOWN_SCHEMES or scheme in known_transport_schemes()


def validate_transport_url(url: str) -> SplitURL:
    """Check that ``url`` names a transport kombu (or oslo.messaging) knows, with sane ports.

    ``scheme:/path`` (no authority) is accepted as oslo.messaging accepts it:
    kolla and OpenStack-Ansible store cell0's transport as ``none:/``.
    """
    no_authority = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.\-]*):(/(?!/).*)?", url, re.DOTALL)
    if no_authority:
        url = f"{no_authority.group(1)}://{no_authority.group(2) or '/'}"
    parts = split_url(url)
    if not is_known_transport_scheme(parts.scheme):
        raise InvalidURL(f"unknown transport '{parts.scheme}' in {mask(url)}")
    for entry in parts.hosts:
        port = entry.port
        if port is not None and port != "" and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidURL(f"port '{port}' is not a valid port number in {mask(url)}")
        if entry.host.startswith("[") and "]" not in entry.host:
            raise InvalidURL(f"malformed IPv6 address in {mask(url)}")
    return parts


def kombu_urls(url: str) -> list[str]:
    """The transport URL as kombu connection URLs, one per host (kombu fails over between them)."""
    parts = split_url(url)
    scheme = _OSLO_SCHEMES.get(parts.scheme, parts.scheme)
    if scheme is None:
        return []
    query = "" if parts.query is None else f"?{parts.query}"
    return [f"{scheme}://{h.render(h.password)}{parts.path}{query}" for h in parts.hosts]


# --- templates ------------------------------------------------------------


def expand_template(url: str | None, local_url: str | None) -> str | None:
    """Fill Nova's ``{scheme}``, ``{hostname}``... placeholders from the local URL.

    Nova stores cell URLs as templates so per-host credentials need not be in
    the API database; every reader formats them against its own configuration.
    A template that cannot be filled is used as written, as Nova does.
    """
    if not url or "{" not in url or not local_url:
        return url
    try:
        parts = split_url(local_url)
    except InvalidURL:
        return url
    fields: dict[str, str] = {
        "scheme": parts.scheme,
        "path": parts.path.lstrip("/"),
        "query": parts.query or "",
        "fragment": "",
    }
    for index, entry in enumerate(parts.hosts, start=1):
        values = {
            "username": entry.user or "",
            "password": entry.password or "",
            "hostname": entry.hostname,
            "port": entry.port or "",
        }
        for key, value in values.items():
            fields[f"{key}{index}"] = value
            fields.setdefault(key, value)
    try:
        return url.format(**fields)
    except (KeyError, IndexError, ValueError):
        return url


# --- database URLs --------------------------------------------------------


def validate_database_url(url: str, *, names_database: bool = True) -> None:
    """Check ``url`` as a database connection: ``driver://``, a known driver, a numeric
    port, ``key=value`` query parameters the driver takes, and (``names_database``) a
    database name.

    Each failure is one line that shows the malformed part, passwords masked.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = mask_loose(url)
    scheme, sep, _rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise InvalidURL(f"Invalid database connection URL {shown}: it must start with "
                         "driver:// (e.g. mysql+pymysql://)")
    try:
        parts = split_url(url)
    except InvalidURL:
        parts = None
    for entry in parts.hosts if parts else ():
        port = entry.port
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidURL(f"Invalid database connection URL {shown}: port '{port}' is not "
                             "a port number (1-65535)")
    if parts and parts.query:
        for item in parts.query.split("&"):
            key, eq, _value = item.partition("=")
            if not eq or not key:
                raise InvalidURL(f"Invalid database connection URL {shown}: query parameter "
                                 f"'{_mask_query(item)}' is not key=value")
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:  # an ArgumentError too: first
        raise InvalidURL(f"Unknown database driver '{scheme}' in {shown}") from None
    except (ArgumentError, ValueError):
        raise InvalidURL(f"Invalid database connection URL: {shown}") from None
    if names_database and (not parsed.database or parsed.database == ":memory:"):
        raise InvalidURL(f"The database connection {shown} names no database")
    _check_driver_arguments(dialect, parsed, shown)


def _check_driver_arguments(dialect: Any, parsed: Any, shown: str) -> None:
    """The query parameters as the driver will get them: each a value of the right type
    and a keyword the driver takes (PyMySQL, psycopg; other drivers at connect time)."""
    import inspect

    try:
        _args, kwargs = dialect().create_connect_args(parsed)
    except (ValueError, TypeError) as exc:
        raise InvalidURL(f"Invalid query parameter in {shown}: {exc}") from None
    driver = parsed.get_driver_name()
    if driver == "pymysql":
        from pymysql.connections import Connection  # type: ignore[import-untyped]

        accepted = inspect.signature(Connection.__init__).parameters
        unknown = sorted(k for k in kwargs if k not in accepted)
        if unknown:
            raise InvalidURL(f"Unknown query parameter '{unknown[0]}' for PyMySQL in {shown}")
    elif driver == "psycopg":
        import psycopg
        from psycopg.conninfo import make_conninfo

        try:
            make_conninfo("", **{k: v for k, v in kwargs.items() if isinstance(v, str)})
        except psycopg.Error as exc:
            raise InvalidURL(f"Invalid query parameter in {shown}: "
                             f"{str(exc).splitlines()[0]}") from None


def mask_loose(url: str) -> str:
    """``url`` with its password masked, even when it does not parse as a URL (a missing
    ``//``, a bad port): the text stays as written, so the malformed part shows."""
    try:
        return split_url(url).render(hide_passwords=True)
    except InvalidURL:
        pass
    if "@" not in url:
        return url
    head, _, host = url.rpartition("@")
    prefix = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*[:/]*", head)
    start = prefix.end() if prefix else 0
    user, colon, _password = head[start:].partition(":")
    return f"{head[:start]}{user}{colon}{MASK if colon else ''}@{host}"


def derive_cell0_url(database_url: str | None) -> str:
    """cell0's database URL: the database name with ``_cell0`` added.

    For SQLite the suffix goes before the file's extension
    (``cell1.sqlite`` -> ``cell1_cell0.sqlite``). Only the name changes: the
    rest of the URL (password escaping, query string) is kept as written.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not database_url:
        raise InvalidURL(
            "Must specify --database_connection if [database]/connection is not set "
            "in the configuration file."
        )
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise InvalidURL(f"Invalid database connection URL: {mask(database_url)}") from None
    name = url.database
    if not name or name == ":memory:":
        raise InvalidURL(
            f"Cannot derive a cell0 database from {mask(database_url)}: it names no database"
        )
    if url.get_backend_name() == "sqlite":
        stem, ext = os.path.splitext(name)
        new_name = f"{stem}_cell0{ext}"
    else:
        new_name = f"{name}_cell0"
    wanted = url.set(database=new_name)
    for match in re.finditer("/" + re.escape(name) + r"(?=\?|$)", database_url):
        candidate = (
            database_url[: match.start()] + "/" + new_name + database_url[match.end() :]
        )
        try:
            if make_url(candidate) == wanted:
                return candidate
        except ArgumentError:
            continue
    return wanted.render_as_string(hide_password=False)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def mask_urls_in_text(text: str) -> str:
    """Mask every URL found in free text (a last line of defence for error messages)."""
    return _URL_IN_TEXT.sub(lambda m: mask(m.group(0)) or "", text)
