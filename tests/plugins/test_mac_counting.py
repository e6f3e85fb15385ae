"""One way of counting MACs: the layer table, the quantizers' node ranking and the distiller's
cost of a torch module agree with each other and with a hand count of small real models."""

from __future__ import annotations

import onnx
import pytest
import torch
from studio_distillation.students import cost
from studio_quantization import _common as quant
from torch import nn

from studio.api import module_macs, node_macs
from studio.core.graph import onnx_layers
from studio.core.models import export_onnx

# -- a convolutional model: input 1×3×8×8 --------------------------------------------------------

CONV = (8 * 8 * 8) * (3 * 3 * 3)  # output elements × C_in × k²
GROUPED = (8 * 8 * 8) * (8 // 2 * 3 * 3)  # groups=2: each output sums C_in / 2 × k²
TRANSPOSED = (8 * 4 * 4) * (4 * 2 * 2)  # input elements × C_out × k²: 4×4 grown to 8×8
GEMM = 4 * 10  # a Linear layer on a flat input exports as Gemm: K × N


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.grouped(torch.relu(self.conv(x)))))
        x = self.up(x).mean(dim=(2, 3))
        return self.head(x)


# -- a model of matrix products: input 1×5×16, attention-like ------------------------------------

TOKENS, WIDTH, CLASSES = 5, 16, 4
PROJECTION = TOKENS * WIDTH * WIDTH  # a Linear on a 3-D input exports as MatMul: M × K × N
SCORES = TOKENS * WIDTH * TOKENS  # q @ kᵀ
MIXING = TOKENS * TOKENS * WIDTH  # scores @ v
OUT = TOKENS * WIDTH * CLASSES


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(WIDTH, WIDTH, bias=False)
        self.k = nn.Linear(WIDTH, WIDTH, bias=False)
        self.v = nn.Linear(WIDTH, WIDTH, bias=False)
        self.out = nn.Linear(WIDTH, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2), dim=-1)
        return self.out(scores @ self.v(x))


def _exported(module: nn.Module, example: torch.Tensor, tmp_path) -> onnx.ModelProto:
    path = export_onnx(module.eval(), (example,), tmp_path / "model.onnx", input_names=["input"])
    return onnx.load(str(path))


@pytest.fixture(scope="module")
def conv_graph(tmp_path_factory) -> onnx.ModelProto:
    torch.manual_seed(0)
    return _exported(ConvNet(), torch.randn(1, 3, 8, 8), tmp_path_factory.mktemp("conv"))


@pytest.fixture(scope="module")
def matmul_graph(tmp_path_factory) -> onnx.ModelProto:
    torch.manual_seed(0)
    return _exported(Attention(), torch.randn(1, TOKENS, WIDTH), tmp_path_factory.mktemp("matmul"))


def _macs_by_op(rows) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for op, macs in rows:
        if macs:
            found.setdefault(op, []).append(macs)
    return {op: sorted(values) for op, values in found.items()}


def test_the_layer_table_counts_the_hand_figures(conv_graph, matmul_graph):
    conv = _macs_by_op((layer.op, layer.macs) for layer in onnx_layers(conv_graph))
    assert conv == {"Conv": sorted([CONV, GROUPED]), "ConvTranspose": [TRANSPOSED], "Gemm": [GEMM]}
    matmul = _macs_by_op((layer.op, layer.macs) for layer in onnx_layers(matmul_graph))
    assert matmul == {"MatMul": sorted([PROJECTION] * 3 + [SCORES, MIXING, OUT])}


def test_the_layer_table_scales_with_the_batch(conv_graph):
    one = sum(layer.macs for layer in onnx_layers(conv_graph, batch=1))
    assert sum(layer.macs for layer in onnx_layers(conv_graph, batch=3)) == 3 * one


def test_the_quantizers_rank_nodes_by_the_same_figures(conv_graph, matmul_graph):
    ops = ("MatMul", "Gemm", "Conv", "ConvTranspose")
    conv = quant.weighted_nodes(conv_graph, ops, const_weight_only=False)
    assert _macs_by_op((n.op, n.macs) for n in conv) == {
        "Conv": sorted([CONV, GROUPED]),
        "ConvTranspose": [TRANSPOSED],
        "Gemm": [GEMM],
    }
    matmul = quant.weighted_nodes(matmul_graph, ops, const_weight_only=False)
    assert _macs_by_op((n.op, n.macs) for n in matmul) == {
        "MatMul": sorted([PROJECTION] * 3 + [SCORES, MIXING, OUT])
    }
    weights_only = quant.weighted_nodes(matmul_graph, ("MatMul",))  # dynamic quantization's view
    assert sorted(n.macs for n in weights_only) == sorted([PROJECTION] * 3 + [OUT])
    convs = CONV + GROUPED + TRANSPOSED
    assert quant.conv_share(conv_graph) == pytest.approx(convs / (convs + GEMM))


def test_a_torch_module_is_counted_per_sample_on_its_conv_and_linear_layers():
    """The torch counter hooks Conv and Linear layers; a transposed convolution and a product of
    two activations are not layers it sees, which the ONNX count of the same model includes."""
    torch.manual_seed(0)
    assert cost(ConvNet().eval(), (torch.randn(2, 3, 8, 8),)).macs == CONV + GROUPED + GEMM
    assert module_macs(Attention().eval(), (torch.randn(3, TOKENS, WIDTH),)) == 3 * PROJECTION + OUT


def test_a_student_and_its_onnx_export_agree_on_the_layers_both_count(tmp_path):
    """The distiller compares a torch student with an ONNX teacher's figure: the same layers must
    give the same number whichever way they were counted."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 24 * 24, 10)).eval()
    example = torch.randn(1, 1, 28, 28)
    graph_total = sum(layer.macs for layer in onnx_layers(_exported(module, example, tmp_path)))
    assert cost(module, (example,)).macs == graph_total == 24 * 24 * 6 * 25 + 6 * 24 * 24 * 10


def test_unknown_shapes_and_uncounted_operators_give_zero(conv_graph):
    conv = next(node for node in conv_graph.graph.node if node.op_type == "Conv")
    relu = next(node for node in conv_graph.graph.node if node.op_type == "Relu")
    assert node_macs(conv, {}) == 0
    assert node_macs(conv, {conv.output[0]: ("batch", 8, 8, 8), conv.input[1]: (8, 3, 3, 3)}) == 0
    assert node_macs(conv, {conv.output[0]: (1, 8, 8, 8), conv.input[1]: (8, 3, 3, 3)}) == CONV
    assert node_macs(relu, {name: (1, 8, 8, 8) for name in [*relu.input, *relu.output]}) == 0
