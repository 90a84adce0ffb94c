"""oslo.config without the start-up cost of the libraries it rarely needs.

``oslo_config.types`` imports netaddr and rfc3986 at its top (for the
IPAddress/HostAddress and URI option types) and ``oslo_config.cfg`` imports
stevedore (for ``[DEFAULT] config_source`` drivers): together about 40-60 ms of
a command's start-up on this project's machine, for option types the settings
cellctl reads seldom have. Before oslo.config is first imported each gets a
stand-in in ``sys.modules`` that imports the real module on the first read of
one of its attributes (under a lock: threads may be first together) and from
then on holds the same names. So an option that needs one gets the same module
and the same answer, and a run that needs none never loads it.

(``importlib.util.LazyLoader`` does not serve here: every later ``import name``
reads the module's ``__spec__``, which loads it at once.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

# Used by oslo.config only inside functions (type checks, source drivers).
DEFERRED = ("netaddr", "rfc3986", "stevedore")

_LOCK = threading.RLock()


def oslo_config_cfg() -> ModuleType:
    """``oslo_config.cfg``, its rarely used dependencies deferred on first import."""
    if "oslo_config.cfg" not in sys.modules:
        for name in DEFERRED:
            _defer(name)
    from oslo_config import cfg

    return cfg


class _Deferred(ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __getattr__(self, attr: str) -> Any:  # only for names not (yet) in __dict__
        return getattr(_load(self), attr)


def _defer(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:  # missing: oslo.config's own import says so
        return
    stand_in = _Deferred(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in


def _load(stand_in: _Deferred) -> ModuleType:
    name = stand_in.__name__
    with _LOCK:
        real = stand_in.__dict__.get("__cellctl_module__")
        if real is None:
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            real = importlib.import_module(name)
            stand_in.__dict__.update(real.__dict__)
            stand_in.__dict__["__cellctl_module__"] = real
    return real
