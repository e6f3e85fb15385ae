"""Where does fine-tuning a ResNet-18-size network pay: the CPU, data-parallel ranks, a GPU?

One run fine-tunes the same pruned ResNet-18 (11.2 M parameters before pruning, half its channels
removed) on the same synthetic images, through the studio's own training step (prune.structured
with its fine-tuning, as `studio optimize` runs it, ranks and all), on every placement this
machine offers:

- ``cpu``: one process, fp32;
- ``cpu ×2 ranks``: two data-parallel processes (gloo), as several GPUs run it;
- with a GPU: ``cuda:0`` in bf16 mixed precision (the default there), ``cuda:0 fp32``, two ranks
  sharing the GPU (gloo), and one rank per GPU (NCCL) where there are two or more.

The figure is the fine-tuning time (the epochs' own seconds, not the pruning or the process
starts; every run in a fresh process), in rounds: every placement once per round, in an order shuffled every round; each
placement's ratio to ``cpu`` is the median of the per-round ratios, with its interquartile
range. The validation accuracy each reached is printed beside it (the validation split, which
the fine-tuning never trains on), so a fast placement that learned less shows it.

    python tests/benchmarks/bench_training.py [--rounds 3] [--images 256] [--size 64] [--epochs 2] [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from targets import Report, add_arguments, quartiles, settle_defaults

from studio.core.benchmark import ModelRef
from studio.core.data import DatasetSpec
from studio.core.hardware import cuda_devices
from studio.core.models import collect_files
from studio.core.trust import grant
from studio.jobs.targets import technique_step
from studio.jobs.worker import TechniqueJob

RESNET18 = textwrap.dedent(
    '''
    """ResNet-18 (He et al. 2015), as torchvision builds it, for CLASSES classes."""
    import torch
    from torch import nn

    CLASSES = 10
    INPUT_SHAPE = (1, 3, SIZE, SIZE)


    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + (x if self.down is None else self.down(x)))


    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            )
            layers, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(512, CLASSES)

        def forward(self, x):
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


    def build_model():
        return ResNet18()
    '''
)


def make_model(folder: Path, size: int) -> ModelRef:
    import torch
    from safetensors.torch import save_file

    from studio.core.torch_structure import build_fresh

    folder.mkdir(parents=True, exist_ok=True)
    arch = folder / "resnet18.py"
    arch.write_text(RESNET18.replace("SIZE", str(size)), encoding="utf-8")
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in build_fresh(arch).state_dict().items()}
    save_file(state, str(folder / "resnet18.safetensors"))
    files = collect_files(arch, weights=folder / "resnet18.safetensors")
    grant(files)
    return ModelRef.of(files, trusted=True)


def make_images(path: Path, count: int, size: int, classes: int = 10) -> DatasetSpec:
    """Noise with a class-coloured square at a class-dependent place: learnable in a few epochs."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.5, size=(count, 3, size, size)).astype(np.float32)
    y = rng.integers(0, classes, size=count)
    side = size // 4
    for i, label in enumerate(y):
        row, col = divmod(int(label) % 9, 3)
        x[i, label % 3, row * side : row * side + side, col * side : col * side + side] += 2.0
    np.savez(path, x=x, y=y.astype(np.int64))
    return DatasetSpec(source=str(path))


def placements() -> dict[str, tuple[str, list[str], bool]]:
    """name → (device, ranks, mixed precision), for what this machine has."""
    found = {"cpu": ("cpu", [], True), "cpu ×2 ranks (gloo)": ("cpu", ["cpu", "cpu"], True)}
    gpus = cuda_devices()
    if gpus:
        found["cuda:0 bf16"] = ("cuda:0", [], True)
        found["cuda:0 fp32"] = ("cuda:0", [], False)
        found["cuda:0 ×2 ranks (gloo)"] = ("cuda:0", ["cuda:0", "cuda:0"], True)
    if len(gpus) >= 2:
        names = [f"cuda:{g['index']}" for g in gpus]
        found[f"{len(names)} GPUs (nccl)"] = (names[0], names, True)
    return found


def fine_tune(model: ModelRef, data: DatasetSpec, out: Path, where: tuple, epochs: int, threads: int) -> dict:
    device, ranks, mixed = where
    out.mkdir(parents=True, exist_ok=True)
    job = TechniqueJob(
        technique="prune.structured",
        params={"ratio": 0.5, "finetune_epochs": epochs, "batch_size": 32, "mixed_precision": mixed},
        model=model,
        dataset=data,
        output_dir=str(out),
        device=device,
        ranks=ranks,
        threads=threads,
    )
    result = technique_step(lambda *_: None, lambda: False, job.model_dump(mode="json"))
    details = result["details"]
    return {
        "seconds": sum(row["seconds"] for row in details["finetune"]),
        "accuracy": details["finetune"][-1]["val_accuracy"],
        "training": details["training"],
    }


def in_fresh_process(*args) -> dict:
    """``fine_tune(*args)`` in a process of its own, as a worker runs a step: every placement starts
    alike (no kernels or threads left warm by the one before)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fine_tune, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds, every placement once per round (3)")
    parser.add_argument("--images", type=int, help="training images (256)")
    parser.add_argument("--size", type=int, help="image side in pixels (64)")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (2)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (all cores)")
    add_arguments(parser)
    args = settle_defaults(
        parser.parse_args(),
        {"rounds": 3, "images": 256, "size": 64, "epochs": 2, "threads": 0},
        {"rounds": 2, "images": 128, "size": 32, "epochs": 1},
    )
    import os

    threads = args.threads or os.cpu_count() or 1
    with (
        Report.from_args("training", args) as report,
        tempfile.TemporaryDirectory(prefix="bench-training-") as tmp,
    ):
        root = Path(tmp)
        model = make_model(root / "model", args.size)
        data = make_images(root / "images.npz", args.images, args.size)
        where = placements()
        print(
            f"fine-tuning a pruned ResNet-18 on {args.images} images of {args.size}×{args.size}, "
            f"{args.epochs} epochs, batch 32, {threads} CPU threads; {args.rounds} rounds of {len(where)} placements"
        )
        seconds: dict[str, list[float]] = {name: [] for name in where}
        accuracy: dict[str, list[float]] = {name: [] for name in where}
        rng = random.Random(0)
        for round_ in range(args.rounds):
            order = list(where)
            rng.shuffle(order)
            for name in order:
                got = in_fresh_process(
                    model,
                    data,
                    root / f"out-{round_}-{len(seconds[name])}-{name[:4]}",
                    where[name],
                    args.epochs,
                    threads,
                )
                seconds[name].append(got["seconds"])
                accuracy[name].append(got["accuracy"])
                print(
                    f"  round {round_ + 1}: {name:<26} {got['seconds']:7.2f} s, validation {got['accuracy']:.2%}, {got['training']}"
                )
        print(f"\n{'placement':<26} {'fine-tuning s':>14} {'vs cpu (IQR)':>22} {'val. accuracy':>14}")
        for name in where:
            ratios = [c / s for c, s in zip(seconds["cpu"], seconds[name], strict=True)]
            q1, median, q3 = quartiles(ratios)
            print(
                f"{name:<26} {statistics.median(seconds[name]):14.2f} "
                f"{f'{median:.2f}× ({q1:.2f}–{q3:.2f})':>22} {statistics.median(accuracy[name]):14.2%}"
            )
            if name != "cpu":
                report.figure(
                    f"fine-tuning speed-up of {name} over cpu",
                    f"{median:.2f}× (IQR {q1:.2f}–{q3:.2f})",
                    rounds=args.rounds,
                )
        if not cuda_devices():
            print("\nno GPU on this machine: the GPU placements are measured where there is one")
    return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
