"""The ETA from synthetic progress: every (time, fraction) pair is given, nothing waits on a clock."""

from __future__ import annotations

import pytest

from studio.jobs.events import ETA_MIN_SECONDS, EtaEstimator, duration_text


def feed(points: list[tuple[float, float]]) -> tuple[EtaEstimator, list[float | None]]:
    estimator = EtaEstimator()
    return estimator, [estimator.update(t, f) for t, f in points]


def two_speed_job(*, fast_s: float = 1.0, fast_share: float = 0.05, slow_rate: float = 0.005):
    """A job whose first 5 % takes one second and the rest runs ten times slower, reporting twice a second."""
    total = fast_s + (1.0 - fast_share) / slow_rate
    points, t = [], 0.0
    while t <= total:
        f = fast_share * t / fast_s if t < fast_s else fast_share + slow_rate * (t - fast_s)
        points.append((t, min(1.0, f)))
        t += 0.5
    return points, total


def test_unknown_before_a_few_seconds_and_a_few_percent_never_from_the_first_second() -> None:
    _, etas = feed([(0.0, 0.0), (0.5, 0.04), (1.0, 0.08), (2.0, 0.1)])
    assert etas == [None, None, None, None]  # 10 % in two seconds says little about the rest
    _, etas = feed([(0.0, 0.0), (10.0, 0.005), (20.0, 0.01)])
    assert etas == [None, None, None]  # a long time, but barely any progress
    _, etas = feed([(t, t / 100) for t in range(0, 11)])
    assert etas[2] is None and etas[int(ETA_MIN_SECONDS)] == pytest.approx(100 - ETA_MIN_SECONDS)


def test_a_steady_job_gets_its_true_time_left() -> None:
    points = [(t * 0.5, t * 0.5 / 120) for t in range(0, 241)]
    _, etas = feed(points)
    for (t, _), eta in zip(points[12:], etas[12:], strict=True):
        assert eta == pytest.approx(120 - t, abs=1e-6)


def test_a_fast_first_five_percent_does_not_make_the_rest_look_short() -> None:
    points, total = two_speed_job()
    _, etas = feed(points)
    for (t, f), eta in zip(points, etas, strict=True):
        if t >= 2 * ETA_MIN_SECONDS and f < 1.0:
            assert eta == pytest.approx(total - t, rel=0.1), (t, f)
    # what the whole-run average (time so far / fraction done) said at the same moments: 5-10
    # times too short early on
    t, f = next((t, f) for t, f in points if t >= 6.0)
    assert t / f - t < (total - t) / 1.5
    t, f = next((t, f) for t, f in points if t >= 2.0)
    assert t / f - t < (total - t) / 5


def test_a_slow_start_is_forgotten_once_the_work_runs() -> None:
    points = [(float(t), 0.0) for t in range(0, 30)] + [(30.0 + t, t / 100) for t in range(0, 101)]
    _, etas = feed(points)
    late = [(t, eta) for (t, _), eta in zip(points, etas, strict=True) if t >= 70 and t < 130]
    assert all(eta == pytest.approx(130 - t, rel=0.05) for t, eta in late)


def test_estimates_do_not_jump_with_uneven_reports() -> None:
    """Reports of one steady job at irregular moments give the same estimate as regular ones."""
    times = [0, 0.2, 3.1, 3.3, 9.0, 9.1, 9.2, 17.5, 18.0, 30.0, 30.5, 44.0, 61.0, 61.2, 75.0, 90.0]
    _, etas = feed([(t, t / 100) for t in times])
    for t, eta in zip(times, etas, strict=True):
        if t >= ETA_MIN_SECONDS:
            assert eta == pytest.approx(100 - t, abs=1e-6)


def test_a_stall_over_the_recent_half_is_unknown_not_a_guess() -> None:
    _, etas = feed([(0.0, 0.0), (5.0, 0.2), (6.0, 0.25), (20.0, 0.25)])
    assert etas[2] is not None and etas[3] is None


def test_progress_going_back_starts_a_new_estimate() -> None:
    estimator, _ = feed([(t, t / 10) for t in range(0, 8)])
    assert estimator.update(8.0, 0.1) is None  # a second job on the same line


def test_between_reports_the_estimate_counts_down_then_becomes_unknown() -> None:
    estimator, etas = feed([(t, t / 100) for t in range(0, 11)])
    assert etas[-1] == pytest.approx(90.0)
    assert estimator.eta(40.0) == pytest.approx(60.0)
    assert estimator.eta(100.0) is None  # ran out with the job unfinished: no longer known
    assert estimator.update(101.0, 1.0) == 0.0 and estimator.eta(500.0) == 0.0


def test_a_long_run_keeps_a_bounded_history_and_the_right_figure() -> None:
    estimator = EtaEstimator()
    points, total = two_speed_job(slow_rate=0.0001)  # about 2.6 hours, 19,000 reports
    for t, f in points:
        eta = estimator.update(t, f)
    assert len(estimator._points) <= 257
    t, f = points[-2]
    assert estimator.update(t + 0.5, f + 0.00005) == pytest.approx(total - t - 0.5, rel=0.05)
    assert eta is not None


def test_durations_read_as_people_say_them() -> None:
    assert [duration_text(s) for s in (None, 4.4, 130, 3900)] == ["", "4 s", "2 min 10 s", "1 h 05 min"]
