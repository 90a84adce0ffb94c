"""Sphinx configuration for cellctl's documentation.

Build the HTML pages and the ``cellctl(1)`` man page (warnings are errors, as
in CI: ``tests/test_docs.py`` runs both builds)::

    sphinx-build -W -b html doc build/html
    sphinx-build -W -b man doc build/man && man -l build/man/cellctl.1
"""

from __future__ import annotations

import click
from docutils import nodes
from sphinx.application import Sphinx

import cellctl
from cellctl.cli import load_all_commands

# sphinx-click reads each group's commands: every module registers its own.
load_all_commands()

project = "cellctl"
author = "the cellctl authors"
copyright = "the cellctl authors; Apache-2.0"
version = release = cellctl.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_click",
]

root_doc = "index"
exclude_patterns = ["_build", "**/*.inc"]
nitpicky = False
# Every "WARNING:" stops the build when run with -W; keep the build quiet.
suppress_warnings: list[str] = []

# Autodoc: the public Python API (doc/api.rst). Signatures keep the source's
# type hints as written; members in source order.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = f"cellctl {release}"
html_static_path: list[str] = []

# The man page: doc/cli/cellctl.rst, with its toctree inlined.
man_pages = [
    ("cli/cellctl", "cellctl",
     "manage the cells v2 control plane: cells, host and instance mappings, services",
     [author], 1),
]
# Links inside the documentation have no URL of their own in a man page.
man_show_urls = False


def _command_paths(group: click.Group, prefix: str) -> set[str]:
    paths = set()
    for name, command in group.commands.items():
        paths.add(f"{prefix} {name}")
        if isinstance(command, click.Group):
            paths |= _command_paths(command, f"{prefix} {name}")
    return paths


def _full_command_titles(app: Sphinx, doctree: nodes.document) -> None:
    """Title each generated command section with its whole path ("api_db sync").

    sphinx-click titles a sub-command with its own name ("sync"); in the man
    page, where the hierarchy is flattened, "sync" would appear once under
    api_db and once under db. sphinx-click names the section with the full
    command path ("cellctl api_db sync"), which is how it is recognised here.
    """
    from cellctl.cli import main

    paths = _command_paths(main, "cellctl")
    for section in doctree.findall(nodes.section):
        path = section["names"][0] if section["names"] else ""
        title = section[0] if section.children else None
        if path in paths and isinstance(title, nodes.title):
            title.children = [nodes.Text(path.removeprefix("cellctl "))]


def setup(app: Sphinx) -> dict[str, object]:
    # Before Sphinx collects titles for the tables of contents (priority 500).
    app.connect("doctree-read", _full_command_titles, priority=400)
    return {"parallel_read_safe": True}
# Keep --options as typed: smart quotes turn "--" into an en dash in HTML.
smartquotes = False
