"""A recording HTTP proxy on loopback, for the differential test: drone-deps
(and its hook) talk to the proxy as if it were Keycloak; each request goes
on to the backend unchanged (the Host header too, so the server names
itself as the proxy in its tokens), and the proxy keeps, in order, what was
asked and what came back: method, path, status, the answer's body.

Only the Python standard library. One thread per connection; the upstream
is plain HTTP on loopback, one connection per request.
"""
import http.client
import http.server
import json
import threading
import urllib.parse

# Hop-by-hop headers (RFC 9110 7.6.1) and the length, set again here.
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade", "content-length"}


class Exchange:
    """One request and its answer."""

    def __init__(self, method, path, status, body, tag):
        self.method = method
        self.path = path
        self.status = status
        self.body = body  # parsed JSON, or the text, or None when empty
        self.tag = tag    # the recording's tag when it was made (a scenario step)

    def __repr__(self):
        return "%s %s %s" % (self.method, self.path, self.status)


class RecordingProxy:
    def __init__(self, upstream):
        self.retarget(upstream)
        self.lock = threading.Lock()
        self.log = []
        self.tag = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: drone-deps reuses its connection

            def log_message(self, *args):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                  timeout=300)
                try:
                    conn.request(self.command, self.path, body=data, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    status, rheaders = resp.status, resp.getheaders()
                except OSError as e:  # nothing listens yet: as a gateway says it
                    body = json.dumps({"error": "proxy: %s" % e.__class__.__name__}).encode()
                    status, rheaders = 502, [("Content-Type", "application/json")]
                finally:
                    conn.close()
                # Recorded before the answer goes out: once the client has
                # it (and may have exited), the log holds it.
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = body.decode(errors="replace")
                with proxy.lock:
                    proxy.log.append(Exchange(self.command, self.path, status, parsed, proxy.tag))
                self.send_response(status)
                for k, v in rheaders:
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def retarget(self, upstream):
        """Forwards to upstream from now on (the same address for the client:
        a setting that holds it, such as the warm instance's hostname, need
        not change)."""
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the proxy forwards to plain HTTP on loopback only: %s" % upstream)
        self.upstream_host, self.upstream_port = u.hostname, u.port or 80

    def take(self):
        """The exchanges recorded since the last take, in order."""
        with self.lock:
            out, self.log = self.log, []
        return out

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
