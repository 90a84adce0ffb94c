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


def test_ascii_widths_are_wcwidths_own():
    """The wcwidth stand-in answers printable ASCII as wcwidth does, for every width, and
    hands anything else (wide, combining, control, options) to wcwidth itself."""
    import wcwidth
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cellctl.lazyload import _AsciiWidths

    stand_in = _AsciiWidths("wcwidth")  # never loads: all its answers below are its own
    texts = st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126)),
                      st.text(min_size=1))

    @settings(max_examples=300, deadline=None)
    @given(texts, st.integers(min_value=-2, max_value=60))
    def same(text: str, dest: int) -> None:
        fresh = _AsciiWidths("wcwidth") if not text.isascii() or not text.isprintable() \
            else stand_in
        assert fresh.width(text) == wcwidth.width(text)
        for name in ("ljust", "rjust", "center"):
            assert getattr(fresh, name)(text, dest) == getattr(wcwidth, name)(text, dest)

    same()
    assert "__cellctl_module__" not in stand_in.__dict__  # ASCII never loaded it


def test_a_table_renders_without_wcwidth_for_ascii_and_with_it_otherwise():
    code = ("import sys\nfrom cellctl.lazyload import prettytable_module\n"
            "t = prettytable_module().PrettyTable(['Name', 'Disabled'])\n"
            "t.add_row(['one', False]); s = t.get_string()\n"
            "print(type(sys.modules['wcwidth']).__name__, '__cellctl_module__' in "
            "sys.modules['wcwidth'].__dict__)\n"
            "t.add_row(['\u00e9t\u00e9 \u4e2d', True]); t.get_string()\n"
            "print('__cellctl_module__' in sys.modules['wcwidth'].__dict__ or "
            "type(sys.modules['wcwidth']).__name__)")
    assert run(code) == ["_AsciiWidths", "False", "module"]


def test_tables_are_prettytables_own():
    """Same bytes as prettytable with wcwidth loaded eagerly, ASCII or not, wrapped or not."""
    code = ("import sys\n{setup}\nimport prettytable\n"
            "t = prettytable.PrettyTable(['Name', 'UUID', 'Transport URL', 'Disabled'])\n"
            "t.add_row(['one', 'ead355d9-390b-4dae-a3f0-d992c4acd2bf', 'rabbit://g:*@h/',"
            " False])\n"
            "t.add_row(['cell0', '00000000-0000-0000-0000-000000000000', 'none:/', True])\n"
            "t.add_row(['x', '', None, 1.5])\nprint(t.get_string())\nt.max_table_width = 40\n"
            "print(t.get_string())\n")
    lazy = subprocess.run([sys.executable, "-c", code.format(
        setup="from cellctl.lazyload import prettytable_module\nprettytable_module()")],
        capture_output=True, text=True, timeout=60, check=True).stdout
    eager = subprocess.run([sys.executable, "-c", code.format(setup="import wcwidth")],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert lazy == eager
    assert "|  one  |" in lazy
