"""Run localstripe for the tests: loopback only, a fresh in-memory store, nothing written to disk.

localstripe's own CLI binds every interface, reloads /tmp/localstripe.pickle and
rewrites it on every POST (which slows it to a crawl). This launcher builds the
same aiohttp app without any of that:

    python -m tests.payments.localstripe_server PORT
"""
import sys

from aiohttp import web
from localstripe import resources, webhooks


def _no_disk(self):
    """localstripe's Store saves itself on every write; the tests keep it in memory."""


def build_app():
    """localstripe's aiohttp app on an empty store that never touches the disk."""
    resources.Store.dump_to_disk = _no_disk
    resources.Store.try_load_from_disk = _no_disk
    from localstripe.server import app  # imported after the patch: the module builds its app at import

    resources.store.clear()

    async def forget_webhooks(request):
        # localstripe keeps registered webhooks outside its store, so DELETE /_config/data keeps them.
        webhooks._webhooks.clear()
        return web.Response()

    app.router.add_delete("/_config/webhooks", forget_webhooks)
    return app


def run(port):
    """Serve localstripe on 127.0.0.1:``port`` until SIGINT or SIGTERM."""
    web.run_app(build_app(), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m tests.payments.localstripe_server PORT")
    run(int(sys.argv[1]))
