"""prune.magnitude on real torch models: the sparsity reached, made permanent, honestly described."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.api import ParameterError
from studio.core.data import DatasetSpec, step_part
from studio.core.models import ModelFiles, collect_files, load_torch_module
from studio.core.resources import resource
from studio.core.techniques import run_local


def _run(files: ModelFiles, out: Path, dataset: DatasetSpec | None = None, **params):
    return run_local("prune.magnitude", files, params=params, dataset=dataset, output_dir=out, trusted=True)


def _zeros(weight: torch.Tensor) -> float:
    return float((weight == 0).float().mean())


def test_global_sparsity_is_reached_and_kept_in_the_saved_model(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", sparsity=0.6)

    assert result.details["sparsity"] == pytest.approx(0.6, abs=0.01)
    module = load_torch_module(collect_files(result.output.main), trusted=True)
    weights = [module[0].weight, module[3].weight, module[8].weight]
    total = sum(w.numel() for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) / total == pytest.approx(0.6, abs=0.01)
    assert not any(name.endswith(("_orig", "_mask")) for name in module.state_dict())  # made permanent
    rows = {r["layer"]: r for r in result.details["layers"]}
    assert rows["3"]["sparsity"] == pytest.approx(_zeros(module[3].weight))


def test_per_layer_scope_prunes_each_layer_to_the_same_share(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", sparsity=0.5, scope="layer")
    for row in result.details["layers"]:
        assert row["sparsity"] == pytest.approx(0.5, abs=1 / row["weights"] + 1e-9)


def test_files_keep_their_size_but_compress(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", sparsity=0.8)
    d = result.details
    assert d["zipped_bytes_after"] < d["zipped_bytes_before"]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["net.py", "net.safetensors", "net.structure.json"]
    assert (tmp_path / "out" / "net.safetensors").stat().st_size == pytest.approx(
        models["tiny"].weights_path.stat().st_size, rel=0.05
    )
    text = " ".join(result.notes)
    assert "No speed-up on dense runtimes" in text and "zipped it shrinks" in text


def test_only_the_chosen_layer_types_and_not_the_skipped_layers(models, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", sparsity=0.5, layer_types=["Conv"], skip_layers=["0"])
    assert [r["layer"] for r in result.details["layers"]] == ["3"]
    module = load_torch_module(collect_files(result.output.main), trusted=True)
    assert _zeros(module[0].weight) == 0.0 and _zeros(module[8].weight) == 0.0


def test_batchnorm_is_recalibrated_with_a_dataset(models, unlabelled, tmp_path: Path) -> None:
    with_data = _run(models["tiny"], tmp_path / "a", unlabelled, sparsity=0.5)
    without = _run(models["tiny"], tmp_path / "b", sparsity=0.5)
    assert with_data.details["batchnorm_recalibrated"] == 2
    assert without.details["batchnorm_recalibrated"] == 0
    assert any("give a dataset" in n for n in without.notes)
    a = load_torch_module(collect_files(with_data.output.main), trusted=True)
    b = load_torch_module(collect_files(without.output.main), trusted=True)
    assert not torch.equal(a[1].running_mean, b[1].running_mean)


def _top1(module: torch.nn.Module, dataset: DatasetSpec) -> float:
    """Top-1 on the step's own validation split (what its figures are reported on), from the saved model."""
    validation = step_part(dataset.load()).split("validation")
    with torch.no_grad():
        predicted = module.eval()(torch.from_numpy(validation.arrays["x"])).argmax(dim=1).numpy()
    return float((predicted == validation.labels).mean())


def test_accuracy_is_reported_with_labels(models, labelled, tmp_path: Path) -> None:
    result = _run(models["tiny"], tmp_path / "out", labelled, sparsity=0.3)
    before = _top1(load_torch_module(models["tiny"], trusted=True), labelled)
    after = _top1(load_torch_module(collect_files(result.output.main), trusted=True), labelled)
    assert result.details["accuracy_before"] == pytest.approx(before)
    assert result.details["accuracy_after"] == pytest.approx(after)
    assert f"Validation accuracy: {before:.2%} before, {after:.2%} after." in result.notes


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sparsity": 0.0}, "sparsity"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"skip_layers": ["head"]}, "no layer of the model is named 'head'"),
        ({"layer_types": ["Linear"], "skip_layers": ["8"]}, "has no Linear layer left to prune"),
        ({"scope": "network"}, "scope"),
    ],
)
def test_bad_requests_are_refused_before_any_work(models, tmp_path: Path, params: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        _run(models["tiny"], tmp_path / "out", **params)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_onnx_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="takes PyTorch models"):
        run_local("prune.magnitude", resource("demo", "digits_cnn.onnx"), output_dir=tmp_path / "out")


@pytest.mark.slow
def test_demo_cnn_keeps_its_accuracy_at_half_sparsity(tmp_path: Path) -> None:
    files = collect_files(
        resource("demo", "digits_cnn.py"), weights=resource("demo", "digits_cnn.safetensors")
    )
    digits = DatasetSpec(source="digits")
    result = _run(files, tmp_path / "out", digits, sparsity=0.5)
    parent = _top1(load_torch_module(files, trusted=True), digits)
    pruned_module = load_torch_module(collect_files(result.output.main), trusted=True)
    pruned = _top1(pruned_module, digits)
    # held-out top-1 of the saved model within one point of the parent's
    assert pruned >= parent - 0.01, (parent, pruned)
    assert (result.details["accuracy_before"], result.details["accuracy_after"]) == pytest.approx(
        (parent, pruned)
    )
    assert result.details["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert result.details["zipped_bytes_before"] / result.details["zipped_bytes_after"] > 1.4
