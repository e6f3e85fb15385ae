"""Every corpus model through the engine, held to its expected outcome (``model_corpus.EXPECTED``).

The whole matrix (every technique on every model) is ``tests/benchmarks/bench_corpus.py``; here
each model meets dynamic quantization, which reaches the import, the result gate, input roles
and the recorded interface, and the techniques that must refuse it do so in one sentence.
One project and one pool of workers serve all the models, as they would serve a user's.
"""

from __future__ import annotations

import pytest
from model_corpus import CORPUS, EXPECTED, outcome_problem, run_pair

from studio.core.trust import grant
from studio.engine import Engine
from studio.project import Project

SUITE_TECHNIQUES = ("quantize.dynamic", "prune.structured", "distill")
# Every run of a torch.export program converts it to ONNX first, seconds each: its pairs are the
# benchmark's (the suite keeps its counts, in tests/core/test_corpus_counts.py).
BENCHMARK_ONLY = ("torch.export program (.pt2)",)


@pytest.fixture(scope="module")
def corpus_project(corpus_models, tmp_path_factory):
    """Every corpus model imported into one project, with its dataset; an engine to run steps."""
    imported = {}
    with Project.create(tmp_path_factory.mktemp("corpus") / "project") as project:
        for name, made in corpus_models.items():
            if name in BENCHMARK_ONLY:
                continue
            version = made.import_into(
                project, name=name.replace(" ", "-").replace("/", "-").replace(",", "")
            )
            imported[name] = (version, str(made.dataset))
        with Engine.for_project(project) as engine:
            yield project, engine, imported


@pytest.mark.parametrize("name", [name for name in CORPUS if name not in BENCHMARK_ONLY])
def test_each_model_meets_its_expected_outcomes(corpus_project, name):
    project, engine, imported = corpus_project
    version, dataset = imported[name]
    grant(project.model_files(version))  # each test has a data folder of its own: trust it there too
    problems = []
    for technique in SUITE_TECHNIQUES:
        if EXPECTED[name][technique] == "ok" and technique != "quantize.dynamic":
            continue  # a training run: the benchmark's, not the suite's
        verdict, text = run_pair(engine, version, technique, dataset)
        problem = (
            "BROKEN: " + text if verdict == "BROKEN" else outcome_problem(name, technique, verdict, text)
        )
        if problem:
            problems.append(f"{technique}: {problem}")
    assert not problems, problems
