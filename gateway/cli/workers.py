"""``cpas-gateway run --workers N``: N processes of one node, started, watched and stopped together.

One node is one Python process, and a process does the CPU work of its
messages on one core. With ``--workers N`` the command runs the preflight
once, then starts N processes of the same node (``run --config FILE
--worker K``), which take deliveries from the same inbox as competing
consumers and share the node's store, journal and vendor system:

- a message is imported, journaled and answered once, whichever process
  takes it and however many copies of it arrive
  (:meth:`gateway.store.Store.lock_messages`);
- the journal stays one chain: every process appends under the journal's
  own lock, and the head witness never moves back;
- the first process (``--worker 0``) also does what a node does once: the
  local API, the dead letters sent back at start, the directory feed (the
  others adopt the editions it keeps in the store), the sweep for expired
  requests.

SIGTERM or Ctrl-C stops every process gracefully (each finishes the batch in
hand) and waits for them. A process that ends on its own, for whatever
reason, stops the others and the command ends with status 1, for the service
manager to restart the node whole. Each process ends with the command if
the command itself is killed (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from gateway.cli.style import EXIT_NO

log = logging.getLogger(__name__)

STOP_SECONDS = 60.0
"""How long the processes have to finish their batches after SIGTERM before they are killed."""

_PR_SET_PDEATHSIG = 1


class Workers:
    """The processes of one node, one per command line (:func:`worker_argv`)."""

    def __init__(self, argv: Sequence[Sequence[str]]) -> None:
        self._argv = [list(a) for a in argv]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for argv in self._argv:
            self.processes.append(subprocess.Popen(argv, preexec_fn=end_with_parent))

    def wait(self, stop: threading.Event) -> int:
        """Until ``stop`` is set (then stop them all; 0 if each ended well), or one ends alone."""
        while not stop.wait(0.5):
            ended = [
                (k, p.returncode) for k, p in enumerate(self.processes) if p.poll() is not None
            ]
            if ended:
                k, status = ended[0]
                log.error("worker %d ended (status %s): stopping the others", k, status)
                print(f"worker {k} ended (status {status}): stopping every worker", flush=True)
                self.stop()
                return EXIT_NO
        return 0 if self.stop() else EXIT_NO

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """SIGTERM to each process still running, then wait; kill what is left at the timeout.

        Returns whether every process ended with status 0.
        """
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in %.0f s: killed", process.pid, timeout)
                process.kill()
                process.wait()
        return all(process.returncode == 0 for process in self.processes)


def worker_count(text: str) -> int:
    """``--workers``: a whole number, at least 1."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError("at least 1 worker")
    return count


def own_command(*args: str, verbose: int = 0) -> list[str]:
    """The command line of ``cpas-gateway ARGS`` in a process of its own, as this one runs."""
    return [sys.executable, "-m", "gateway", *(["-v"] * verbose), *args]


def worker_argv(
    config: str, k: int, *, verbose: int, log_format: str | None, log_levels: Sequence[str]
) -> list[str]:
    """The command line of worker ``k``: this same ``run``, for one process."""
    argv = own_command("run", "--config", config, "--worker", str(k), verbose=verbose)
    if log_format:
        argv += ["--log-format", log_format]
    for level in log_levels:
        argv += ["--log-level", level]
    return argv


def end_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the parent dies (Linux; elsewhere nothing)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name, use_errno=True)
    prctl = getattr(libc, "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
