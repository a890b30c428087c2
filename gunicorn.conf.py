"""gunicorn settings used by the Procfile and the README's run command.

- webserver.BufferingWorker (gunicorn's tornado worker with a thread pool): an event loop
  reads each request whole, so clients trickling headers or bodies hold a socket, not a
  thread; then one of ``threads`` threads runs the app.  Several threads per worker, so the
  app can call its own sandbox over HTTP (a create-call request while the sandbox's callback
  comes back in) without deadlocking, and a slow callback does not block the others.
- timeout above Bandwidth's 25 s callback ceiling, so a worker is never killed while
  Bandwidth is still waiting for it; graceful shutdown lets in-flight callbacks finish.
- limit_request_line 72 KiB: a GET callback carries every field in the query string, and a
  4096-character tag alone is over gunicorn's default of 4094 bytes.  The largest documented
  GET callback (transcriptionAvailable, every field, a 4096-emoji tag) has a 50.3 KB request
  line; the app refuses a query string over MAX_CONTENT_LENGTH (64 KiB) with 413, like a
  POST body; longer lines get 414 from the server before the app sees them.
"""

import os

bind = (
    os.environ.get("GUNICORN_BIND")
    or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
worker_class = "webserver.BufferingWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 60
graceful_timeout = 30
keepalive = 5
limit_request_line = 72 * 1024
limit_request_field_size = 16384
# No preload: each worker creates its own app and its own database pool after the fork.
preload_app = False
# One log line per request: the app's own JSON request log (logsetup.py: method, path
# without the query string, status, duration; never headers, bodies or credentials).
accesslog = None
errorlog = "-"
# gunicorn 27 opens one control socket per user at a fixed path, which several masters on
# one host (tests, a second app server) would fight over.
control_socket_disable = True


def on_starting(server):
    """Check every setting once, in the master, before any worker starts: a wrong one stops
    the server with one line naming it.  Then print what a person needs (the pages, the
    generated dashboard password, the sandbox's credentials) once per server, not once per
    worker.  The app built here opens no connection and is dropped before the fork."""
    import sys

    import config

    try:
        from app import banner, create_app

        app = create_app()
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(banner(app), flush=True)
