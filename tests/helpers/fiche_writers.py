"""Several processes importing into one FicheSociale folder, all starting at the same moment.

Each process is started with the 'spawn' method, as the workers of a node
are separate programs: it shares nothing with the others but the folder.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from fichesociale import FicheSocialeAdapter
from gateway.model.dossier import Dossier

TIMEOUT = 120.0
"""Seconds a process may take to start, or to import its share; far more than it needs."""

Outcome = list[tuple[str, bool]]
"""What one process's imports gave, in order: ``(local_reference, created)``."""


def import_at_once(
    folder: Path, cpas_id: str, shares: Sequence[Sequence[tuple[Dossier, str]]]
) -> list[Outcome]:
    """Import each share in a process of its own, the processes released together.

    Each process builds its own adapter on ``folder``, waits until every
    other one has, then imports its ``(dossier, message_id)`` pairs one by
    one. Returns each process's outcome, in the order of ``shares``.
    """
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(shares))
    results: Queue[tuple[int, Outcome | str]] = context.Queue()
    processes = [
        context.Process(target=_import, args=(str(folder), cpas_id, share, start, results, index))
        for index, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    try:
        gathered = dict(results.get(timeout=TIMEOUT) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():
                process.kill()
    outcomes = []
    for index in range(len(shares)):
        result = gathered[index]
        assert not isinstance(result, str), f"importing process {index} failed: {result}"
        outcomes.append(result)
    return outcomes


def _import(
    folder: str,
    cpas_id: str,
    share: Sequence[tuple[Dossier, str]],
    start: Barrier,
    results: Queue[tuple[int, Outcome | str]],
    index: int,
) -> None:
    try:
        adapter = FicheSocialeAdapter(cpas_id, {"folder": folder})
        start.wait(timeout=TIMEOUT)
        imported = [adapter.import_dossier(dossier, message_id=mid) for dossier, mid in share]
        adapter.close()
    except BaseException as exc:
        results.put((index, repr(exc)))
        raise
    results.put((index, [(result.local_reference, result.created) for result in imported]))
