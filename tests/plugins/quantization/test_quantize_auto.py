"""quantize.auto: the search keeps the tolerance, reports what it tried, and refuses what it cannot do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from quant_helpers import cancel_after

from studio.api import Cancelled, ParameterError, StudioError
from studio.core.data import DatasetSpec, load_dataset
from studio.core.techniques import run_local

STRICT = 0.99999  # the small test encoder quantizes well; this floor makes it keep some layers in float


def test_search_keeps_sensitive_layers_until_the_floor_holds(
    encoder_onnx: Path, tokens, tmp_path: Path
) -> None:
    result = run_local(
        "quantize.auto",
        encoder_onnx,
        dataset=tokens,
        params={"cosine_floor": STRICT, "smoothing": False, "outlier_split": False},
        output_dir=tmp_path / "out",
    )
    d = result.details
    assert d["mode"] == "dynamic"
    assert d["reached"]["fidelity"]["cosine_min"] >= STRICT
    first, *rest = d["candidates"]
    assert first["excluded"] == 0 and not first["meets_tolerance"]
    assert 1 <= len(rest) <= 9  # max_trials 10, the first included

    table = d["sensitivity"]
    assert len(table) == 14 and all(row["sensitivity"] is not None for row in table)
    kept = {row["node"] for row in table if row["kept_float"]}
    assert kept == set(d["nodes_excluded"]) and kept
    by_rank = sorted(table, key=lambda row: row["rank"])
    assert [row["sensitivity"] for row in by_rank] == sorted(
        (row["sensitivity"] for row in table), reverse=True
    )
    assert {row["node"] for row in by_rank[: len(kept)]} == kept  # the most sensitive are the ones kept

    passing = [c for c in d["candidates"] if c["meets_tolerance"]]
    assert all(c["latency_ms"] is not None for c in passing)
    assert d["latency_ms"] == min(c["latency_ms"] for c in passing)
    names = {n.name: n.op_type for n in onnx.load(str(result.output.main)).graph.node}
    assert all(names.get(node) == "MatMul" for node in kept if "Gather" not in node)


def test_smoothing_keeps_the_float_result_and_is_reported(encoder_onnx: Path, tokens, tmp_path: Path) -> None:
    from studio_quantization import _smooth
    from studio_quantization._common import weighted_nodes

    model = onnx.load(str(encoder_onnx))
    nodes = _smooth.smoothable(weighted_nodes(model, ("MatMul", "Gather")), model)
    assert len(nodes) == 12 and all(n.op == "MatMul" for n in nodes)
    data = load_dataset(tokens.source).arrays
    samples = [{k: v[i : i + 1] for k, v in data.items()} for i in range(8)]
    smoothed = _smooth.smooth(model, nodes, _smooth.channel_maxima(model, nodes, samples))
    assert (
        sum(n.op_type == "Mul" for n in smoothed.graph.node)
        - sum(n.op_type == "Mul" for n in model.graph.node)
        == 12
    )
    feeds = {k: v[:4] for k, v in data.items()}
    before = ort.InferenceSession(str(encoder_onnx)).run(None, feeds)[0]
    after = ort.InferenceSession(smoothed.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_allclose(after, before, atol=1e-5)

    result = run_local(
        "quantize.auto",
        encoder_onnx,
        dataset=tokens,
        params={"cosine_floor": STRICT, "outlier_split": False},
        output_dir=tmp_path / "out",
    )
    d = result.details
    assert d["reached"]["fidelity"]["cosine_min"] >= STRICT
    assert all(row["sensitivity_unsmoothed"] is not None for row in d["sensitivity"])
    assert any(row["sensitivity_smoothed"] is not None for row in d["sensitivity"])
    chosen_smoothed = {row["node"] for row in d["sensitivity"] if row["smoothed"]}
    assert chosen_smoothed == set(d["nodes_smoothed"])


def test_splitting_off_outlier_channels_computes_the_same(encoder_onnx: Path, tokens, tmp_path: Path) -> None:
    from studio_quantization import _outliers, _smooth
    from studio_quantization._common import weighted_nodes

    model = onnx.load(str(encoder_onnx))
    nodes = _smooth.smoothable(weighted_nodes(model, ("MatMul", "Gather")), model)
    data = load_dataset(tokens.source).arrays
    samples = [{k: v[i : i + 1] for k, v in data.items()} for i in range(8)]
    maxima = _smooth.channel_maxima(model, nodes, samples)
    split, products = _outliers.split(model, nodes, maxima)
    inputs = {n.activations[0] for n in nodes}
    added = [n.op_type for n in split.graph.node if n.name not in {m.name for m in model.graph.node}]
    assert len(products) == 12 and added.count("MatMul") == 12 and added.count("Add") == 12
    assert added.count("Gather") == added.count("Mul") == len(inputs) < 12  # Q, K and V share one input
    feeds = {k: v[:4] for k, v in data.items()}
    before = ort.InferenceSession(str(encoder_onnx)).run(None, feeds)[0]
    after = ort.InferenceSession(split.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_an_outlier_input_channel_is_computed_in_float_instead_of_the_layer(tmp_path: Path) -> None:
    """One input channel 60 times larger than the rest: INT8 alone loses the output, the split keeps it."""
    import torch
    from studio_quantization import _outliers

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(32, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 8),
    ).eval()
    model = tmp_path / "mlp.onnx"
    torch.onnx.export(
        net, (torch.zeros(1, 32),), str(model), input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False, opset_version=17,
    )  # fmt: skip
    x = np.random.default_rng(0).normal(size=(200, 32)).astype(np.float32)
    x[:, 3] *= 60.0
    np.savez(tmp_path / "x.npz", x=x)
    result = run_local(
        "quantize.auto",
        model,
        dataset=DatasetSpec(source=str(tmp_path / "x.npz")),
        params={"cosine_floor": 0.95, "smoothing": False},
        output_dir=tmp_path / "out",
    )
    d = result.details
    first, everything, *_ = d["candidates"]
    assert first["cosine_min"] < 0.9 and not first["meets_tolerance"]
    assert everything["split"] == 3 and everything["meets_tolerance"]
    layers = ["/0/Gemm", "/2/Gemm", "/4/Gemm"]
    assert d["nodes_split"] == layers and d["nodes_excluded"] == []  # no layer had to stay float
    assert d["reached"]["fidelity"]["cosine_min"] >= 0.95  # on samples the search never used
    assert d["validation_samples"] >= 64 and d["search_samples"] >= 32
    assert [row["node"] for row in d["sensitivity"] if row["outliers_in_float"]] == layers
    kinds = {n.name: n.op_type for n in onnx.load(str(result.output.main)).graph.node}
    for layer in layers:
        assert kinds[layer + _outliers.FLOAT_PRODUCT] == "MatMul"  # 4 channels wide, float
        assert kinds[layer + "_quant"] == "MatMulInteger"  # the rest of the layer is INT8
    assert any("outlier input channels in float" in note for note in result.notes)


def test_a_tolerance_met_at_once_needs_no_search(digits_onnx: Path, digits, tmp_path: Path) -> None:
    result = run_local(
        "quantize.auto",
        digits_onnx,
        dataset=digits,
        params={"max_accuracy_drop": 0.5},
        output_dir=tmp_path / "out",
    )
    d = result.details
    assert d["mode"] == "static" and "convolutions" in d["mode_reason"]
    assert len(d["candidates"]) == 1 and d["sensitivity"] == []
    assert d["reached"]["accuracy"]["drop_points"] <= 0.5
    assert d["size_ratio"] > 3.5
    assert any("no sensitivity analysis" in note for note in result.notes)


def test_an_unreachable_floor_fails_without_a_result(encoder_onnx: Path, tokens, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(StudioError, match="no candidate met the tolerance"):
        run_local(
            "quantize.auto",
            encoder_onnx,
            dataset=tokens,
            params={"cosine_floor": 1.0, "max_trials": 2},
            output_dir=out,
        )
    assert not any(out.iterdir())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cosine_floor": 0.99, "max_accuracy_drop": 1.0}, "not both"),
        ({"max_accuracy_drop": 1.0}, "needs a dataset with labels"),
        ({"cosine_floor": 1.5}, "cosine_floor"),
        ({"mode": "fastest"}, "mode"),
        ({"max_trials": 0}, "max_trials"),
    ],
)
def test_refusals_on_the_encoder(encoder_onnx: Path, tokens, tmp_path: Path, params, message) -> None:
    with pytest.raises(ParameterError, match=message):
        run_local("quantize.auto", encoder_onnx, dataset=tokens, params=params, output_dir=tmp_path / "out")


def test_static_search_refuses_a_small_calibration_set(
    digits_onnx: Path, small_digits, tmp_path: Path
) -> None:
    with pytest.raises(ParameterError, match="at least 16"):
        run_local("quantize.auto", digits_onnx, dataset=small_digits, output_dir=tmp_path / "out")


def test_no_dataset_is_refused(digits_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="needs a dataset"):
        run_local("quantize.auto", digits_onnx, output_dir=tmp_path / "out")


def test_cancel_during_the_search(encoder_onnx: Path, tokens, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        run_local(
            "quantize.auto",
            encoder_onnx,
            dataset=tokens,
            params={"cosine_floor": STRICT},
            output_dir=out,
            cancel_requested=cancel_after(8),
        )
    assert not any(out.iterdir())


def test_the_probe_computes_what_onnx_runtime_computes(encoder_onnx: Path, tokens, tmp_path: Path) -> None:
    """One node quantized through the probe and through quantize_dynamic give the same output."""
    from onnxruntime.quantization import quantize_dynamic
    from studio_quantization._common import weighted_nodes
    from studio_quantization._probe import ProbeSettings, build_probe, fake_quantize_weight

    model = onnx.load(str(encoder_onnx))
    nodes = weighted_nodes(model, ("MatMul",))
    i = next(k for k, n in enumerate(nodes) if n.name == "/layer.0/output/dense_1/MatMul")
    real = tmp_path / "one.onnx"
    quantize_dynamic(str(encoder_onnx), str(real), per_channel=True, nodes_to_quantize=[nodes[i].name])

    data = load_dataset(tokens.source).arrays
    feeds = {k: v[:1] for k, v in data.items()}
    weights = {t.name: t for t in model.graph.initializer}
    probe = build_probe(model, nodes, "dynamic", {})
    switch = {
        f"studio_probe_{i}_on": np.array(True),
        nodes[i].weight: fake_quantize_weight(
            weights[nodes[i].weight], nodes[i], model, ProbeSettings("dynamic")
        ),
    }
    simulated = ort.InferenceSession(probe.SerializeToString()).run(None, {**feeds, **switch})[0]
    quantized = ort.InferenceSession(str(real)).run(None, feeds)[0]
    exact = ort.InferenceSession(str(encoder_onnx)).run(None, feeds)[0]

    error = np.linalg.norm(quantized - exact)
    assert error > 0
    assert np.linalg.norm(simulated - quantized) < 0.05 * error
