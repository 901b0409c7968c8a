"""The SOS's live stream (server-sent events, api/sos/views.py) through the
project's nginx: each event reaches the phone when it is written, not when
the stream ends (the API answers with X-Accel-Buffering: no; nginx would
otherwise buffer the proxied body). The upstream here is a tiny loopback server
that writes one event, then waits for the test before the next."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.nginx_helpers import HOST, tls_context

STREAM = "/api/v1/sos/00000000-0000-0000-0000-000000000001/stream"


def upstream(release: threading.Event, buffered_header: bool):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            if not buffered_header:
                self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            self.wfile.write(b'id: 1\nevent: sos\ndata: {"status": "open"}\n\n')
            self.wfile.flush()
            release.wait(10)
            self.wfile.write(b'id: 2\nevent: sos\ndata: {"status": "cancelled"}\n\n')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def first_event_before_the_second(server_nginx, release) -> bool:
    conn = http.client.HTTPSConnection(HOST, server_nginx.https_port, timeout=4,
                                       context=tls_context(server_nginx))
    try:
        conn.request("GET", STREAM, headers={"Accept": "text/event-stream"})
        try:
            response = conn.getresponse()
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            line = response.readline()  # arrives only if nginx passes it on at once
        except TimeoutError:
            return False
        return line.startswith(b"id: 1") and not release.is_set()
    finally:
        release.set()
        conn.close()


def test_each_sos_event_passes_nginx_as_it_is_written(start_nginx):
    release = threading.Event()
    api = upstream(release, buffered_header=False)
    try:
        server = start_nginx(f"127.0.0.1:{api.server_address[1]}")
        assert first_event_before_the_second(server, release)
    finally:
        api.shutdown()
        api.server_close()



def test_without_that_header_nginx_would_hold_the_events(start_nginx):
    """What the header is for: the same stream without it does not get through in time."""
    release = threading.Event()
    api = upstream(release, buffered_header=True)
    try:
        server = start_nginx(f"127.0.0.1:{api.server_address[1]}")
        assert not first_event_before_the_second(server, release)
    finally:
        api.shutdown()
        api.server_close()
