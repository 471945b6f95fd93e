"""Run file jobs one by one, in a local process pool, or on a Dask distributed cluster.

Dask rather than Ray: a batch of independent file jobs is exactly its futures API
(client.map / as_completed), it is pure Python with a small footprint, and a LocalCluster
starts in-process in a second for tests. Ray brings a large native runtime for no gain here.
On a cluster, every worker needs nnc installed and must see the input and output paths
(a shared file system).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from .errors import NncError
from .files import FileResult

CONNECT_SECONDS = 10
Job = tuple[str, str]


def run_jobs(worker: Callable[[Job], FileResult], jobs: list[Job], workers: int = 1,
             cluster: str | None = None) -> Iterator[FileResult]:
    """Yield each job's result as it finishes: on the Dask scheduler at ``cluster`` (an address
    such as tcp://host:8786), else in ``workers`` local processes, else in this process."""
    if cluster:
        try:
            from distributed import Client
            from distributed import as_completed as dask_as_completed
            from distributed.comm.addressing import parse_address, parse_host_port
        except ImportError:
            raise NncError("--cluster needs Dask distributed: pip install 'nnc[cluster]'") from None
        failure = None
        try:
            scheme, location = parse_address(cluster)  # a malformed address is refused before any Client is made
            if scheme in ("tcp", "tls"):
                parse_host_port(location)
            client = Client(cluster, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as error:
            failure = f"cannot reach the Dask scheduler at {cluster}: {error}"
        if failure:
            gc.collect()  # a failed Client is left half-built: collected inside a later Client's start, it hangs it
            raise NncError(failure)
        with client:
            for future in dask_as_completed(client.map(worker, jobs, pure=False)):
                yield future.result()
    elif workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for future in as_completed([pool.submit(worker, job) for job in jobs]):
                yield future.result()
    else:
        for job in jobs:
            yield worker(job)
