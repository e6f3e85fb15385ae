"""One data-parallel rank of a training step: ``python -m studio.jobs.rank_main``, started by its job.

It reads its orders as one JSON line on stdin, joins the process group, runs the technique and
says how it ended on the descriptor named by ``STUDIO_RANK_MESSAGES`` (one JSON object per line;
stdout and stderr go to the job's log). A later line "cancel" on stdin asks it to stop; stdin
closing means the job is gone, and the rank ends at once rather than train for nobody.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import traceback
from datetime import timedelta

from studio.api import Cancelled, StudioError
from studio.jobs.logs import log_to_stderr
from studio.jobs.ranks import MESSAGE_FD_ENV

EXIT_FAILED = 1
EXIT_JOB_GONE = 3
GROUP_TIMEOUT = timedelta(minutes=10)  # a rank that never joins: the job stops it long before


def main() -> None:
    orders = json.loads(sys.stdin.readline())
    rank = int(orders["rank"])
    messages = os.fdopen(int(os.environ[MESSAGE_FD_ENV]), "w", encoding="utf-8", buffering=1)
    stop = threading.Event()
    threading.Thread(target=_listen, args=(stop,), name="studio-rank-orders", daemon=True).start()
    log_to_stderr(f"rank {rank}", logging.INFO if rank == 0 else logging.WARNING)

    def say(message: dict) -> None:
        messages.write(json.dumps(message) + "\n")

    code = 0
    try:
        result = _run(orders, rank, say, stop)
        say({"result": result} if rank == 0 else {"done": True})
    except Cancelled:
        say({"cancelled": True})
    except StudioError as error:
        say({"error": {"kind": type(error).__name__, "message": str(error)}})
        code = EXIT_FAILED
    except BaseException as error:  # a bug: one line to the job, the traceback to its log
        traceback.print_exc()
        say({"error": {"kind": "StudioError", "message": f"the job failed: {type(error).__name__}: {error}"}})
        code = EXIT_FAILED
    for stream in (messages, sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)  # no teardown of the process group: a peer that is gone would hang it


def _run(orders: dict, rank: int, say, stop: threading.Event) -> dict:
    import torch
    import torch.distributed as dist

    from studio.jobs.worker import TechniqueJob, execute

    torch.set_num_threads(int(orders["job"]["threads"]))
    device = orders["job"]["device"]
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group(
        orders["backend"],
        init_method=f"tcp://127.0.0.1:{orders['port']}",
        rank=rank,
        world_size=int(orders["world"]),
        timeout=GROUP_TIMEOUT,
    )
    job = TechniqueJob.model_validate(orders["job"])

    def progress(fraction: float, message: str = "") -> None:
        say({"progress": [fraction, message]})

    return execute(
        job,
        progress=progress if rank == 0 else None,
        cancel_requested=stop.is_set,
        check_result=rank == 0,  # the other ranks' output is thrown away
    )


def _listen(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "cancel":
            stop.set()
    os._exit(EXIT_JOB_GONE)  # stdin closed: the job that started this rank has ended


if __name__ == "__main__":
    main()
