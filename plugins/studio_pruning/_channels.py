"""Channels: which layers may lose them, what the model's outputs need kept, and how many
channels, parameters and multiply-adds a model has before and after pruning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.api import Context, OutputShape, ParameterError, first_line, output_layers, run_outputs

from . import _common as common

if TYPE_CHECKING:
    import torch


class Plan:
    """Which layers may lose channels and which are kept, with the input that traces the model
    and the outputs it gives on that input (the interface the pruned model must keep)."""

    def __init__(
        self, module: torch.nn.Module, example: tuple, kept: dict[str, Any], reference: list[OutputShape]
    ) -> None:
        self.module, self.example, self.kept, self.reference = module, example, kept, reference

    @classmethod
    def of(cls, ctx: Context, module: torch.nn.Module, keep_layers: list[str]) -> Plan:
        kept = common.matching_layers(module, keep_layers)
        device = next((p.device for p in module.parameters()), "cpu")
        example = tuple(t.to(device) for t in ctx.model.example_inputs(1))
        try:
            outputs = output_layers(module, example, prunable(module))
            reference = run_outputs(module, example)
        except Exception as exc:
            raise ParameterError(
                f"the model fails on an input of its declared shape: {first_line(exc)}"
            ) from None
        kept.update({name: dict(module.named_modules())[name] for name in outputs})
        return cls(module, example, kept, reference)

    def ignored(self) -> list[torch.nn.Module]:
        return list(self.kept.values())

    def roots(self) -> dict[str, torch.nn.Module]:
        """The layers whose output channels pruning may remove."""
        return {
            name: layer
            for name, layer in prunable(self.module).items()
            if not common.inside_any(name, self.kept) and not depthwise(layer)
        }

    def check_ratio(self, ratio: float, round_to: int | None) -> None:
        """Refuse a ratio that would leave a layer without channels (or nothing to prune at all)."""
        roots = self.roots()
        if not roots or not self._has_groups():
            raise ParameterError(
                "the model has no layer whose channels can be pruned (only kept or output layers)"
            )
        for name, layer in roots.items():
            channels = out_channels(layer)
            left = int(channels * (1.0 - ratio))
            if round_to:
                left -= left % round_to
            if left < 1:
                raise ParameterError(
                    f"ratio {ratio:g} would remove every channel of layer '{name}' ({channels} channels); "
                    "lower the ratio, lower round_to, or keep that layer"
                )

    def _has_groups(self) -> bool:
        import torch_pruning as tp

        try:
            graph = tp.DependencyGraph().build_dependency(self.module, example_inputs=list(self.example))
        except Exception as exc:
            raise ParameterError(
                f"the model's layer dependencies could not be traced for pruning: {first_line(exc)}"
            ) from None
        ignored = [m for layer in self.ignored() for m in layer.modules()]
        return any(True for _ in graph.get_all_groups(ignored_layers=ignored, root_module_types=root_types()))


def root_types() -> list[type]:
    import torch

    return [torch.nn.modules.conv._ConvNd, torch.nn.Linear]


def prunable(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    types = tuple(root_types())
    return {name: layer for name, layer in module.named_modules() if isinstance(layer, types)}


def depthwise(layer: Any) -> bool:
    """A depthwise convolution follows its input's channels; it is pruned with its producer."""
    groups = getattr(layer, "groups", 1)
    return groups > 1 and groups == getattr(layer, "out_channels", 0)


def out_channels(layer: Any) -> int:
    return int(getattr(layer, "out_channels", None) or getattr(layer, "out_features", 0))


def in_channels(layer: Any) -> int:
    return int(getattr(layer, "in_channels", None) or getattr(layer, "in_features", 0))


def importance(name: str) -> Any:
    import torch_pruning as tp

    return {
        "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
        "taylor": lambda: tp.importance.GroupTaylorImportance(),
        "bn_scale": lambda: tp.importance.BNScaleImportance(),
        "random": lambda: tp.importance.RandomImportance(),
    }[name]()


def count(module: torch.nn.Module, example: tuple) -> tuple[int, int]:
    """Multiply-adds for one sample and parameters, counted the same way before and after, and
    by the studio's own rule (studio.api.module_macs), so that the notes agree with the layer table."""
    from studio.api import module_macs

    module.eval()
    return module_macs(module, tuple(example)), sum(p.numel() for p in module.parameters())


def layer_table(module: torch.nn.Module) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "type": type(layer).__name__,
            "in": in_channels(layer),
            "out": out_channels(layer),
            "params": sum(p.numel() for p in layer.parameters(recurse=False)),
        }
        for name, layer in prunable(module).items()
    }


def compare(before: dict[str, dict], after: dict[str, dict]) -> list[dict[str, Any]]:
    rows = []
    for name, old in before.items():
        new = after.get(name, {"in": 0, "out": 0, "params": 0})
        rows.append(
            {
                "layer": name,
                "type": old["type"],
                "in_before": old["in"],
                "in_after": new["in"],
                "out_before": old["out"],
                "out_after": new["out"],
                "params_before": old["params"],
                "params_after": new["params"],
            }
        )
    return rows
