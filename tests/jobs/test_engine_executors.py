"""The one reading of an executor name, and the workers a command gets for a device: a step on a
GPU and the CPU measurement that follows it both find a worker (the GPU workers here are
injected device names, as on a machine without one; `-m gpu` runs the real thing)."""

from __future__ import annotations

import pytest
from jobtools import WAIT_S, PoolEvents, spec

from studio.api import StudioError
from studio.engine.executors import Executor, PoolSettings, parse_executor, settings_for_device


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("local", Executor("local")),
        ("ray", Executor("ray")),
        ("ray://head.example:10001", Executor("ray", "ray://head.example:10001")),
    ],
)
def test_executor_names_are_read_in_one_place(text: str, parsed: Executor) -> None:
    assert parse_executor(text) == parsed


@pytest.mark.parametrize("typo", ["rya", "Local", "slurm", "ray://", "ray://host", "ray://host:port", ""])
def test_a_mistyped_executor_is_one_sentence(typo: str) -> None:
    with pytest.raises(StudioError, match=r"^unknown executor .*: use local, ray, or ray://HOST:PORT$"):
        parse_executor(typo)


def test_the_window_refuses_a_typo_instead_of_running_locally() -> None:
    with pytest.raises(StudioError, match="unknown executor 'rya'"):
        PoolSettings(executor="rya").make_pool()


def test_a_command_on_a_gpu_gets_that_gpu_and_cpu_workers_for_its_measurements() -> None:
    assert settings_for_device("local", "cuda:1") == PoolSettings(cpu_workers=1, gpus=("cuda:1",))
    assert settings_for_device("local", "cpu", cpu_workers=2) == PoolSettings(cpu_workers=2, gpus=())
    with pytest.raises(StudioError, match="unknown executor"):
        settings_for_device("loca1", "cuda:0")


def test_a_gpu_step_and_the_cpu_measurement_after_it_both_run(tmp_path) -> None:
    pool = settings_for_device("local", "cuda:0").make_pool()
    log = PoolEvents(pool)
    try:
        assert pool.wait_ready(WAIT_S)
        assert sorted(pool.devices) == ["cpu", "cuda:0"]
        pool.submit(1, spec("echo", device="cuda:0"), tmp_path / "1.log")
        pool.submit(2, spec("echo", device="cpu"), tmp_path / "2.log")
        step, measurement = log.wait_final(1), log.wait_final(2)
        assert step.kind == "succeeded" and step.device == "cuda:0"
        assert measurement.kind == "succeeded" and measurement.device == "cpu"
    finally:
        log.stop()
        pool.close()
