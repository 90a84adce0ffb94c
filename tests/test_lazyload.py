"""oslo.config's rarely used dependencies load on first use, with the same answers."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.split()


def test_deferred_until_used():
    """Reading settings from a nova.conf leaves netaddr, rfc3986, stevedore unloaded."""
    code = ("import sys, tempfile, os\n"
            "from cellctl.settings import resolve\n"
            "d = tempfile.mkdtemp(); p = os.path.join(d, 'nova.conf')\n"
            "open(p, 'w').write('[api_database]\\nconnection = sqlite:////tmp/x.db\\n')\n"
            "resolve(config_paths=(('file', p),), api_database_connection=None)\n"
            "print(*(type(sys.modules[n]).__name__ for n in ('netaddr', 'rfc3986', 'stevedore')))")
    assert run(code) == ["_Deferred"] * 3


@pytest.mark.parametrize(("type_", "value"), [
    ("IPAddress()", "10.0.0.1"), ("IPAddress()", "::1"), ("IPAddress()", "10.0.0."),
    ("HostAddress()", "nova-1.example"), ("URI()", "http://h:80/x"), ("URI()", "not a uri"),
])
def test_same_answer_as_an_eager_import(type_, value):
    """An option type that needs a deferred module loads it and answers as before."""
    code = ("import sys\n{setup}\nfrom oslo_config import types\n"
            "try:\n    print(repr(types.{type_}({value!r})).replace(' ', '_'))\n"
            "except ValueError as exc:\n    print('ValueError:', str(exc).replace(' ', '_'))\n")
    lazy = run(code.format(setup="from cellctl.lazyload import oslo_config_cfg\n"
                                 "oslo_config_cfg()", type_=type_, value=value))
    eager = run(code.format(setup="", type_=type_, value=value))
    assert lazy == eager


def test_import_after_first_use_gets_the_real_module():
    code = ("from cellctl.lazyload import oslo_config_cfg\noslo_config_cfg()\n"
            "from oslo_config import types\nimport netaddr\n"
            "print(type(netaddr).__name__, types.netaddr.IPAddress is netaddr.IPAddress)\n"
            "types.IPAddress()('10.0.0.1')\nimport netaddr as again\n"
            "print(type(again).__name__, types.netaddr.valid_ipv4 is again.valid_ipv4)")
    assert run(code) == ["_Deferred", "True", "module", "True"]
