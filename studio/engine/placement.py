"""Where a step runs: on the hardware the machine has unless the user says otherwise.

A step that trains (fine-tuning after pruning, distillation) goes to a GPU when the machine has
one, since that is where training is fast; with none it trains on the CPU, and says so. A step
that does not train (an ONNX-level quantization) runs on the CPU, where its tools run. A user's
explicit device is kept. Several data-parallel ranks are only for steps that train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio.api import StudioError, Technique

AUTO = "auto"
ANY_GPU = "cuda"  # the first free GPU worker takes it


@dataclass(frozen=True)
class Placement:
    """Where one step's job goes: its worker's device and its ranks (empty for one process).

    ``chosen`` says the studio picked the device (the user asked for "auto"), which is said in the
    version's notes; ``gpus`` names the GPUs it could pick from.
    """

    device: str
    ranks: tuple[str, ...] = ()
    chosen: bool = False
    gpus: str = ""

    def sentence(self, training: dict | None) -> str | None:
        """Where and how the step ran, for its notes, from what its training loop recorded
        (studio.api.TrainingRun.finish); None when there is nothing the user did not already say."""
        if training is None:
            if not self.chosen:
                return None
            return (
                f"Ran on a GPU ({self.gpus})." if self.device == ANY_GPU else "No GPU found: ran on the CPU."
            )
        from studio.jobs.worker import size_text

        precision = "fp32" if training["precision"] == "fp32" else f"{training['precision']} mixed precision"
        if len(self.ranks) > 1:
            where = (
                f"as {len(self.ranks)} data-parallel ranks ({training['backend']}: {', '.join(self.ranks)})"
            )
        elif str(training["device"]).startswith("cuda"):
            where = f"on a GPU ({self.gpus})" if self.chosen else f"on {self.device}"
        else:
            where = "on the CPU"
        peak = training.get("peak_gpu_memory_bytes")
        memory = f", peak GPU memory {size_text(peak)}" if peak else ""
        found = "No GPU found: trained" if self.chosen and self.device == "cpu" else "Trained"
        return f"{found} {where} in {precision}{memory}."


def place_step(
    technique: Technique,
    device: str = AUTO,
    ranks: Sequence[str] = (),
    *,
    gpus: Sequence[dict] | None = None,
    in_recipe: bool = False,
) -> Placement:
    """The placement of one step of ``technique``; ``gpus`` as ``hardware.cuda_devices()`` lists them.

    Ranks asked for a recipe apply to its steps that train; its other steps run on the CPU.
    """
    ranks = tuple(ranks)
    if len(ranks) > 1 and in_recipe and not technique.trains:
        return Placement("cpu")
    if len(ranks) > 1:
        if not technique.trains:
            raise StudioError(
                f"{technique.name} does not train; data-parallel ranks are for steps that train "
                "(prune.structured with fine-tuning, distill)"
            )
        return Placement(ranks[0], ranks)
    if ranks:
        device = ranks[0]
    if device != AUTO:
        return Placement(device)
    if not technique.trains:
        return Placement("cpu")
    if gpus is None:
        from studio.core.hardware import cuda_devices

        gpus = cuda_devices()
    if gpus:
        return Placement(ANY_GPU, chosen=True, gpus=_gpu_names(gpus))
    return Placement("cpu", chosen=True)


def rank_devices(device: str, gpus: str | None = None, ranks: int | None = None) -> tuple[str, ...]:
    """The ranks a user asked for: ``gpus`` "0,1" or "all" (one rank per GPU), ``ranks`` N processes
    (dealt over those GPUs, or on ``device``: N CPU processes, or N ranks sharing one GPU).

    Empty when neither was given. Refused in one sentence when a GPU named is not on this machine.
    """
    if gpus is None and ranks is None:
        return ()
    if ranks is not None and ranks < 1:
        raise StudioError(f"the number of ranks is 1 or more, not {ranks}")
    if gpus is not None:
        chosen = [f"cuda:{index}" for index in _gpu_indices(gpus)]
        count = ranks or len(chosen)
        return tuple(chosen[i % len(chosen)] for i in range(count))
    where = device
    if where in (AUTO, ANY_GPU):
        from studio.core.hardware import cuda_devices

        where = "cuda:0" if cuda_devices() else "cpu"
    return (where,) * (ranks or 1)


def _gpu_indices(text: str) -> list[int]:
    from studio.core.hardware import cuda_devices

    have = [gpu["index"] for gpu in cuda_devices()]
    if text.strip().lower() == "all":
        if not have:
            raise StudioError("--gpus all: no GPU found on this machine")
        return have
    indices: list[int] = []
    for part in text.split(","):
        part = part.strip().removeprefix("cuda:")
        if not part.isdigit():
            raise StudioError(f"--gpus takes GPU numbers such as 0,1 (or all), not {text!r}")
        if int(part) not in have:
            found = "it has none" if not have else "it has " + ", ".join(str(i) for i in have)
            raise StudioError(f"there is no GPU {part} on this machine ({found})")
        if int(part) not in indices:
            indices.append(int(part))
    return indices


def _gpu_names(gpus: Sequence[dict]) -> str:
    names = sorted({gpu["name"] for gpu in gpus})
    count = len(gpus)
    return f"{count} found: {', '.join(names)}" if count > 1 else names[0]
