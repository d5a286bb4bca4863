"""Serve Keystone's WSGI application with waitress (pure Python, from PyPI).

usage: OS_KEYSTONE_CONFIG_FILES=keystone.conf python keystone_wsgi.py PORT

keystone.wsgi.api parses sys.argv with oslo.config when imported, so the
server's own arguments are taken off first (waitress-serve cannot be used
as is). waitress speaks HTTP/1.1 with keep-alive done right (a closed
connection is announced), so the clients' pooled sockets are not reset as
with uWSGI's --http-socket.
"""
import sys

port = int(sys.argv[1])
sys.argv = sys.argv[:1]

import waitress  # noqa: E402
from keystone.wsgi.api import application  # noqa: E402

waitress.serve(application, host='127.0.0.1', port=port, threads=8,
               ident='keystone', channel_timeout=120)
