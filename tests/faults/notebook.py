"""The fault suite's "single-user server": answers 200 on the port the wrapper chose.

Run by ``firecrestspawner-singleuser`` inside each batch job instead of
``jupyterhub-singleuser``, so that 20 users start in seconds on a 2-core CI
machine; the hub, the proxy, the wrapper and the emulator are the real ones.
"""

import http.server
import os
from urllib.parse import urlsplit


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
http.server.ThreadingHTTPServer(
    (url.hostname or "127.0.0.1", url.port or 0), Handler
).serve_forever()
