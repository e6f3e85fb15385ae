"""Distillation as two data-parallel ranks on the CPU (gloo): the student one process would train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from test_distill_run import QUICK

from studio.core.benchmark import ModelRef
from studio.core.data import step_part
from studio.core.models import collect_files, load_torch_module
from studio.core.trust import grant
from studio.jobs.targets import technique_step
from studio.jobs.worker import TechniqueJob


def _distill(teacher, data, out: Path, ranks: list[str]) -> dict:
    out.mkdir()
    grant(teacher)
    job = TechniqueJob(
        technique="distill",
        params={"width": 0.5, "epochs": 2, **QUICK},
        model=ModelRef.of(teacher, trusted=True),
        dataset=data,
        output_dir=str(out),
        ranks=ranks,
        threads=1,
    )
    return technique_step(lambda *_: None, lambda: False, job.model_dump(mode="json"))


def test_two_cpu_ranks_distil_the_student_one_process_does(teacher, small_digits, tmp_path: Path) -> None:
    one = _distill(teacher, small_digits, tmp_path / "one", [])
    two = _distill(teacher, small_digits, tmp_path / "two", ["cpu", "cpu"])

    assert two["details"]["training"]["ranks"] == 2 and two["details"]["training"]["backend"] == "gloo"
    epochs = [
        (a["loss"], b["loss"])
        for a, b in zip(one["details"]["epochs"][1:], two["details"]["epochs"][1:], strict=True)
    ]
    for single, ranked in epochs:
        assert abs(single - ranked) <= 0.1 * single, epochs
    x = (
        step_part(small_digits.load()).split("validation").arrays["x"]
    )  # samples the students never trained on
    with torch.no_grad():
        a, b = (
            load_torch_module(collect_files(Path(r["main"])), trusted=True)(torch.from_numpy(x)).numpy()
            for r in (one, two)
        )
    assert float(np.mean(a.argmax(1) == b.argmax(1))) >= 0.9, f"on {len(x)} validation samples"
