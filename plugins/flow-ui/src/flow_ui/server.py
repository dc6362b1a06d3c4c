"""The HTTP server: the standard library's threading server, quiet, read-only (GET and HEAD).

A request that fails unexpectedly gets a 500 page with one sentence; the traceback goes to
the server's standard error, never to the browser.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import pages
from .queries import Queries
from .routes import HTML, Answer, Router


class Handler(BaseHTTPRequestHandler):
    server: "UIServer"
    server_version = "FlowUI"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._send(self._answer(), body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(self._answer(), body=False)

    def _answer(self) -> Answer:
        try:
            return self.server.router.answer(self.path)
        except Exception as exc:  # any other failure: a sentence for the browser, the details here
            import traceback

            traceback.print_exc(file=sys.stderr)
            return Answer(500, HTML, pages.error_page(500, f"the UI could not answer this request: "
                                                           f"{type(exc).__name__}"))

    def _send(self, answer: Answer, body: bool) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", answer.policy)
        self.end_headers()
        if body:
            self.wfile.write(answer.body)

    def _refuse(self) -> None:
        self._send(Answer(405, HTML, pages.error_page(405, "the UI is read-only")), body=True)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # quiet: one line at start is enough
        pass


class UIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], router: Router):
        self.router = router
        super().__init__(address, Handler)


def make_server(host: str = "127.0.0.1", port: int = 8324, queries: Queries | None = None) -> UIServer:
    """A server bound to ``host:port`` (port 0: a free one) over the configured backends."""
    return UIServer((host, port), Router(queries or Queries()))
