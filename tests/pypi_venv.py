"""Throwaway virtualenvs of OpenStack services from PyPI, cached for the tests.

One builder for every service the tests run for real (nova's ``nova-manage``,
Ironic's API): a ``PypiVenv`` names the package, its version, the program
that must be there and the import that must work. ``cached_venv`` builds it
once under ``~/.cache/cellctl-tests`` (under a file lock, so two xdist
workers never build it at once) and rebuilds it when broken; an environment
variable may point at an existing one instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PY = f"py{sys.version_info.major}.{sys.version_info.minor}"
_COMPLETE = ".cellctl-complete"  # written last: the install finished


@dataclass(frozen=True)
class PypiVenv:
    package: str  # the distribution installed, e.g. "nova"
    version: str
    program: str  # bin/<program> must exist, e.g. "nova-manage"
    module: str  # must import, e.g. "nova.cmd.manage"
    env_var: str  # names an existing virtualenv instead

    @property
    def requirements(self) -> list[str]:
        return [f"{self.package}=={self.version}", "PyMySQL"]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cellctl-tests"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv_works(spec: PypiVenv, venv: Path) -> bool:
    """Installed completely (marker written last), the package at its version, and
    PyMySQL and ``spec.module`` import."""
    if not (venv / _COMPLETE).exists() or not (venv / "bin" / spec.program).exists():
        return False
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         f"import importlib.metadata as m, pymysql, {spec.module};"
         f" print(m.version({spec.package!r}))"],
        capture_output=True, text=True, timeout=120,
    )
    return check.returncode == 0 and check.stdout.strip() == spec.version


def build_venv(spec: PypiVenv, venv: Path) -> None:
    """Create ``venv`` with ``spec``'s package from PyPI; RuntimeError saying why it failed."""
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", *spec.requirements],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(command[:3])} failed: {' | '.join(tail)}")
    (venv / _COMPLETE).write_text(spec.version + "\n")
    if not venv_works(spec, venv):
        raise RuntimeError(f"{spec.package} installed but `import {spec.module}` fails")


def cached_venv(spec: PypiVenv) -> Path:
    """The cached virtualenv of ``spec``, built (or rebuilt if broken) on first use.

    ``spec.env_var`` points at an existing one instead.
    """
    given = os.environ.get(spec.env_var)
    if given:
        venv = Path(given)
        if not (venv / "bin" / spec.program).exists():
            raise RuntimeError(f"{spec.env_var}={given} has no bin/{spec.program}")
        return venv
    venv = cache_root() / f"{spec.package}-{spec.version}-{PY}"
    with file_lock(venv.with_name(venv.name + ".lock")):
        if not venv_works(spec, venv):
            build_venv(spec, venv)
    return venv
