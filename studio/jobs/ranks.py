"""A training step as several data-parallel ranks: one process per rank, started and watched by its job.

The job's worker does not train itself. It starts a process per rank, each bound to its device
before it imports torch, relays rank 0's progress, passes a cancel on to every rank, and stops
them all as soon as one fails: a rank that ends early leaves the others waiting in a gradient
exchange that never completes (NCCL waits for many minutes), holding their GPUs. So a dead rank
fails the job at once, with the dead rank named, and frees every device.

Every rank runs the whole technique from the same input and seed (as ``torchrun`` would);
``torch.distributed`` is set up before the technique starts, and its training loop
(``studio.api.TrainingRun``) shares the batches out and averages the gradients. Rank 0 writes
the output and checks it against its parent; the other ranks' output is thrown away.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from studio.api import Cancelled, StudioError
from studio.jobs.local_worker import exit_reason
from studio.jobs.logs import job_logger
from studio.jobs.runner import WORKER_DEVICE_ENV
from studio.jobs.worker import TechniqueJob

MESSAGE_FD_ENV = "STUDIO_RANK_MESSAGES"  # the descriptor a rank writes its messages to
CANCEL_GRACE_S = 2.0  # after a cancel, ranks still running are stopped, before the pool stops the job (3 s)
FAILURE_SETTLE_S = 2.0  # after one rank fails, how long the others get to say why they end
POLL_S = 0.2


def rank_backend(devices: list[str]) -> str:
    """NCCL for one rank per GPU; gloo on the CPU, and for ranks that share a GPU (NCCL refuses those)."""
    gpus = [d for d in devices if d.startswith("cuda")]
    if len(gpus) == len(devices) and len(set(gpus)) == len(gpus):
        return "nccl"
    return "gloo"


@dataclass
class _Rank:
    index: int
    device: str
    process: subprocess.Popen
    messages: IO[str]
    said: dict[str, Any] = field(default_factory=dict)  # its last word: result, error or cancelled
    stopped: bool = False  # ended by us, not by itself

    @property
    def name(self) -> str:
        return f"rank {self.index} on {self.device}"

    def ended(self) -> bool:
        return self.process.poll() is not None


def run_ranks(
    job: TechniqueJob,
    progress: Callable[[float, str], None],
    cancel_requested: Callable[[], bool],
) -> dict:
    """Run ``job`` as ``len(job.ranks)`` ranks; rank 0's result, or the reason the ranks ended."""
    backend = rank_backend(job.ranks)
    scratch = tempfile.mkdtemp(prefix="studio-ranks-")
    ranks: list[_Rank] = []
    try:
        port = _free_port()
        for index, device in enumerate(job.ranks):
            ranks.append(_start(job, index, device, backend, port, scratch))
        job_logger.info(
            "%d ranks (%s): %s",
            len(ranks),
            backend,
            ", ".join(f"{r.name} pid {r.process.pid}" for r in ranks),
        )
        return _watch(ranks, progress, cancel_requested)
    finally:
        _stop(ranks)
        for rank in ranks:
            rank.messages.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _start(job: TechniqueJob, index: int, device: str, backend: str, port: int, scratch: str) -> _Rank:
    read_fd, write_fd = os.pipe()
    env = {
        **os.environ,
        WORKER_DEVICE_ENV: device,
        "CUDA_VISIBLE_DEVICES": device.split(":", 1)[1] if device.startswith("cuda:") else "",
        MESSAGE_FD_ENV: str(write_fd),
    }
    output_dir = job.output_dir if index == 0 else os.path.join(scratch, f"rank-{index}")
    spec = {
        "job": {
            **job.model_dump(mode="json"),
            "device": "cuda:0" if device.startswith("cuda") else "cpu",  # its only visible GPU
            "ranks": [],
            "output_dir": output_dir,
            "threads": _threads_per_rank(job, device),  # the technique's own thread setting too
        },
        "rank": index,
        "world": len(job.ranks),
        "backend": backend,
        "port": port,
    }
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "studio.jobs.rank_main"],
            stdin=subprocess.PIPE,
            pass_fds=(write_fd,),
            env=env,
            text=True,
        )
    finally:
        os.close(write_fd)
    process.stdin.write(json.dumps(spec) + "\n")
    process.stdin.flush()
    return _Rank(index, device, process, os.fdopen(read_fd, "r", encoding="utf-8"))


def _threads_per_rank(job: TechniqueJob, device: str) -> int:
    """The step's CPU threads shared out among the ranks on the CPU (more than the cores only slows
    every rank down); a rank on a GPU keeps the step's count."""
    threads = job.threads or os.cpu_count() or 1
    on_cpu = sum(1 for d in job.ranks if not d.startswith("cuda"))
    return threads if device.startswith("cuda") else max(1, threads // max(on_cpu, 1))


def _watch(ranks: list[_Rank], progress, cancel_requested) -> dict:
    cancelled_at: float | None = None
    failed_at: float | None = None
    while True:
        _read(ranks, progress)
        now = time.monotonic()
        main = ranks[0]
        if "result" in main.said:
            return main.said["result"]
        if cancelled_at is None and cancel_requested():
            cancelled_at = now
            for rank in ranks:
                _tell(rank, "cancel")
        if cancelled_at is not None:
            if all(r.ended() for r in ranks) or now - cancelled_at > CANCEL_GRACE_S:
                raise Cancelled("cancelled by the user")
            continue
        if failed_at is None and any(_failed(r) for r in ranks):
            failed_at = now  # give the others a moment to end and say why, then stop them
        if failed_at is not None and (all(r.ended() for r in ranks) or now - failed_at > FAILURE_SETTLE_S):
            _stop(ranks)
            _read(ranks, progress)
            raise _cause(ranks)


def _read(ranks: list[_Rank], progress) -> None:
    """Take in every rank's messages that are waiting, up to POLL_S."""
    open_streams = {r.messages: r for r in ranks if not r.messages.closed}
    if not open_streams:
        time.sleep(POLL_S)
        return
    ready, _, _ = select.select(list(open_streams), [], [], POLL_S)
    for stream in ready:
        rank = open_streams[stream]
        line = stream.readline()
        if not line:
            stream.close()
            continue
        message = json.loads(line)
        if "progress" in message:
            if rank.index == 0:
                progress(*message["progress"])
        else:
            rank.said = message


def _failed(rank: _Rank) -> bool:
    """It said it failed, it died, or (rank 0) it ended without a result."""
    if "error" in rank.said or (rank.ended() and rank.process.returncode != 0):
        return True
    return rank.index == 0 and rank.ended() and rank.messages.closed and "result" not in rank.said


def _cause(ranks: list[_Rank]) -> Exception:
    """Why the ranks ended: a rank that died without a word is the cause (the others' errors are
    about losing it), else rank 0's error, else the first rank's error."""
    for rank in ranks:
        if not rank.stopped and not rank.said and rank.process.returncode not in (0, None):
            reason = exit_reason(rank.process.returncode, rank.name)
            return StudioError(f"{reason}; every rank of the step was stopped")
    for rank in ranks:  # rank 0 first
        if rank.said.get("cancelled"):
            return Cancelled("cancelled by the user")
        if "error" in rank.said:
            error = rank.said["error"]
            text = error["message"] if rank.index == 0 else f"{rank.name}: {error['message']}"
            return _error_class(error.get("kind", ""))(text)
    return StudioError("the ranks of the step ended without a result")


def _error_class(name: str) -> type[Exception]:
    """The studio error a rank raised, by name: the same refusal as one process would give."""
    import studio.api

    found = getattr(studio.api, name, None)
    return found if isinstance(found, type) and issubclass(found, StudioError) else StudioError


def _tell(rank: _Rank, word: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # it may have ended already
        rank.process.stdin.write(word + "\n")
        rank.process.stdin.flush()


def _stop(ranks: list[_Rank]) -> None:
    """End every rank still running: terminate, then kill. Their GPUs are free once this returns."""
    running = [r for r in ranks if not r.ended()]
    for rank in running:
        rank.stopped = True
        with contextlib.suppress(OSError):
            rank.process.terminate()
    deadline = time.monotonic() + 2.0
    for rank in running:
        try:
            rank.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            rank.process.kill()
            rank.process.wait()
    for rank in ranks:
        with contextlib.suppress(OSError, ValueError):
            rank.process.stdin.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
