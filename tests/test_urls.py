"""URL parsing, masking, transport validation and cell0 naming (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellctl.errors import InvalidURL
from cellctl.urls import (
    derive_cell0_url,
    expand_template,
    kombu_urls,
    mask,
    mask_urls_in_text,
    validate_database_url,
    validate_transport_url,
)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rabbit://u:p@h:5672/", "rabbit://u:****@h:5672/"),
        ("mysql+pymysql://nova:pa:ss@db/nova?charset=utf8",
         "mysql+pymysql://nova:****@db/nova?charset=utf8"),
        ("rabbit://u1:p1@h1:5672,u2:p2@h2:5672/vh", "rabbit://u1:****@h1:5672,u2:****@h2:5672/vh"),
        ("none:///", "none:///"),
        ("sqlite:////tmp/nova.db", "sqlite:////tmp/nova.db"),
        ("sqlite:///relative.sqlite", "sqlite:///relative.sqlite"),
        ("fake://", "fake://"),
        ("memory:///", "memory:///"),
        ("mysql+pymysql://nova:abcd0123@AB@controller/nova",
         "mysql+pymysql://nova:****@controller/nova"),
        ("mysql+pymysql://nova:abcd0123/AB@controller/nova",
         "mysql+pymysql://nova:****@controller/nova"),
        ("mysql+pymysql://nova:abcd0123?AB@controller/nova",
         "mysql+pymysql://nova:****@controller/nova"),
        ("amqp://guest@h//", "amqp://guest@h//"),
        ("mysql://u:p@h/db?password=x&charset=utf8", "mysql://u:****@h/db?password=****&charset=utf8"),
        ("redis://:secret@h:6379/0", "redis://:****@h:6379/0"),
        ("rabbit://[::1]:5672/", "rabbit://[::1]:5672/"),
        ("rabbit://u:p@[::1]:5672/", "rabbit://u:****@[::1]:5672/"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_keeps_shape(url, masked):
    assert mask(url) == masked


_password = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="\n\r\t "), min_size=4, max_size=20
).filter(lambda p: "@" not in p[-1:] and not p.isdigit())


@given(
    user=st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    password=_password,
    hosts=st.lists(st.from_regex(r"[a-z]{2,8}(:[0-9]{2,5})?", fullmatch=True),
                   min_size=1, max_size=3),
    path=st.sampled_from(["/", "/nova", "/vh?ssl=1", ""]),
)
def test_mask_never_shows_the_password(user, password, hosts, path):
    netloc = ",".join(f"{user}:{password}@{h}" for h in hosts)
    url = f"rabbit://{netloc}{path}"
    masked = mask(url)
    assert password not in masked
    assert masked.startswith("rabbit://")
    assert f"{user}:****@" in masked


def test_mask_urls_in_free_text():
    text = "could not reach mysql+pymysql://nova:s3cr3t@db/nova (timeout)"
    assert mask_urls_in_text(text) == "could not reach mysql+pymysql://nova:****@db/nova (timeout)"


@pytest.mark.parametrize(
    ("url", "scheme", "hosts"),
    [("rabbit://u:p@h1:5672,u:p@h2:5672/vh", "rabbit", [("h1:5672", "5672"), ("h2:5672", "5672")]),
     ("amqp://guest:guest@localhost:5672//", "amqp", [("localhost:5672", "5672")]),
     ("memory:///", "memory", [("", None)]),
     ("redis://localhost:6379/0", "redis", [("localhost:6379", "6379")]),
     ("none:///", "none", [("", None)]),
     ("rabbit://[::1]:5672/", "rabbit", [("[::1]:5672", "5672")])],
)
def test_valid_transport_urls(url, scheme, hosts):
    """A valid URL is accepted and read as it is written: its scheme, every host, its port."""
    parts = validate_transport_url(url)
    assert parts.scheme == scheme
    assert [(entry.host, entry.port) for entry in parts.hosts] == hosts


def test_well_known_transport_schemes_are_kombus_own_answer():
    """The schemes accepted without importing kombu are exactly ones its registry (or
    oslo.messaging) accepts; the fast path accepts nothing kombu would refuse."""
    from cellctl.urls import _WELL_KNOWN_SCHEMES, known_transport_schemes

    assert known_transport_schemes() >= _WELL_KNOWN_SCHEMES
    assert {"rabbit", "none", "amqp", "memory"} <= _WELL_KNOWN_SCHEMES


def test_rabbit_url_is_checked_without_kombu():
    """kombu (10-20 ms at start-up) is imported only for a scheme outside the well-known
    ones; redis is decided by kombu's registry."""
    import subprocess
    import sys

    code = ("import sys\nfrom cellctl.urls import validate_transport_url as v\n"
            "v('rabbit://u:p@h:5672/'); v('none:/'); print('kombu' in sys.modules)\n"
            "v('redis://h:6379/0'); print('kombu' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["False", "True"]


@pytest.mark.parametrize(
    ("url", "message"),
    [("rabit://u:p@h/", "unknown transport 'rabit'"),
     ("http://fake-transport-url", "unknown transport 'http'"),
     ("not-a-url", "No scheme specified"),
     ("rabbit://h:abc/", "port 'abc'"),
     ("rabbit://h:99999/", "port '99999'"),
     ("rabbit://[::1:5672/", "host part")],
)
def test_invalid_transport_urls(url, message):
    with pytest.raises(InvalidURL, match=message):
        validate_transport_url(url)


def test_kombu_urls_split_oslo_multi_host():
    assert kombu_urls("rabbit://u:p@h1:5672,v:q@h2:5673/vh?ssl=1") == [
        "amqp://u:p@h1:5672/vh?ssl=1", "amqp://v:q@h2:5673/vh?ssl=1"]
    assert kombu_urls("none:///") == []
    assert kombu_urls("memory:///") == ["memory:///"]


def test_expand_template():
    local = "rabbit://guest:pw@host:1234/vh"
    assert expand_template("{scheme}://other-{hostname}:{port}", local) == "rabbit://other-host:1234"
    assert expand_template("{scheme}://{username}:{password}@x/{path}", local) == \
        "rabbit://guest:pw@x/vh"
    assert expand_template("{nonsense}://x", local) == "{nonsense}://x"
    assert expand_template("rabbit://plain/", local) == "rabbit://plain/"
    multi = "rabbit://a:1@h1:5672,b:2@h2:5673/"
    assert expand_template("{hostname2}:{port2}", multi) == "h2:5673"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "mysql+pymysql://u:p@h", "nodriver://h/db", "junk"],
)
def test_invalid_database_urls(url):
    with pytest.raises(InvalidURL):
        validate_database_url(url)


def test_cell0_derivation_needs_a_url():
    with pytest.raises(InvalidURL, match="Must specify --database_connection"):
        derive_cell0_url(None)


@pytest.mark.parametrize(
    ("url", "shown"),
    [("mysql+pymysql://root:secret@127.0.0.1:abc/nc_api", "port 'abc'"),
     ("mysql+pymysql://root@127.0.0.1:99999/nc_api", "port '99999'"),
     ("mysql+pymysql//root:secret@127.0.0.1/nc_api", "mysql+pymysql//root:****@127.0.0.1"),
     ("mysql+nosuchdriver://root@127.0.0.1/nc_api", "Unknown database driver 'mysql+nosuchdriver'"),
     ("mysql+pymysql://root@127.0.0.1/nc_api?charset", "query parameter 'charset'"),
     ("mysql+pymysql://root@127.0.0.1/nc_api?nosuchoption=1", "'nosuchoption'"),
     ("mysql+pymysql://root@127.0.0.1/nc_api?connect_timeout=abc", "'abc'"),
     ("postgresql+psycopg://postgres@127.0.0.1/nc_api?nosuchoption=1", "\"nosuchoption\"")],
)
def test_malformed_database_urls_show_the_malformed_part(url, shown):
    """Issue 22: one line naming the typo, never the password."""
    with pytest.raises(InvalidURL) as raised:
        validate_database_url(url)
    assert shown in str(raised.value)
    assert "secret" not in str(raised.value)
