"""Where a step runs when the user does not say, and the ranks a user may ask for."""

from __future__ import annotations

import pytest

from studio.api import StudioError
from studio.core.hardware import cuda_devices
from studio.core.techniques import get_technique
from studio.engine.placement import Placement, place_step, rank_devices

H200 = {"index": 0, "name": "NVIDIA H200", "memory_bytes": 150 << 30, "capability": "9.0"}


def test_a_step_that_trains_goes_to_a_gpu_when_there_is_one_and_says_so() -> None:
    placed = place_step(get_technique("prune.structured"), "auto", gpus=[H200])
    assert (placed.device, placed.ranks, placed.chosen) == ("cuda", (), True)
    trained = {
        "device": "cuda:0",
        "ranks": 1,
        "backend": None,
        "precision": "bf16",
        "peak_gpu_memory_bytes": 2_500_000,
    }
    assert (
        placed.sentence(trained)
        == "Trained on a GPU (NVIDIA H200) in bf16 mixed precision, peak GPU memory 2.5 MB."
    )


def test_without_a_gpu_a_step_that_trains_runs_on_the_cpu_with_a_clear_word() -> None:
    placed = place_step(get_technique("distill"), "auto", gpus=[])
    assert (placed.device, placed.chosen) == ("cpu", True)
    trained = {
        "device": "cpu",
        "ranks": 1,
        "backend": None,
        "precision": "fp32",
        "peak_gpu_memory_bytes": None,
    }
    assert placed.sentence(trained) == "No GPU found: trained on the CPU in fp32."
    assert placed.sentence(None) == "No GPU found: ran on the CPU."  # pruning without fine-tuning


def test_a_step_that_does_not_train_stays_on_the_cpu_and_an_explicit_device_is_kept() -> None:
    assert place_step(get_technique("quantize.dynamic"), "auto", gpus=[H200]) == Placement("cpu")
    assert place_step(get_technique("prune.structured"), "cpu", gpus=[H200]) == Placement("cpu")
    assert place_step(get_technique("prune.structured"), "cpu", gpus=[H200]).sentence(None) is None


def test_ranks_are_only_for_steps_that_train() -> None:
    two = place_step(get_technique("distill"), "auto", ("cpu", "cpu"))
    assert (two.device, two.ranks) == ("cpu", ("cpu", "cpu"))
    trained = {
        "device": "cpu",
        "ranks": 2,
        "backend": "gloo",
        "precision": "fp32",
        "peak_gpu_memory_bytes": None,
    }
    assert two.sentence(trained) == "Trained as 2 data-parallel ranks (gloo: cpu, cpu) in fp32."
    with pytest.raises(
        StudioError, match="quantize.dynamic does not train; data-parallel ranks are for steps"
    ):
        place_step(get_technique("quantize.dynamic"), "auto", ("cpu", "cpu"))


def test_the_ranks_a_user_asks_for() -> None:
    assert rank_devices("cpu") == ()
    assert rank_devices("cpu", ranks=2) == ("cpu", "cpu")
    if not cuda_devices():
        assert rank_devices("auto", ranks=3) == ("cpu", "cpu", "cpu")
        with pytest.raises(StudioError, match=r"there is no GPU 0 on this machine \(it has none\)"):
            rank_devices("auto", gpus="0,1")
        with pytest.raises(StudioError, match="--gpus all: no GPU found on this machine"):
            rank_devices("auto", gpus="all")
    with pytest.raises(StudioError, match="--gpus takes GPU numbers such as 0,1"):
        rank_devices("auto", gpus="first")


def test_ranks_asked_for_a_recipe_apply_to_its_steps_that_train() -> None:
    assert place_step(get_technique("quantize.static"), "auto", ("cpu", "cpu"), in_recipe=True) == Placement(
        "cpu"
    )
    assert place_step(get_technique("distill"), "auto", ("cpu", "cpu"), in_recipe=True).ranks == (
        "cpu",
        "cpu",
    )
