"""Adapters a deployment installs: the entry points of one group (gateways, simulators, e-receipt issuers, senders)."""
import sys
from functools import lru_cache
from importlib.metadata import entry_points as installed_entry_points


def entry_points(*, group, name=None):
    """The installed entry points of ``group`` (only those called ``name`` when given), in the stdlib's order.

    Reading them means reading every installed distribution's metadata
    (about 10 ms), and each app asks a dozen times as its areas register; the
    answer is kept for as long as sys.path is the same, so a distribution
    added to the path (a plug-in installed by a test) is still found.
    """
    return tuple(ep for ep in _group(group, tuple(sys.path)) if name is None or ep.name == name)


@lru_cache(maxsize=32)
def _group(group, _path):
    return tuple(installed_entry_points(group=group))


def names(group):
    """The names of the installed entry points of ``group``, sorted."""
    return sorted(ep.name for ep in entry_points(group=group))


def shipped(group, package):
    """The entry points of ``group`` that FinePay's own ``package`` ships (its modules' names start with it)."""
    return [ep for ep in entry_points(group=group) if ep.module.startswith(package + ".")]


def load_class(group, name, base, setting, error=ValueError):
    """The class registered as ``name`` in ``group``, a subclass of ``base``; ``error`` naming ``setting`` otherwise."""
    matches = entry_points(group=group, name=name)
    if not matches:
        raise error(f"{setting} names {name!r}, which is not installed; available: {names(group)}")
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise error(f"entry point {name!r} is not a {base.__name__} subclass")
    return cls
