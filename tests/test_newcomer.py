"""Issue 22: the first minutes of a newcomer are safe.

The demo switch never touches a deployment named by a nova.conf in the default
search; test-data commands refuse such a database unless forced; malformed URLs
are one line and exit 1; the helpful lines go to stderr, never to stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD_URLS = [
    ("mysql+pymysql://root:hunter2@127.0.0.1:abc/nc_api", "port 'abc'"),
    ("mysql+pymysql//root:hunter2@127.0.0.1/nc_api", "mysql+pymysql//root:****@127.0.0.1/nc_api"),
    ("mysql+nosuchdriver://root:hunter2@127.0.0.1/nc_api", "'mysql+nosuchdriver'"),
    ("mysql+pymysql://root:hunter2@127.0.0.1/nc_api?charset", "'charset'"),
]


def cellctl(*args: str, env: dict[str, str],
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cellctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELLCTL_", "OS_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), "CELLCTL_STATE_DIR": str(tmp_path / "state"), **extra}


@pytest.mark.parametrize(("url", "shown"), BAD_URLS)
def test_malformed_urls_exit_1_with_one_line(tmp_path, url, shown):
    env = clean_env(tmp_path)
    for args in (["--api-database-connection", url, "list_cells"],
                 ["create_cell", "--database_connection", url, "--transport-url", "none:///"]):
        done = cellctl(*args, env=env)
        assert done.returncode == 1, done
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and shown in errors[0], done.stderr
        assert "hunter2" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr
