"""Results chain across separate runs: each step reads the previous step's files from disk."""

from __future__ import annotations

from pathlib import Path

import torch

from studio.core.models import collect_files, load_torch_module
from studio.core.techniques import run_local


def test_structured_then_magnitude_then_structured_again(models, unlabelled, tmp_path: Path) -> None:
    first = run_local(
        "prune.structured", models["tiny"], params={"ratio": 0.5}, output_dir=tmp_path / "1", trusted=True
    )
    # the next runs name only the .py: the structure file and the weights are found beside it
    second = run_local(
        "prune.magnitude",
        first.output.main,
        params={"sparsity": 0.5},
        dataset=unlabelled,
        output_dir=tmp_path / "2",
        trusted=True,
    )
    third = run_local(
        "prune.structured",
        second.output.main,
        params={"ratio": 0.25, "keep_layers": ["0"]},
        output_dir=tmp_path / "3",
        trusted=True,
    )

    module = load_torch_module(collect_files(third.output.main), trusted=True)
    assert module[0].out_channels == 4  # halved by the first step, kept by the third
    assert module[3].out_channels == 6  # 16 → 8 → 6
    assert module[3].in_channels == 4 and module[8].in_features == 6
    # layer 0 keeps its channels in the third step, so the second step's zeros survive untouched
    sparse = load_torch_module(collect_files(second.output.main), trusted=True)
    assert torch.equal(module[0].weight, sparse[0].weight)
    layer0 = next(r for r in second.details["layers"] if r["layer"] == "0")
    assert int((module[0].weight == 0).sum()) == layer0["zeros"] > 0
    assert module(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    for step in ("1", "2", "3"):
        names = sorted(p.name for p in (tmp_path / step).iterdir())
        assert names == ["net.py", "net.safetensors", "net.structure.json"]
