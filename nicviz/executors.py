"""Where a sweep's tasks run: this process, local worker processes, or a Dask cluster.

An executor applies a picklable function to ``(index, Task)`` items and yields the
results as they finish, in any order; :func:`nicviz.sweep.run_sweep` stays the only
writer of the journal and the results file, so a killed driver resumes exactly as with
the local executors, and a lost worker only means its task runs again.

:class:`DaskExecutor` uses Dask distributed (pure Python, pandas-native, deployable on
SLURM with dask-jobqueue and on Kubernetes with the Dask operator or Helm chart): without
an address it starts a ``LocalCluster`` of single-threaded worker processes; with
``tcp://host:8786`` (or ``$DASK_SCHEDULER_ADDRESS``) it joins an existing cluster. Each
worker loads its models once (the codec and task caches are per process) and runs
torch, OpenCV and onnxruntime on one thread.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from nicviz.errors import NicvizError

__all__ = ["Executor", "SerialExecutor", "ProcessExecutor", "DaskExecutor", "make_executor", "init_worker",
           "MISSING_ROOT"]

#: record a task returns when its worker cannot see the dataset folder (see ``ship_images``)
MISSING_ROOT = "missing_root"


class Executor(Protocol):
    """Applies a picklable ``fn`` to each item and yields results as they finish (any order)."""

    def map_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]: ...


def init_worker() -> None:
    """One thread per worker for every numeric library (workers run side by side)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


class SerialExecutor:
    """Runs tasks one after another in this process, on one thread like each worker of -j N."""

    def map_unordered(self, fn, tasks):
        import cv2
        import torch

        saved = torch.get_num_threads(), cv2.getNumThreads()
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        try:
            for t in tasks:
                yield fn(t)
        finally:
            torch.set_num_threads(saved[0])
            cv2.setNumThreads(saved[1])


class ProcessExecutor:
    """Local worker processes, one torch thread each (so ``-j N`` does not oversubscribe)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, int(jobs))

    def map_unordered(self, fn, tasks):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=init_worker) as pool:
            pending = set()
            it = iter(tasks)
            for t in it:
                pending.add(pool.submit(fn, t))
                if len(pending) >= 2 * self.jobs:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))


def _with_image_bytes(item: tuple[int, Any]) -> tuple[int, Any]:
    i, task = item
    return i, replace(task, data=(Path(task.root) / task.image).read_bytes())


class DaskExecutor:
    """Tasks on a Dask distributed cluster (see the module docstring).

    ``ship_images`` sends each image's bytes with its task, for workers that cannot see
    the driver's disk; it switches itself on (with a one-line warning) when a worker
    reports the dataset folder missing.
    """

    def __init__(self, address: str | None = None, workers: int = 2, ship_images: bool = False,
                 timeout_s: float = 15.0, from_env: bool = True) -> None:
        from nicviz.settings import check_scheduler_address

        address = address or (os.environ.get("DASK_SCHEDULER_ADDRESS") if from_env else None) or None
        self.address = check_scheduler_address(address) if address else None
        self.workers = max(1, int(workers))
        self.ship_images = ship_images
        self.timeout_s = timeout_s
        self.warned = False

    def _client(self):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - a dependency
            raise NicvizError(f"--executor dask needs the 'distributed' package ({exc})") from None
        if self.address:
            try:
                return _connect(Client, self.address, self.timeout_s), None
            except Exception as exc:  # noqa: BLE001 - anything a wrong peer causes is one line
                first = str(exc).splitlines()[0][:200] if str(exc) else "no answer"
                raise NicvizError(f"cannot reach the Dask scheduler at {self.address} "
                                  f"({type(exc).__name__}: {first})") from None
        cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               death_timeout="20s", silence_logs=logging.ERROR)
        return Client(cluster), cluster

    def map_unordered(self, fn, items):
        from distributed import as_completed

        client, cluster = self._client()
        try:
            client.run(init_worker)
            n = max(1, len(client.scheduler_info().get("workers", {}))) if self.address else self.workers
            it = iter(items)

            def submit(item):
                if self.ship_images:
                    item = _with_image_bytes(item)
                return client.submit(fn, item, pure=False)

            queue = as_completed([submit(x) for _, x in zip(range(2 * n + 2), it, strict=False)])
            for fut in queue:
                result = fut.result()
                fut.release()
                i, records = result
                if records and isinstance(records[0], dict) and MISSING_ROOT in records[0]:
                    if not self.warned:
                        print(f"nicviz: warning: a Dask worker cannot see {records[0][MISSING_ROOT]}; "
                              "sending image bytes with every task (--ship-images)", file=sys.stderr)
                        self.warned = True
                    self.ship_images = True
                    queue.add(submit((i, records[0]["task"])))
                    continue
                yield result
                nxt = next(it, None)
                if nxt is not None:
                    queue.add(submit(nxt))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _connect(client_cls, address: str, timeout_s: float):
    """A Dask client within ``timeout_s`` + 5 s in all: a peer that accepts the connection but
    never speaks Dask's protocol (an HTTP server) is given up on, not waited for. The attempt
    runs on a daemon thread, so a peer that never answers cannot keep the process alive."""
    import queue
    import threading

    out: queue.Queue = queue.Queue(1)

    def attempt() -> None:
        try:
            out.put((True, client_cls(address, timeout=f"{timeout_s}s")))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            out.put((False, exc))

    threading.Thread(target=attempt, name="nicviz-dask-connect", daemon=True).start()
    try:
        ok, value = out.get(timeout=timeout_s + 5)
    except queue.Empty:
        raise TimeoutError(f"no Dask handshake within {timeout_s + 5:.0f} s") from None
    if not ok:
        raise value
    return value


def make_executor(kind: str = "local", jobs: int = 1, scheduler: str | None = None,
                  ship_images: bool = False, from_env: bool = True) -> Executor:
    """``local`` (this process for ``jobs`` = 1, else worker processes) or ``dask``
    (``from_env``: ``$DASK_SCHEDULER_ADDRESS`` when no ``scheduler`` is given)."""
    if kind == "dask":
        return DaskExecutor(scheduler, workers=max(1, jobs), ship_images=ship_images, from_env=from_env)
    if kind != "local":
        raise NicvizError(f"unknown executor {kind!r}; choose local or dask")
    if jobs < 1:
        raise NicvizError(f"-j/--jobs must be at least 1 (got {jobs})")
    return SerialExecutor() if jobs == 1 else ProcessExecutor(jobs)
