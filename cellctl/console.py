"""The ``cellctl`` program: signal handlers first, then the command line.

SIGINT (Ctrl-C) and SIGTERM end every command the same way at any moment
(start-up, settings, a query, a batch, the progress bar): one line on
stderr, exit 130 or 143 (128 + the signal's number, as a shell reports it),
no traceback. Never 0, 1 (``map_instances``' "run me again") or 255. What
was committed stays; a rerun finishes the work. The handlers are installed
before click, the settings or any driver is imported.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sys
from typing import NoReturn

from cellctl.interrupts import EXIT_CODES, install, received, record


def exit_interrupted() -> NoReturn:
    """One line on stderr and the signal's exit code, at once: worker threads waiting on a
    database are not waited for (the server rolls their transactions back)."""
    signum = received() or signal.SIGINT
    text = (f"Interrupted by {signal.Signals(signum).name}: committed work is kept; "
            "run the command again to finish")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        if _json_format(sys.argv[1:]):
            sys.stderr.write(json.dumps({"level": "error", "message": text}) + "\n")
        else:
            sys.stderr.write(f"\nERROR: {text}\n" if sys.stderr.isatty() else f"ERROR: {text}\n")
        sys.stderr.flush()
    os._exit(EXIT_CODES.get(signum, 130))


def _json_format(args: list[str]) -> bool:
    return "--format=json" in args or any(
        a == "--format" and b == "json" for a, b in itertools.pairwise(args))


def main() -> NoReturn:
    """``cellctl``; run under the name ``nova-manage`` (a symlink), the stand-in."""
    _run(stand_in=os.path.basename(sys.argv[0]) == "nova-manage")


def nova_manage() -> NoReturn:
    """``cellctl-nova-manage``: the stand-in under any name."""
    _run(stand_in=True)


def _run(*, stand_in: bool) -> NoReturn:
    install(exit_interrupted)
    try:
        if stand_in:
            from cellctl.cli import nova_manage as stand_in_main

            stand_in_main.main()
        from cellctl.cli import main as command_line

        command_line(prog_name="cellctl")
    except BaseException:
        # Late signals stay pending: the exit below is the command's own.
        signal.pthread_sigmask(signal.SIG_BLOCK, set(EXIT_CODES))
        pending = signal.sigpending() & set(EXIT_CODES)
        if received() is None and pending:
            record(min(pending))
        if received() is not None:
            exit_interrupted()
        raise
    raise SystemExit(0)  # pragma: no cover - click's standalone main always exits
