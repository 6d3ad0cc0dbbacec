"""Run the evaluation's independent jobs (one planner row each) on all the CPU's cores.

Most rows are single-threaded at heart: pymunk steps one env at a time, and a CEM over a small MLP spends its
time in Python and small kernels that a second torch thread barely speeds up (the peer's ViT is the exception).
On a 2-core machine one process therefore left a core mostly idle for the evaluation's 20-30 minutes. Each
row's result depends only on its own planner's seeded sampler and the episodes' seeds (the controller reseeds
at every episode), not on which process runs it or in what order, so the rows can be shared out.

Workers are forked after the models are built, so they inherit them (nothing is pickled but the results), take
the next job in the caller's order (list the longest first), and run torch on one thread each. A job's
exception comes back with its name; a worker that dies without a result is reported, never waited on forever.
Forking a process that has threads (torch's pool) draws a DeprecationWarning from Python 3.12 on; the pool is
idle when the workers fork, and each sets its thread count before any torch work, as DataLoader's workers do.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from typing import Any, Callable, Dict, Sequence, Tuple

Job = Tuple[str, Callable[[], Any]]


class JobError(RuntimeError):
    """A job raised in a worker, or a worker died before it returned a job's result."""


def _worker(jobs: Sequence[Job], next_job: Any, owner: Any, done: Any, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)  # before any torch work in the fork (as DataLoader workers do)
    while True:
        with next_job.get_lock():  # a shared counter, not a queue: a queue's feeder thread may not have
            i = next_job.value     # flushed the parent's puts when a fresh worker first looks
            next_job.value += 1
        if i >= len(jobs):
            return
        owner[i] = os.getpid()  # shared memory, seen at once: a queued message dies with a killed worker
        try:
            done.put((i, "ok", jobs[i][1]()))
        except BaseException:  # noqa: BLE001 - every failure goes back to the parent with the job's name
            done.put((i, "error", traceback.format_exc()))


def run_jobs(jobs: Sequence[Job], workers: int, threads: int = 1, poll_s: float = 2.0) -> Dict[str, Any]:
    """``{name: fn()}`` for every job, in the jobs' order.

    ``workers`` <= 1 runs them here, in order, at torch's current thread count (what the benchmark did before).
    Otherwise ``workers`` forked processes of ``threads`` torch threads each take the jobs in list order
    (put the longest first). Raises ``JobError`` naming the job when one raises or its worker dies.
    """
    names = [name for name, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique: {names}")
    if workers <= 1 or len(jobs) <= 1:
        return {name: fn() for name, fn in jobs}
    ctx = mp.get_context("fork")  # the workers inherit the built models; spawn would have to rebuild them
    next_job, owner, done = ctx.Value("i", 0), ctx.Array("i", len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(jobs, next_job, owner, done, threads), daemon=True)
             for _ in range(min(workers, len(jobs)))]
    for p in procs:
        p.start()
    results: Dict[int, Any] = {}
    try:
        while len(results) < len(jobs):
            try:
                i, kind, value = done.get(timeout=poll_s)
            except queue.Empty:
                dead = {p.pid for p in procs if not p.is_alive()}
                all_dead = len(dead) == len(procs)
                lost = [j for j in range(len(jobs)) if j not in results and (owner[j] in dead or all_dead)]
                if not lost:
                    continue
                try:  # a last look: a result may have been queued just before its worker exited
                    i, kind, value = done.get(timeout=poll_s)
                except queue.Empty:
                    raise JobError("a worker died before it returned a result for "
                                   + ", ".join(names[j] for j in lost)) from None
            if kind == "error":
                raise JobError(f"job {names[i]!r} failed in its worker:\n{value}")
            results[i] = value
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
    return {names[i]: results[i] for i in range(len(jobs))}
