"""Fine-tuning as two data-parallel ranks on the CPU (gloo), the way several GPUs run it: the same
result as one process on the same data and seed, and a cancel or a dead rank ends every rank."""

from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.api import Cancelled, StudioError
from studio.core.benchmark import ModelRef
from studio.core.models import ModelFiles, collect_files, load_torch_module
from studio.core.trust import grant
from studio.jobs.targets import technique_step
from studio.jobs.worker import TechniqueJob

RANK_PIDS = re.compile(r"rank (\d+) on (\S+) pid (\d+)")


def _job(files: ModelFiles, labelled, out: Path, ranks: list[str], **params) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    grant(files)  # the user trusted the architecture file, as `--trust` records it
    job = TechniqueJob(
        technique="prune.structured",
        params={"ratio": 0.5, "seed": 0, **params},
        model=ModelRef.of(files, trusted=True),
        dataset=labelled,
        output_dir=str(out),
        ranks=ranks,
        threads=1,
    )
    return job.model_dump(mode="json")


def _outputs(main: str, x: np.ndarray) -> np.ndarray:
    module = load_torch_module(collect_files(Path(main)), trusted=True)
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_two_cpu_ranks_train_what_one_process_trains(models, labelled, quadrants, tmp_path: Path) -> None:
    one = technique_step(
        lambda *_: None,
        lambda: False,
        _job(
            models["tiny"],
            labelled,
            tmp_path / "one",
            [],
            finetune_epochs=4,
            learning_rate=0.02,
            batch_size=32,
        ),
    )
    two = technique_step(
        lambda *_: None,
        lambda: False,
        _job(
            models["tiny"],
            labelled,
            tmp_path / "two",
            ["cpu", "cpu"],
            finetune_epochs=4,
            learning_rate=0.02,
            batch_size=32,
        ),
    )

    assert one["details"]["training"]["ranks"] == 1
    assert two["details"]["training"] == {
        "device": "cpu",
        "ranks": 2,
        "backend": "gloo",
        "precision": "fp32",
        "peak_gpu_memory_bytes": None,
    }
    assert Path(two["main"]).parent == tmp_path / "two"  # rank 0 writes the output; rank 1's is gone
    losses = [
        (a["loss"], b["loss"])
        for a, b in zip(one["details"]["finetune"], two["details"]["finetune"], strict=True)
    ]
    assert losses[-1][0] < 0.8 * losses[0][0]  # it learned something worth comparing
    for single, ranked in losses:  # the same batches each step; only BatchNorm sees half a batch per rank
        assert abs(single - ranked) <= 0.1 * single, losses
    x, _ = quadrants(n=400, seed=7)  # samples neither run trained on
    a, b = _outputs(one["main"], x), _outputs(two["main"], x)
    agreement = float(np.mean(a.argmax(1) == b.argmax(1)))
    cosine = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert agreement >= 0.95, f"{agreement:.3f} top-1 agreement on {len(x)} unseen samples"
    assert float(np.median(cosine)) >= 0.98


def _ranks_from(caplog) -> dict[int, int]:
    for record in caplog.records:
        found = RANK_PIDS.findall(record.getMessage())
        if found:
            return {int(rank): int(pid) for rank, _, pid in found}
    return {}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_cancel_stops_every_rank(models, labelled, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="studio.job")
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)

    with pytest.raises(Cancelled):
        technique_step(
            progress,
            lambda: any("fine-tuning" in m for m in seen),
            _job(models["tiny"], labelled, tmp_path / "out", ["cpu", "cpu"], finetune_epochs=300),
        )
    pids = _ranks_from(caplog)
    assert sorted(pids) == [0, 1]
    assert all(_gone(pid) for pid in pids.values())
    assert not any((tmp_path / "out").iterdir())  # nothing of the run was written


def test_a_rank_that_dies_fails_the_step_and_stops_the_others(
    models, labelled, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="studio.job")
    killed: list[int] = []

    def progress(fraction: float, message: str) -> None:
        if "fine-tuning" in message and not killed:
            killed.append(_ranks_from(caplog)[1])
            os.kill(killed[0], signal.SIGKILL)

    with pytest.raises(
        StudioError, match=r"rank 1 on cpu killed by SIGKILL.*every rank of the step was stopped"
    ):
        technique_step(
            progress,
            lambda: False,
            _job(models["tiny"], labelled, tmp_path / "out", ["cpu", "cpu"], finetune_epochs=300),
        )
    assert killed and all(_gone(pid) for pid in _ranks_from(caplog).values())
