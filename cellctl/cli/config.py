"""``cellctl config``: every resolved setting and where it came from."""

from __future__ import annotations

from cellctl.cli import format_option, main, run


@main.command("config", writes=False)
@format_option
def config(fmt: str | None) -> None:
    """Show resolved settings and their sources (passwords masked)."""
    from cellctl.ops.config import show_config

    run(show_config, fmt=fmt)
