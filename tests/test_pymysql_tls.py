"""PyMySQL's default ("preferred") TLS context, built only when the server offers TLS."""

from __future__ import annotations

import ssl

import pymysql
import sqlalchemy as sa

from cellctl.db import create_engine
from cellctl.pymysql_tls import OnDemandContext, connect


def _cipher(cursor) -> str:
    cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    row = cursor.fetchone()
    return row[1] if row else ""


def test_same_tls_as_pymysql_and_no_context_unless_offered(mysql_factory):
    """On the test server the connection is as encrypted as plain PyMySQL's (the same
    cipher, or none), and the context exists only if the server offered TLS."""
    url = sa.engine.make_url(mysql_factory.new("tls"))
    params = {"host": url.host, "port": url.port or 3306, "user": url.username,
              "password": url.password or "", "database": url.database}
    plain = pymysql.connect(**params)
    ours = connect(**params)
    try:
        with plain.cursor() as a, ours.cursor() as b:
            assert _cipher(b) == _cipher(a)
            offered = bool(ours.server_capabilities & pymysql.constants.CLIENT.SSL)
        assert isinstance(ours.ctx, OnDemandContext)
        assert ours.ctx.built == offered
        assert bool(_cipher_of(ours)) == offered
    finally:
        plain.close()
        ours.close()


def _cipher_of(conn) -> str:
    with conn.cursor() as cursor:
        return _cipher(cursor)


def test_engines_connect_through_it(mysql_factory):
    engine = create_engine(mysql_factory.new("tls"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            assert isinstance(conn.connection.dbapi_connection.ctx, OnDemandContext)
    finally:
        engine.dispose()


def test_the_context_built_is_pymysqls_own(mysql_factory):
    """Built on demand, the context is what PyMySQL builds eagerly: same checks, same flags."""
    url = sa.engine.make_url(mysql_factory.new("tls"))
    params = {"host": url.host, "port": url.port or 3306, "user": url.username,
              "password": url.password or ""}
    plain = pymysql.connect(**params)
    ours = connect(**params)
    try:
        theirs, mine = plain.ctx, ours.ctx.context()
        assert isinstance(theirs, ssl.SSLContext) and isinstance(mine, ssl.SSLContext)
        for attribute in ("verify_mode", "check_hostname", "verify_flags", "options",
                          "protocol", "minimum_version", "maximum_version"):
            assert getattr(mine, attribute) == getattr(theirs, attribute), attribute
    finally:
        plain.close()
        ours.close()


def test_explicit_ssl_options_go_to_pymysql_unchanged(mysql_factory):
    url = sa.engine.make_url(mysql_factory.new("tls"))
    params = {"host": url.host, "port": url.port or 3306, "user": url.username,
              "password": url.password or ""}
    ours = connect(**params, ssl_disabled=True)
    try:
        assert ours.ssl is False and not hasattr(ours, "ctx")
    finally:
        ours.close()
