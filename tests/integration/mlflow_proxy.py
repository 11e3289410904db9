"""A real HTTP front for a test MLflow server, serving from a thread: it passes every request through,
except those whose path holds a fragment it is told to refuse, which get a canned answer (an old
server's 404, an overloaded server's 503)."""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse

# MLflow 2.x servers (DagsHub runs 2.x) answer 404 on MLflow 3's logged-model API
OLD_SERVER = {"/logged-models": (404, b"<h1>Not Found</h1>")}


class MlflowProxy(http.server.ThreadingHTTPServer):
    """`refused`: path fragment -> (status, body); change it at any time. `close()` when done."""

    def __init__(self, upstream: str, refused: dict[str, tuple[int, bytes]] | None = None):
        self.upstream = urllib.parse.urlparse(upstream)
        self.refused = dict(refused or {})
        super().__init__(("127.0.0.1", 0), _Relay)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


class _Relay(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        refused = [answer for fragment, answer in self.server.refused.items() if fragment in self.path]
        if refused:
            status, payload = refused[0]
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        conn.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay
