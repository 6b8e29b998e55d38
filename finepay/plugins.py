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
