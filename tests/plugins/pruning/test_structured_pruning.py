"""prune.structured on real torch models: channels really removed, refusals before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from studio.api import Cancelled, ParameterError
from studio.core.data import DatasetSpec, step_part
from studio.core.graph import inspect_model
from studio.core.models import ModelFiles, collect_files, load_torch_module
from studio.core.resources import resource
from studio.core.techniques import run_local


def _run(files: ModelFiles, out: Path, dataset: DatasetSpec | None = None, **params):
    return run_local("prune.structured", files, params=params, dataset=dataset, output_dir=out, trusted=True)


def _reload(main: Path) -> torch.nn.Module:
    return load_torch_module(collect_files(main), trusted=True)


def _row(details: dict, layer: str) -> dict:
    return next(r for r in details["layers"] if r["layer"] == layer)


def test_half_the_channels_go_and_the_classifier_keeps_its_classes(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", ratio=0.5)

    d = result.details
    assert (_row(d, "0")["out_before"], _row(d, "0")["out_after"]) == (8, 4)
    assert (_row(d, "3")["out_before"], _row(d, "3")["out_after"]) == (16, 8)
    assert (_row(d, "8")["in_after"], _row(d, "8")["out_after"]) == (8, 4)
    assert d["kept_layers"] == ["8"]
    assert d["macs_after"] * 3 < d["macs_before"] and d["params_after"] < d["params_before"]
    assert d["finetune"] == []  # no dataset, so no fine-tuning by default
    assert any("not fine-tuned" in n for n in result.notes)

    module = _reload(result.output.main)
    assert module[0].out_channels == 4 and module[4].num_features == 8
    assert module(torch.randn(2, 1, 8, 8)).shape == (2, 4)


def test_output_is_architecture_structure_and_safetensors_without_pickle(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", ratio=0.25)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["net.py", "net.safetensors", "net.structure.json"]
    assert (tmp_path / "out" / "net.py").read_bytes() == models["tiny"].main.read_bytes()
    structure = json.loads((tmp_path / "out" / "net.structure.json").read_text())
    assert structure["modules"]["0"]["attributes"] == {"out_channels": 6}
    for path in (tmp_path / "out").iterdir():
        assert path.read_bytes()[:1] != b"\x80" and not path.read_bytes().startswith(b"PK"), path.name
    assert result.output.kind == "torch"


def _top1(module: torch.nn.Module, dataset: DatasetSpec) -> float:
    """Top-1 on the step's own validation split (what its figures are reported on), from a saved model."""
    validation = step_part(dataset.load()).split("validation")
    with torch.no_grad():
        predicted = module.eval()(torch.from_numpy(validation.arrays["x"])).argmax(dim=1).numpy()
    return float((predicted == validation.labels).mean())


def test_fine_tuning_runs_by_default_with_labels(models, labelled, tmp_path: Path) -> None:
    """The tiny model starts untrained; five epochs at a high rate teach the pruned copy the quadrants."""
    seen: list[str] = []
    result = run_local(
        "prune.structured",
        models["tiny"],
        params={"ratio": 0.5, "batch_size": 32, "learning_rate": 0.1},
        dataset=labelled,
        output_dir=tmp_path / "out",
        trusted=True,
        progress=lambda _f, message: seen.append(message),
    )
    d = result.details
    history = d["finetune"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert history[-1]["val_accuracy"] > d["accuracy_after_pruning"]
    saved = _top1(_reload(result.output.main), labelled)
    assert d["accuracy_after"] == pytest.approx(saved)
    assert saved >= 0.9 and saved > d["accuracy_before"], (d["accuracy_before"], saved)
    assert any("epoch 5/5" in m for m in seen)


def test_residual_connections_are_pruned_together_and_reload(models, tmp_path: Path) -> None:
    result = _run(models["residual"], tmp_path / "out", ratio=0.5)
    module = _reload(result.output.main)
    assert module.stem.out_channels == module.body.out_channels == module.body.in_channels == 4
    assert module.head.in_features == 4
    x = torch.randn(3, 1, 8, 8)
    assert module(x).shape == (3, 4)


def test_kept_layers_keep_their_channels(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", ratio=0.5, keep_layers=["0"])
    assert _row(result.details, "0")["out_after"] == 8
    assert _row(result.details, "3")["out_after"] == 8


def test_iterative_steps_with_fine_tuning_recover_between_steps(models, labelled, tmp_path: Path) -> None:
    seen: list[str] = []
    run_local(
        "prune.structured",
        models["tiny"],
        params={"ratio": 0.5, "iterative_steps": 2, "finetune_epochs": 1},
        dataset=labelled,
        output_dir=tmp_path / "out",
        trusted=True,
        progress=lambda _f, message: seen.append(message),
    )
    assert any("recovering after step 1" in m for m in seen)
    assert any("pruning step 2/2" in m for m in seen)
    module = _reload(tmp_path / "out" / "net.py")  # both steps together reach the ratio
    assert (module[0].out_channels, module[3].out_channels) == (4, 8)


def test_saved_model_scores_what_the_run_reported(models, labelled, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", labelled, ratio=0.5, finetune_epochs=2)
    module = _reload(result.output.main)
    validation = step_part(labelled.load()).split("validation")
    with torch.no_grad():
        predicted = module(torch.from_numpy(validation.arrays["x"])).argmax(dim=1).numpy()
    assert float((predicted == validation.labels).mean()) == pytest.approx(result.details["accuracy_after"])


@pytest.mark.parametrize(
    ("importance", "global_pruning"), [("l1", True), ("taylor", False), ("bn_scale", True), ("random", False)]
)
def test_every_importance_prunes(
    models, labelled, tmp_path: Path, importance: str, global_pruning: bool
) -> None:
    result = _run(
        models["tiny"],
        tmp_path / "out",
        labelled,
        ratio=0.5,
        importance=importance,
        global_pruning=global_pruning,
        finetune_epochs=0,
    )
    assert result.details["params_after"] < result.details["params_before"]
    module = _reload(result.output.main)
    assert module(torch.randn(1, 1, 8, 8)).shape == (1, 4)


def test_pruning_that_removes_nothing_is_an_error_not_a_result(models, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="no channel was removed"):
        _run(models["untrained"], tmp_path / "out", importance="bn_scale", global_pruning=True)
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ratio": 0.9}, "would remove every channel of layer '0'"),
        ({"ratio": 0.5, "round_to": 8}, "would remove every channel of layer '0'"),
        ({"keep_layers": ["decoder.*"]}, "no layer of the model is named 'decoder.*'"),
        ({"finetune_epochs": 2}, "fine-tuning needs a dataset with labels"),
        ({"importance": "taylor"}, "taylor importance needs a dataset with labels"),
    ],
)
def test_bad_requests_are_refused_before_any_work(models, tmp_path: Path, params: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        _run(models["tiny"], tmp_path / "out", **params)
    assert not any((tmp_path / "out").iterdir())


def test_fine_tuning_without_labels_is_refused(models, unlabelled, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="needs a dataset with labels"):
        _run(models["tiny"], tmp_path / "out", unlabelled, finetune_epochs=1)


def test_a_model_with_nothing_prunable_is_refused(models, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="no layer whose channels can be pruned"):
        _run(models["linear"], tmp_path / "out")


def test_bn_scale_needs_batchnorm(models, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="bn_scale importance needs BatchNorm"):
        _run(models["residual"], tmp_path / "out", importance="bn_scale")


def test_out_of_range_ratio_is_refused(models, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="ratio"):
        _run(models["tiny"], tmp_path / "out", ratio=1.0)


def test_onnx_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="takes PyTorch models"):
        run_local("prune.structured", resource("demo", "digits_cnn.onnx"), output_dir=tmp_path / "out")


def test_cancel_during_fine_tuning_leaves_no_model(models, labelled, tmp_path: Path) -> None:
    calls = {"n": 0}

    def cancel_after_a_while() -> bool:
        calls["n"] += 1
        return calls["n"] > 6

    with pytest.raises(Cancelled):
        run_local(
            "prune.structured",
            models["tiny"],
            params={"finetune_epochs": 50},
            dataset=labelled,
            output_dir=tmp_path / "out",
            trusted=True,
            cancel_requested=cancel_after_a_while,
        )
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_demo_cnn_at_half_the_channels_keeps_its_accuracy(tmp_path: Path) -> None:
    files = collect_files(
        resource("demo", "digits_cnn.py"), weights=resource("demo", "digits_cnn.safetensors")
    )
    digits = DatasetSpec(source="digits")
    result = _run(files, tmp_path / "out", digits, ratio=0.5, finetune_epochs=3)
    d = result.details
    assert d["macs_before"] / d["macs_after"] > 3.5
    # the figures in the notes are the layer table's (one way of counting, studio.api.module_macs)
    before, after = (
        inspect_model(files, trusted=True),
        inspect_model(collect_files(result.output.main), trusted=True),
    )
    assert (d["macs_before"], d["macs_after"]) == (before.macs, after.macs)
    assert (d["params_before"], d["params_after"]) == (before.params, after.params)
    parent = _top1(load_torch_module(files, trusted=True), digits)
    pruned = _top1(_reload(result.output.main), digits)
    # held-out top-1 of the saved model within 1.5 points of the parent's
    assert pruned >= parent - 0.015, (parent, pruned)
    assert (d["accuracy_before"], d["accuracy_after"]) == pytest.approx((parent, pruned))
