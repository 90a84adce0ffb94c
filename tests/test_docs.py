"""The documentation builds, warnings as errors, and says what the code does.

Both builds CI relies on run here (HTML and the cellctl(1) man page), so the
suite's single command covers them. The command reference is generated from
the click commands by sphinx-click; these tests check that it, and the exit
status list, name every command there is, and that the shell completion the
docs describe really produces a working script for each shell.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from docutils import nodes

from cellctl.cli import load_all_commands, main

load_all_commands()  # what --help lists, registered for the walks below

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "doc"
BIN = Path(sys.executable).parent
CELLCTL = BIN / "cellctl"


def command_paths(group: click.Group = main, prefix: str = "") -> list[str]:
    """Every command and sub-command, as typed after ``cellctl`` (cell_v2 repeats them)."""
    paths = []
    for name, command in sorted(group.commands.items()):
        if name == "cell_v2":
            continue
        paths.append(prefix + name)
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, prefix + name + " "))
    return paths


def leaf_commands() -> list[str]:
    return [p for p in command_paths()
            if not isinstance(main.commands[p.split()[0]], click.Group) or " " in p]


def sphinx_build(builder: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
         "-d", str(out / "doctrees"), str(DOC), str(out / builder)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def roff_text(roff: str) -> str:
    """The words of a man page source, without font changes and escapes."""
    text = re.sub(r"\\f[BIPR]", "", roff)
    return text.replace("\\-", "-").replace("\\%", "").replace("\\&", "").replace("\\(aq", "'")


@pytest.fixture(scope="module")
def man_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("man")
    built = sphinx_build("man", out)
    assert built.returncode == 0, built.stderr
    assert built.stderr == "", built.stderr
    return (out / "man" / "cellctl.1").read_text()


def test_html_builds_without_warnings(tmp_path):
    built = sphinx_build("html", tmp_path)
    assert built.returncode == 0, built.stderr
    assert built.stderr == "", built.stderr
    html = tmp_path / "html"
    reference = (html / "cli" / "cellctl.html").read_text()
    for path in command_paths():
        # sphinx-click gives every command a section, titled with its path (conf.py).
        anchor = nodes.make_id(f"cellctl {path}")
        assert f'<section id="{anchor}">' in reference, path
        assert f'>{path}<a class="headerlink" href="#{anchor}"' in reference, path
    for page in ("user/install", "user/quickstart", "user/settings", "user/completion",
                 "admin/existing-nova", "admin/commands", "admin/nova-manage",
                 "contributor/testing", "contributor/benchmarks", "api"):
        assert (html / f"{page}.html").is_file(), page
    index = (html / "index.html").read_text()
    assert 'href="api.html"' in index  # the glob of top-level pages found it


def test_man_page_lists_every_command(man_page):
    sections = [roff_text(line[4:]).strip() for line in man_page.splitlines()
                if line.startswith(".SS ")]
    # In the order doc/cli/cellctl.rst's :commands: gives; none missing, none extra.
    assert sections[0] == "cellctl" and sections[-1] == "cell_v2"
    assert sorted(sections[1:-1]) == sorted(command_paths())
    text = roff_text(man_page)
    assert ".SH NAME" in text and ".SH SYNOPSIS" in text
    exit_status = text.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    for command in leaf_commands():
        assert f".B {command}" in exit_status or f", {command}" in exit_status, command
    # Every sub-command of cell_v2 is listed under it.
    cell_v2 = text.split(".SS cell_v2", 1)[1].split(".SH ", 1)[0]
    for name in main.commands["cell_v2"].commands:
        assert name in cell_v2, name


def test_man_page_links_are_text(man_page):
    # docutils 0.22 prints every internal link as "<>" (sphinx-doc/sphinx#14427),
    # which setup.cfg's docutils pin avoids.
    assert "<>" not in roff_text(man_page)
    assert "Differences from nova-manage" in roff_text(man_page)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


@pytest.mark.parametrize(("shell", "registers"), [
    ("bash", "complete -o nosort -F _cellctl_completion cellctl"),
    ("zsh", "compdef _cellctl_completion cellctl"),
    ("fish", "complete --no-files --command cellctl"),
])
def test_completion_script(shell, registers):
    script = subprocess.run([str(CELLCTL)], env=_env(_CELLCTL_COMPLETE=f"{shell}_source"),
                            capture_output=True, text=True, timeout=30)
    assert script.returncode == 0, script.stderr
    assert "_cellctl_completion" in script.stdout
    assert registers in script.stdout
    # Ask for candidates as the script does: both spellings of a command complete.
    # (bash and zsh pass the index of the word being completed, fish the word.)
    for words, index in (("cellctl list_", "1"), ("cellctl cell_v2 list_", "2")):
        cword = "list_" if shell == "fish" else index
        answer = subprocess.run(
            [str(CELLCTL)], capture_output=True, text=True, timeout=30,
            env=_env(_CELLCTL_COMPLETE=f"{shell}_complete", COMP_WORDS=words, COMP_CWORD=cword),
        )
        assert answer.returncode == 0, answer.stderr
        assert "list_cells" in answer.stdout and "list_hosts" in answer.stdout, answer.stdout
        assert "map_cell0" not in answer.stdout


def test_bash_completes_through_the_sourced_script():
    # bash is always there: source the script and call the function bash would call.
    check = (
        'eval "$(_CELLCTL_COMPLETE=bash_source cellctl)" && '
        "COMP_WORDS=(cellctl discover_hosts --ver) COMP_CWORD=2 && "
        '_cellctl_completion cellctl && printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", check], env=_env(), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["--verbose"]
