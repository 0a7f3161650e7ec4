"""HTTP endpoints: ``/metrics`` (text 0.0.4 or OpenMetrics by ``Accept``), ``/healthz``, a landing page.

Rendering reads the snapshot only, so a device problem never turns into an HTTP error.
TLS and basic auth come from an exporter-toolkit web config; ``/healthz`` stays open for probes.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.openmetrics import exposition as om

from gpufleet.exporters.collector import DIALECTS, GpuCollector
from gpufleet.exporters.textformat import CONTENT_TYPE_TEXT
from gpufleet.exporters.webconfig import BasicAuth

__all__ = ["ExporterServer", "render"]


def render(collector: GpuCollector, accept: str = "", dialects: tuple[str, ...] | None = None) -> tuple[bytes, str]:
    """Body and content type for an ``Accept`` header."""
    dialects = collector.dialects if dialects is None else dialects
    if "application/openmetrics-text" in accept:
        return collector.render_text(dialects, openmetrics=True), om.CONTENT_TYPE_LATEST
    return collector.render_text(dialects), CONTENT_TYPE_TEXT


class _ThreadingHTTPServerV6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class ExporterServer:
    """A threaded HTTP(S) server on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, collector: GpuCollector, *, host: str = "0.0.0.0", port: int = 9400,
                 ssl_context: ssl.SSLContext | None = None, users: dict[str, str] | None = None,
                 health: Callable[[], tuple[bool, dict[str, Any]]] | None = None) -> None:
        self.collector = collector
        self.auth = BasicAuth(users) if users else None
        self.health = health or (lambda: (True, {}))
        handler = self._handler()
        self.httpd = (_ThreadingHTTPServerV6 if ":" in host else ThreadingHTTPServer)((host, port), handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        text = host if isinstance(host, str) else host.decode()
        return f"{self.scheme}://{f'[{text}]' if ':' in text else text}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="gpufleet-exporter-http", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving (if started) and close the socket."""
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body's last segment waits for
            # the client's delayed ACK of the headers (about 40 ms per scrape on keep-alive connections).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
                return None

            def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                if "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 1024:
                    body = gzip.compress(body, 1)
                    headers = {**(headers or {}), "Content-Encoding": "gzip"}
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _authorized(self) -> bool:
                if server.auth is None:
                    return True
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    try:
                        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    except (binascii.Error, UnicodeDecodeError):
                        user, password = "", ""
                    if user and server.auth.check(user, password):
                        return True
                self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                           {"WWW-Authenticate": 'Basic realm="gpufleet-exporter"'})
                return False

            def do_HEAD(self) -> None:  # noqa: N802
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path == "/healthz":
                    ok, detail = server.health()
                    body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}).encode()
                    self._send(200 if ok else 503, body, "application/json")
                    return
                if not self._authorized():
                    return
                if url.path == "/metrics":
                    dialect = parse_qs(url.query).get("dialect", ["both"])[0]
                    if dialect not in ("both", *DIALECTS):
                        self._send(400, b"dialect must be native, dcgm or both\n", "text/plain; charset=utf-8")
                        return
                    dialects = server.collector.dialects if dialect == "both" else (dialect,)
                    body, ctype = render(server.collector, self.headers.get("Accept", ""), dialects)
                    self._send(200, body, ctype)
                    return
                if url.path == "/":
                    self._send(200, b"<html><head><title>gpufleet exporter</title></head><body>"
                               b"<h1>gpufleet exporter</h1><p><a href='/metrics'>/metrics</a> "
                               b"<a href='/healthz'>/healthz</a></p></body></html>", "text/html; charset=utf-8")
                    return
                self._send(404, b"Not found\n", "text/plain; charset=utf-8")

        return Handler
