"""A small fault-injecting HTTP proxy in front of cinder-api (stdlib only).

usage: python3 faultproxy.py LISTEN_PORT UPSTREAM_PORT LOG CONTROL

Forwards every request on 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT
and appends one JSON line per request to LOG:

    {"t": 1700000000.1, "method": "POST", "path": "/v3/P/backups/ID/restore",
     "upstream": 202, "status": 504, "fault": "rule-id"}

"upstream" is what cinder-api answered (null when the request was not
forwarded), "status" what the client got (null when the connection was
dropped), "fault" the id of the rule that fired (null for a plain forward).

CONTROL is a JSON file re-read on every request (absent or empty: no
faults): a list of rules

    [{"id": "504-show", "method": "GET", "path": "^/v3/[^/]+/volumes/[0-9a-f-]{36}$",
      "action": "504", "times": 1}]

"path" is a regular expression searched in the path (query string
included). Actions: "504" answers 504 Gateway Timeout without forwarding;
"forward-504" forwards, then answers 504 whatever cinder-api said;
"drop" closes the connection without forwarding or answering;
"forward-drop" forwards, then closes the connection without answering.
A rule fires at most "times" times (default 1) over the proxy's life;
rules are told apart by "id", so a new scenario writes new ids.

Every answer carries "Connection: close" (HTTP/1.0 server): a client never
reuses a socket the proxy has closed.
"""
import http.client
import http.server
import json
import os
import re
import socket
import sys
import threading
import time

HOP = {'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
       'te', 'trailers', 'transfer-encoding', 'upgrade', 'content-length'}
LOCK = threading.Lock()
FIRED = {}


def load_rules(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    if not text.strip():
        return []
    try:
        rules = json.loads(text)
    except ValueError:
        return []
    return rules if isinstance(rules, list) else []


def pick_rule(control, method, path):
    """The first rule matching and not used up; marks it fired."""
    with LOCK:
        for r in load_rules(control):
            if r.get('method', method).upper() != method:
                continue
            if not re.search(r.get('path', ''), path):
                continue
            rid = r.get('id') or r.get('path')
            if FIRED.get(rid, 0) >= int(r.get('times', 1)):
                continue
            FIRED[rid] = FIRED.get(rid, 0) + 1
            return rid, r.get('action', '504')
    return None, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'
    upstream_port = None
    log_path = None
    control_path = None

    def log_message(self, fmt, *args):  # quiet: our own log is LOG
        pass

    def record(self, upstream, status, fault):
        line = json.dumps({'t': round(time.time(), 3), 'method': self.command,
                           'path': self.path, 'upstream': upstream,
                           'status': status, 'fault': fault})
        with LOCK:
            with open(self.log_path, 'a') as f:
                f.write(line + '\n')

    def forward(self, body):
        conn = http.client.HTTPConnection('127.0.0.1', self.upstream_port,
                                          timeout=600)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP}
        if body is not None:
            headers['Content-Length'] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
        conn.close()
        return resp.status, resp.reason, out, data

    def reply(self, status, reason, headers, data):
        self.send_response(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def drop(self):
        # close without a byte of answer; RST so the client sees it at once
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b'\x01\x00\x00\x00\x00\x00\x00\x00')
        except OSError:
            pass
        self.wfile = open(os.devnull, 'wb')  # nothing more reaches the client

    def handle_any(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n) if n else None
        fault, action = pick_rule(self.control_path, self.command, self.path)
        upstream = None
        if action in (None, 'forward-504', 'forward-drop'):
            try:
                upstream, reason, headers, data = self.forward(body)
            except OSError as e:
                msg = ('fault proxy: upstream error: %s\n' % e).encode()
                self.reply(502, 'Bad Gateway', [('Content-Type', 'text/plain')], msg)
                self.record(None, 502, fault)
                return
            if action is None:
                self.reply(upstream, reason, headers, data)
                self.record(upstream, upstream, None)
                return
        if action in ('drop', 'forward-drop'):
            self.drop()
            self.record(upstream, None, fault)
            return
        msg = (b'<html><body><h1>504 Gateway Time-out</h1>'
               b'injected by the fault proxy</body></html>\n')
        self.reply(504, 'Gateway Time-out', [('Content-Type', 'text/html')], msg)
        self.record(upstream, 504, fault)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    listen, upstream, log, control = sys.argv[1:5]
    Handler.upstream_port = int(upstream)
    Handler.log_path = log
    Handler.control_path = control
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', int(listen)), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == '__main__':
    main()
