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
- each worker on its own CPU (or share of them): PIN_WORKERS, on unless 0; worker_cpus.py.
- Prometheus' multiprocess mode for /metrics (METRICS_TOKEN): each worker writes its metrics
  to files in PROMETHEUS_MULTIPROC_DIR, and a scrape answered by any worker adds them up.
  The directory is this server's own (a new temporary one, unless set), emptied when the
  server starts, so a restart does not add the last run's counts; a worker that exits keeps
  its counters (they must never go back) and child_exit drops its live gauges.
"""

import atexit
import os
import shutil
import tempfile

# Settings found wrong here, said in one line each by on_starting (which stops the server).
SETTING_ERRORS = []


def _port():
    raw = os.environ.get("PORT") or "8000"
    if not (raw.isdigit() and 1 <= int(raw) <= 65535):
        SETTING_ERRORS.append(f"PORT must be a port number from 1 to 65535, got {raw!r}")
        return "8000"
    return raw


bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{_port()}"
worker_class = "webserver.BufferingWorker"


def _count(name, default):
    """A positive whole number from the environment (0 workers would serve nothing)."""
    raw = os.environ.get(name) or default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        SETTING_ERRORS.append(f"{name} must be a whole number of at least 1, got {raw!r}")
        return int(default)
    return value


workers = _count("WEB_CONCURRENCY", "2")
threads = _count("GUNICORN_THREADS", "8")
PIN_WORKERS = os.environ.get("PIN_WORKERS")  # checked in on_starting too
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


def _remove_directory(path, owner):
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def _metrics_directory():
    """This server's directory of worker metric files, set before prometheus_client is
    imported (it reads the variable then), and emptied once per server start (a reload
    reads this file again in the same master: the files are its workers')."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if os.environ.get("VOICE_METRICS_SERVER") == str(os.getpid()):
        return path
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))
    else:
        path = tempfile.mkdtemp(prefix="voice-metrics-")
        # Removed when the master exits, also when a setting stops it before any worker
        # starts (workers inherit this handler: only the master's own pid removes it).
        atexit.register(_remove_directory, path, os.getpid())
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.environ["VOICE_METRICS_SERVER"] = str(os.getpid())
    return path


_metrics_directory()


def child_exit(server, worker):
    """A worker is gone: its counters and histograms stay in the sums, its gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def pre_fork(server, worker):
    """In the master, which knows the live workers: the CPUs of the worker about to start."""
    import worker_cpus

    worker.cpus = None
    if worker_cpus.enabled(PIN_WORKERS):
        live = [getattr(other, "cpus", None) for other in server.WORKERS.values()]
        worker.cpus = worker_cpus.for_new_worker(worker_cpus.allowed(), server.num_workers, live)


def post_fork(server, worker):
    """In the new worker, before its threads start: keep them on the worker's CPUs."""
    if worker.cpus:
        import worker_cpus

        worker_cpus.pin(worker.cpus, server.log)


def on_starting(server):
    """Check every setting once, in the master, before any worker starts: a wrong one stops
    the server with one line naming it.  The app built here opens no connection and is
    dropped before the fork; its banner waits for when_ready."""
    import sys

    import config

    # A --bind given on the command line wins over this file's: the URLs the app hands out
    # (callback URLs, the banner's) follow the address actually bound, in the workers too.
    if server.cfg.bind:
        os.environ["GUNICORN_BIND"] = server.cfg.bind[0]
    try:
        import worker_cpus

        worker_cpus.enabled(PIN_WORKERS)
    except ValueError as exc:
        SETTING_ERRORS.append(str(exc))
    if SETTING_ERRORS:
        for error in SETTING_ERRORS:
            print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    try:
        from app import banner, create_app

        app = create_app()
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    server.voice_banner = banner(app)


def when_ready(server):
    """The socket is bound: print what a person needs (the pages, the generated dashboard
    password, the sandbox's credentials) once per server, not once per worker, and not at
    all when the address is taken and the server never serves."""
    print(getattr(server, "voice_banner", ""), flush=True)
