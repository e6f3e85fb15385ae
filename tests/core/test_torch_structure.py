"""Changed torch models saved as architecture + structure JSON + safetensors, and loaded back."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from studio.api import ModelFormatError
from studio.core.files import sha256_file
from studio.core.models import ModelFormat, collect_files, load_torch_module
from studio.core.torch_structure import apply_structure, build_fresh, read_structure, save_torch_model

NET_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    INPUT_SHAPE = (1, 3, 8, 8)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
            self.norm = nn.LayerNorm(6)
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.conv2(x).mean(dim=(2, 3))
            return self.fc(self.norm(x))


    def build_model():
        return Net()
    """
)

TIED_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.head = nn.Linear(8, 20, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, ids):
            return self.head(self.emb(ids).mean(dim=1))


    def build_model():
        return Tied()


    def example_inputs():
        return torch.zeros(2, 5, dtype=torch.int64)
    """
)


def _architecture(folder: Path, source: str, name: str) -> Path:
    """An architecture file with trained-looking weights beside it, as a user imports it."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    arch = folder / name
    arch.write_text(source, encoding="utf-8")
    torch.manual_seed(0)
    module = build_fresh(arch)
    for p in module.parameters():
        p.data.normal_()
    state = {k: v.contiguous().clone() for k, v in module.state_dict().items() if k != "head.weight"}
    save_file(state, str(folder / "trained.safetensors"))
    if "head.weight" in module.state_dict():  # a tied model's checkpoint names both tensors
        state["head.weight"] = state["emb.weight"]
        torch.save(state, folder / "trained.pt")
    return arch


def _load(arch: Path, weights_name: str = "trained.safetensors") -> torch.nn.Module:
    return load_torch_module(collect_files(arch, weights=arch.parent / weights_name), trusted=True)


def _prune_channels(net: torch.nn.Module, keep: list[int]) -> None:
    """What a channel-pruning library does: slice conv1's outputs and everything that reads them."""
    idx = torch.tensor(keep)
    with torch.no_grad():
        net.conv1.weight = torch.nn.Parameter(net.conv1.weight[idx].clone())
        net.conv1.out_channels = len(keep)
        for name in ("weight", "bias"):
            setattr(net.bn1, name, torch.nn.Parameter(getattr(net.bn1, name)[idx].clone()))
        net.bn1.running_mean = net.bn1.running_mean[idx].clone()
        net.bn1.running_var = net.bn1.running_var[idx].clone()
        net.bn1.num_features = len(keep)
        net.conv2.weight = torch.nn.Parameter(net.conv2.weight[:, idx].clone())
        net.conv2.in_channels = len(keep)


def _outputs(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module.eval()(x)


@pytest.fixture
def net_arch(tmp_path: Path) -> Path:
    return _architecture(tmp_path / "src", NET_SOURCE, "net.py")


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))


def test_pruned_model_reloads_with_identical_outputs(net_arch: Path, tmp_path: Path, x) -> None:
    net = _load(net_arch)
    _prune_channels(net, [0, 2, 3, 7, 5])
    out = tmp_path / "out"
    main = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), out
    )

    assert main == out / "net.py"
    assert sorted(p.name for p in out.iterdir()) == ["net.py", "net.safetensors", "net.structure.json"]
    files = collect_files(main)  # the weights and the structure are found beside the .py
    assert files.format is ModelFormat.TORCH_ARCHITECTURE
    assert files.extra == (Path("net.structure.json"),)
    assert files.weights == Path("net.safetensors")
    reloaded = load_torch_module(files, trusted=True)
    assert reloaded.conv1.out_channels == 5 and reloaded.bn1.num_features == 5
    assert torch.equal(_outputs(reloaded, x), _outputs(net, x))


def test_structure_records_only_what_changed(net_arch: Path, tmp_path: Path) -> None:
    net = _load(net_arch)
    _prune_channels(net, [1, 2, 3])
    main = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), tmp_path / "out"
    )
    modules = read_structure(main.with_name("net.structure.json"))["modules"]

    assert sorted(modules) == ["bn1", "conv1", "conv2"]
    assert modules["conv1"]["attributes"] == {"out_channels": 3}
    assert modules["conv1"]["tensors"] == {
        "weight": {"kind": "parameter", "shape": [3, 3, 3, 3], "dtype": "float32"}
    }
    assert modules["bn1"]["tensors"]["running_mean"]["kind"] == "buffer"
    assert "bias" not in modules["conv2"]["tensors"]  # unchanged tensors are not listed


def test_architecture_is_copied_unchanged_so_its_trust_holds(net_arch: Path, tmp_path: Path) -> None:
    net = _load(net_arch)
    main = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), tmp_path / "out"
    )
    assert sha256_file(main) == sha256_file(net_arch)
    assert read_structure(main.with_name("net.structure.json"))["modules"] == {}


def test_no_output_file_is_a_pickle(net_arch: Path, tmp_path: Path) -> None:
    net = _load(net_arch)
    _prune_channels(net, [4, 6])
    main = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), tmp_path / "out"
    )
    for path in (tmp_path / "out").iterdir():
        head = path.read_bytes()[:4]
        assert not head.startswith(b"PK\x03\x04") and head[:1] != b"\x80", path.name
    json.loads(main.with_name("net.structure.json").read_text())
    with safe_open(str(main.with_name("net.safetensors")), framework="pt") as f:
        assert "conv1.weight" in set(f.keys())


def test_chained_changes_are_recorded_against_build_model(net_arch: Path, tmp_path: Path, x) -> None:
    net = _load(net_arch)
    _prune_channels(net, [0, 1, 2, 3, 4, 5])
    first = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), tmp_path / "a"
    )
    again = load_torch_module(collect_files(first), trusted=True)
    _prune_channels(again, [1, 3])  # a second step on the reopened result
    second = save_torch_model(again, collect_files(first), tmp_path / "b")

    reloaded = load_torch_module(collect_files(second), trusted=True)
    assert reloaded.conv1.out_channels == 2
    assert torch.equal(_outputs(reloaded, x), _outputs(again, x))


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path: Path) -> None:
    arch = _architecture(tmp_path / "src", TIED_SOURCE, "tied.py")
    model = _load(arch, "trained.pt")
    with torch.no_grad():  # shrink the shared embedding width from 8 to 5 in both places at once
        model.emb.weight = torch.nn.Parameter(model.emb.weight[:, :5].clone())
        model.head.weight = model.emb.weight
        model.emb.embedding_dim, model.head.in_features = 5, 5
    main = save_torch_model(model, collect_files(arch, weights=arch.parent / "trained.pt"), tmp_path / "out")

    with safe_open(str(main.with_name("tied.safetensors")), framework="pt") as f:
        assert sorted(f.keys()) == ["emb.weight"]
    reloaded = load_torch_module(collect_files(main), trusted=True)
    assert reloaded.head.weight is reloaded.emb.weight
    ids = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(_outputs(reloaded, ids), _outputs(model, ids))


RECURRENT_SOURCE = textwrap.dedent(
    """
    from torch import nn


    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 6)
            self.rnn = nn.LSTM(6, 5, batch_first=True)

        def forward(self, x):
            return self.rnn(self.proj(x))[0]


    def build_model():
        return Tagger()
    """
)


def test_a_recurrent_layer_with_fewer_inputs_reloads(tmp_path: Path) -> None:
    arch = _architecture(tmp_path / "src", RECURRENT_SOURCE, "tagger.py")
    model = _load(arch)
    keep = torch.tensor([0, 2, 5])
    with torch.no_grad():
        model.proj.weight = torch.nn.Parameter(model.proj.weight[keep].clone())
        model.proj.bias = torch.nn.Parameter(model.proj.bias[keep].clone())
        model.proj.out_features = 3
        model.rnn.weight_ih_l0 = torch.nn.Parameter(model.rnn.weight_ih_l0[:, keep].clone())
        model.rnn.input_size = 3
    main = save_torch_model(
        model, collect_files(arch, weights=arch.parent / "trained.safetensors"), tmp_path / "out"
    )

    reloaded = load_torch_module(collect_files(main), trusted=True)
    x = torch.randn(2, 7, 4, generator=torch.Generator().manual_seed(0))
    assert reloaded.rnn.input_size == 3
    assert torch.equal(_outputs(reloaded, x), _outputs(model, x))


def test_structure_naming_a_missing_layer_is_refused(net_arch: Path, tmp_path: Path) -> None:
    net = _load(net_arch)
    _prune_channels(net, [0, 1])
    main = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), tmp_path / "out"
    )
    structure_file = main.with_name("net.structure.json")
    document = json.loads(structure_file.read_text())
    document["modules"]["decoder.3"] = document["modules"].pop("conv1")
    structure_file.write_text(json.dumps(document))

    with pytest.raises(ModelFormatError, match="names a layer 'decoder.3' that the model does not have"):
        load_torch_module(collect_files(main), trusted=True)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"forward": 1}, "not a layer setting"),
        ({"_version": 9}, "not a layer setting"),
        ({"weight": 2}, "not a layer"),
    ],
)
def test_structure_cannot_set_methods_or_private_state(attributes: dict, message: str) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(2, 2))
    structure = {"modules": {"0": {"attributes": attributes}}}
    with pytest.raises(ModelFormatError, match=message):
        apply_structure(module, structure)


def test_structure_from_a_newer_studio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.structure.json"
    path.write_text(json.dumps({"format": "studio-torch-structure", "version": 99, "modules": {}}))
    with pytest.raises(ModelFormatError, match="newer studio"):
        read_structure(path)


def test_weights_that_do_not_fit_the_structure_are_refused(net_arch: Path, tmp_path: Path) -> None:
    net = _load(net_arch)
    _prune_channels(net, [0, 1, 2])
    main = save_torch_model(
        net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), tmp_path / "out"
    )
    (tmp_path / "out" / "net.safetensors").write_bytes((net_arch.parent / "trained.safetensors").read_bytes())
    with pytest.raises(ModelFormatError, match="does not fit net.py"):
        load_torch_module(collect_files(main), trusted=True)


def test_a_replaced_layer_type_is_refused_before_writing(net_arch: Path, tmp_path: Path) -> None:
    net = _load(net_arch)
    net.norm = torch.nn.Identity()
    out = tmp_path / "out"
    with pytest.raises(ModelFormatError, match="layer 'norm' is a Identity"):
        save_torch_model(net, collect_files(net_arch, weights=net_arch.parent / "trained.safetensors"), out)
    assert not out.exists() or not any(out.iterdir())


def test_plain_architecture_still_needs_its_weights_named(net_arch: Path) -> None:
    with pytest.raises(ModelFormatError, match="pass its weights too"):
        collect_files(net_arch)
