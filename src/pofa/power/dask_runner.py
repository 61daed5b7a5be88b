"""Run chunks of replicates in this process or on a dask.distributed cluster, behind a progress bar.

:class:`ChunkRunner` is a context manager. ``workers=0`` runs every chunk here, one after the other (no
cluster: small runs and tests); ``workers=N`` starts a :class:`distributed.LocalCluster` of N worker
processes with one thread each (numerical code holds the GIL, so processes, not threads);
``scheduler=ADDRESS`` connects to a running cluster instead (every worker needs the same pofa installed).
One cluster serves every :meth:`ChunkRunner.map` call of the ``with`` block, so a sample-size search starts
it once.

The results do not depend on where a chunk runs: each chunk carries its own seed, and :meth:`map` returns the
results in submission order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from pofa.errors import PofaError

__all__ = ["ChunkRunner"]


class ChunkRunner:
    """Runs ``fn(*args)`` for each of a list of argument tuples, in process or on Dask.

    Parameters
    ----------
    workers : int
        0 = in this process; N >= 1 = a local cluster of N worker processes (one thread each). Ignored when
        ``scheduler`` is given.
    scheduler : str, optional
        Address of a running Dask scheduler (e.g. ``tcp://host:8786``).
    progress : bool
        Show a rich progress bar on stderr (one bar per :meth:`map` call, counting replicates).
    connect_timeout : float
        Seconds to wait for the scheduler at ``scheduler``.
    """

    def __init__(self, workers: int = 0, scheduler: str | None = None, progress: bool = False,
                 connect_timeout: float = 30.0) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise PofaError(f"the number of workers must be a whole number >= 0 (0 = in this process); got "
                            f"{workers!r}")
        self.workers = workers
        self.scheduler = scheduler
        self.progress = progress
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._cluster: Any = None
        self._bar: Any = None
        self._stack = contextlib.ExitStack()

    # ------------------------------------------------------------------------------------------------
    @property
    def description(self) -> str:
        """Where the chunks run, for the record (``"in-process"``, a local cluster, or the address).

        Returns
        -------
        str
            ``"in-process"``, the local cluster's size, or the scheduler address.
        """
        if self.scheduler is not None:
            return f"dask scheduler {self.scheduler}"
        if self.workers == 0:
            return "in-process"
        return f"dask local cluster, {self.workers} worker process{'es' if self.workers > 1 else ''}"

    @property
    def n_workers(self) -> int:
        """Count the workers that run chunks (1 in process; the cluster's count when connected).

        Returns
        -------
        int
            Number of workers (at least 1).
        """
        if self._client is not None:
            return len(self._client.scheduler_info().get("workers", {}))
        return 1

    def __enter__(self) -> ChunkRunner:
        try:
            if self.scheduler is not None:
                self._connect(self.scheduler)
            elif self.workers > 0:
                self._start_local(self.workers)
            if self.progress:
                self._bar = self._stack.enter_context(_progress())
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()
        self._client = None
        self._cluster = None
        self._bar = None

    def _connect(self, address: str) -> None:
        from distributed import Client

        try:
            client = Client(address, timeout=self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise PofaError(f"cannot connect to the Dask scheduler at {address}: {exc}; check the address "
                            "(e.g. tcp://host:8786) and that the scheduler runs") from None
        self._stack.callback(client.close)
        if not client.scheduler_info().get("workers"):
            try:
                client.wait_for_workers(1, timeout=120)
            except TimeoutError:
                raise PofaError(f"the Dask scheduler at {address} has no workers (waited 120 s); start "
                                "workers with `dask worker " + address + "`") from None
        self._client = client

    def _start_local(self, n: int) -> None:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        self._stack.callback(cluster.close)
        client = Client(cluster)
        self._stack.callback(client.close)
        self._cluster, self._client = cluster, client

    # ------------------------------------------------------------------------------------------------
    def map(self, fn: Callable[..., Any], argsets: Sequence[tuple[Any, ...]], weights: Sequence[int],
            description: str = "") -> list[Any]:
        """``[fn(*args) for args in argsets]``, computed here or on the cluster, in the order given.

        ``weights`` (e.g. replicates per chunk) advance the progress bar as each chunk completes.

        Parameters
        ----------
        fn : callable
            The task, a picklable module-level function.
        argsets : sequence of tuple of object
            Arguments of each call.
        weights : sequence of int
            Progress weight of each call (e.g. replicates per chunk).
        description : str, optional
            Label of the progress bar.

        Returns
        -------
        list of object
            ``fn(*args)`` of each argument set, in the order of ``argsets``.

        Raises
        ------
        ValueError
            When the weights do not match the argument tuples one to one.
        PofaError
            When the Dask cluster fails while running a chunk.
        """
        if len(weights) != len(argsets):
            raise ValueError("one weight per argument tuple is needed")
        task = None
        if self._bar is not None:
            task = self._bar.add_task(description, total=int(sum(weights)))

        def advance(w: int) -> None:
            if task is not None:
                self._bar.update(task, advance=w)

        if self._client is None:
            out = []
            for args, w in zip(argsets, weights, strict=True):
                out.append(fn(*args))
                advance(w)
            return out
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        futures = [self._client.submit(fn, *args, pure=False, key=f"pofa-power-{run}-{i}")
                   for i, args in enumerate(argsets)]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for fut in as_completed(futures):
                i = index[fut.key]
                try:
                    results[i] = fut.result()
                except (OSError, TimeoutError) as exc:
                    raise PofaError(f"the Dask cluster failed while running chunk {i}: {exc}; run the "
                                    "command again (results are reproducible from the seed)") from None
                advance(int(weights[i]))
        finally:
            for f in futures:
                f.release()
        return results


@contextlib.contextmanager
def _progress() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("replicates"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        yield bar


def default_workers() -> int:
    """Count the cores of this machine (at least 1).

    Returns
    -------
    int
        Number of usable cores.
    """
    return max(1, os.cpu_count() or 1)
