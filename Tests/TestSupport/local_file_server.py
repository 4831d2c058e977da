#!/usr/bin/env python3
"""A one-file HTTP server on 127.0.0.1 for the weights download tests.

Serves FILE at every path, honouring `Range: bytes=N-` with 206. Modes:
  normal     the whole file (or the asked range)
  cut:N      sends the headers of the full answer, then only N bytes of the body, and closes
  silent     accepts connections and never answers
  full200    ignores Range and always answers 200 with the whole file
  redirect   answers /redirect with 302 to /file
  missing    answers 404 to everything
Each request's path and Range header are appended, one line each, to the log file.
The bound port is written to the port file once the server listens.
"""
import argparse
import http.server
import os
import socket
import threading
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--mode", default="normal")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        body = f.read()
    log_lock = threading.Lock()

    if args.mode == "silent":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        write_port(args.port_file, listener.getsockname()[1])
        held = []
        while True:
            connection, _ = listener.accept()
            held.append(connection)  # never read, never answered, never closed

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_GET(self):
            with log_lock, open(args.log, "a") as log:
                log.write(f"GET {self.path} Range={self.headers.get('Range', '-')}\n")
            if args.mode == "missing":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if args.mode == "redirect" and self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/file")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            requested = self.headers.get("Range")
            if requested and args.mode != "full200" and requested.startswith("bytes=") and requested.endswith("-"):
                start = int(requested[len("bytes="):-1])
            if start >= len(body) and start > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            part = body[start:]
            if start > 0:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(part)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if args.mode.startswith("cut:"):
                limit = int(args.mode[len("cut:"):])
                self.wfile.write(part[:limit])
                self.wfile.flush()
                time.sleep(0.2)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(part)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    write_port(args.port_file, server.server_address[1])
    server.serve_forever()


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(path + ".tmp", path)


if __name__ == "__main__":
    main()
