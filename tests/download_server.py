#!/usr/bin/env python3
"""Local HTTP server for tests/test_download.c: serves the files of one folder on 127.0.0.1 with
byte-range support; can cut the first transfer short, ignore Range or stream forever, and logs every
request."""
import argparse
import http.server
import os
import sys

args = None
gets = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a cut transfer is a closed socket

    def log_message(self, fmt, *a):
        pass

    def do_GET(self):
        global gets
        gets += 1
        rng = self.headers.get("Range")
        with open(args.log, "a") as f:
            f.write("GET %s range=%s\n" % (self.path, rng or "-"))
        if args.endless:
            # no Content-Length: the body ends when the connection closes, which it never does
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.end_headers()
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
        path = os.path.join(args.root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404, "no such file")
            return
        with open(path, "rb") as f:
            data = f.read()
        start, end, status = 0, len(data) - 1, 200
        if rng and rng.startswith("bytes=") and not args.no_range:
            a, _, b = rng[6:].partition("-")
            start = int(a)
            if b:
                end = min(int(b), end)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))
        self.end_headers()
        if args.cut_first and gets == 1:
            self.wfile.write(body[: len(body) // 2])  # the promised length never arrives
            self.wfile.flush()
            return
        self.wfile.write(body)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--cut-first", action="store_true")
    p.add_argument("--no-range", action="store_true")
    p.add_argument("--endless", action="store_true", help="stream zeros forever, without a length")
    args = p.parse_args()
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
