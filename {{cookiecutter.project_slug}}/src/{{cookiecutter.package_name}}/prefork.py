"""Pre-fork worker processes for `serve --workers N`: the parent imports and loads once, then forks N uvicorn servers.

uvicorn's own `--workers` starts each worker as a fresh interpreter (multiprocessing "spawn"), which imports numpy,
uvicorn and this package and loads the model again: N times the start-up work, all at once, on the CPUs the
machine has. Here the parent does that work once and forks (as `gunicorn --preload` does): a worker inherits the
loaded libraries and model and serves within milliseconds, and a worker that dies is replaced as fast.

What must be per process is made in the worker, after the fork: the event loop, the app (its Prometheus metrics
files and its prediction log thread start in uvicorn's lifespan startup). The parent holds no threads and no event
loop when it forks. It only binds the socket, forks, replaces dead workers and forwards SIGTERM / SIGINT.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import Any

log = logging.getLogger(__name__)

STARTUP_FAILURE = 3  # uvicorn's exit code when the app's startup failed: every replacement would fail the same way
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
WAKE_SIGNALS = frozenset({*STOP_SIGNALS, signal.SIGCHLD, signal.SIGHUP})


def serve(config: Any, workers: int) -> int:
    """Run `workers` forked copies of uvicorn.Server(config) on one socket until SIGTERM or SIGINT; the exit code.

    `config` is a uvicorn.Config whose app is a factory (factory=True): each worker calls it after the fork. Returns 0
    after a signal (every worker drained and exited), 1 when a worker failed its startup (the app refused to start).
    """
    sock = config.bind_socket()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, WAKE_SIGNALS)  # delivered to sigwait below, never lost
    children: set[int] = set()  # worker pids
    code, stopping = 0, False
    log.info("started parent process [%d], forking %d workers", os.getpid(), workers)
    try:
        for _ in range(workers):
            children.add(_fork(config, sock, blocked))
        while children:
            received = signal.sigwait(WAKE_SIGNALS)
            if received in STOP_SIGNALS and not stopping:
                stopping = True
                log.info("received %s, stopping %d workers", signal.Signals(received).name, len(children))
                _signal_all(children, signal.SIGTERM)
            elif received == signal.SIGHUP:
                log.info("SIGHUP ignored: the model is part of the image; restart the server to change it")
            for pid, exit_code in _reaped(children):
                children.remove(pid)
                if stopping:
                    continue
                if exit_code == STARTUP_FAILURE:
                    log.error("worker [%d] failed to start; stopping the other workers", pid)
                    code, stopping = 1, True
                    _signal_all(children, signal.SIGTERM)
                else:
                    log.warning("worker [%d] exited with %d; forking a replacement", pid, exit_code)
                    children.add(_fork(config, sock, blocked))
    finally:
        _signal_all(children, signal.SIGKILL)  # only after an error of the parent itself: never leave orphans
        sock.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    log.info("stopping parent process [%d]", os.getpid())
    return code


def _fork(config: Any, sock: Any, mask: Any) -> int:
    import uvicorn

    sys.stdout.flush()  # nothing buffered before the fork is written twice
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code, server = 1, None
    try:  # the worker: never returns into the parent's stack (its `with` blocks would clean up the parent's files)
        for sig in STOP_SIGNALS:  # until uvicorn installs its handlers, and when it re-raises the signal after draining
            signal.signal(sig, _exit_worker)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        log.exception("worker [%d] crashed", os.getpid())
        started = server is not None and server.started
        code = 1 if started else STARTUP_FAILURE  # failing before serving would fail again in every replacement
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_worker(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _reaped(children: set[int]) -> list[tuple[int, int]]:
    """(pid, exit code) of every worker that has exited; a signal's death is the negative signal number."""
    done = []
    for pid in list(children):
        try:
            waited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done.append((pid, 1))
            continue
        if waited:
            done.append((pid, os.waitstatus_to_exitcode(status)))
    return done


def _signal_all(children: set[int], sig: int) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
