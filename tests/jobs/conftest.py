"""Real pools of spawned workers and a real project on disk, closed after each test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jobtools import TEST_GRACE_S, WAIT_S, EventLog, PoolEvents

from studio.jobs.manager import JobManager
from studio.jobs.pool import LocalPool
from studio.project import Project

# Jobs here run the functions of standins.py by the name "standins:FUNCTION", the way a third party's
# module is found: on the Python path of every process the tests start (workers, Ray, a session).
_HERE = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_HERE, os.environ.get("PYTHONPATH")) if p)


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    with Project.create(tmp_path / "p") as opened:
        yield opened


@pytest.fixture
def make_pool() -> Iterator[Callable[..., LocalPool]]:
    """LocalPools with CPU workers only unless told otherwise, all closed after the test."""
    pools: list[LocalPool] = []

    def make(
        devices: list[str] | None = None, cpu_workers: int = 2, grace: float = TEST_GRACE_S
    ) -> LocalPool:
        pool = LocalPool(devices=devices or [], cpu_workers=cpu_workers, cancel_grace_s=grace)
        pools.append(pool)
        assert pool.wait_ready(WAIT_S)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def pool_events(make_pool) -> Callable[..., tuple[LocalPool, PoolEvents]]:
    made: list[PoolEvents] = []

    def make(**kwargs) -> tuple[LocalPool, PoolEvents]:
        pool = make_pool(**kwargs)
        log = PoolEvents(pool)
        made.append(log)
        return pool, log

    yield make
    for log in made:
        log.stop()


@pytest.fixture
def make_manager(project, make_pool) -> Iterator[Callable[..., tuple[JobManager, EventLog]]]:
    managers: list[JobManager] = []

    def make(**pool_kwargs) -> tuple[JobManager, EventLog]:
        manager = JobManager(project.store, make_pool(**pool_kwargs), project.logs_dir)
        log = EventLog()
        manager.subscribe(log)
        managers.append(manager)
        return manager, log

    yield make
    for manager in managers:
        manager.close()
