"""The studio's side of the plugin API: models, datasets and services a technique runs with.

It lives in whatever process runs the technique (a worker, or the tests) and never touches the
project database: another version is reached through a ``resolve`` callback, and output goes
only to ``output_dir``, from which the studio stores it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from studio.api import Cancelled, ModelOutput, ParameterError, TechniqueResult, TensorSpec
from studio.core.models import ModelFiles, ModelFormat, collect_files

EVAL_BATCH = 64


class LocalModel:
    """A ModelHandle over files on disk."""

    def __init__(
        self,
        files: ModelFiles,
        *,
        trusted: bool,
        input_shapes: list[tuple[int, ...]] | None,
        scratch: Callable[[], Path],
        name: str | None = None,
        input_roles: Mapping[str, str] | None = None,
    ) -> None:
        self.files = files
        self.trusted = trusted
        self.input_shapes = input_shapes
        self.input_roles = None if input_roles is None else dict(input_roles)
        self.name = name or files.main.stem
        self.kind = "onnx" if files.format is ModelFormat.ONNX else "torch"
        self.path = files.main
        self._scratch = scratch
        self._onnx: Path | None = None

    @cached_property
    def _info(self):
        from studio.core.graph import inspect_model

        return inspect_model(self.files, trusted=self.trusted, input_shapes=self.input_shapes)

    @cached_property
    def inputs(self) -> list[TensorSpec]:
        from studio.core.input_roles import assign_roles

        return assign_roles(self._info.inputs, self.input_roles)

    def fixed_inputs(self) -> dict[str, np.ndarray]:
        from studio.core.input_roles import BATCH, fixed_array

        return {s.name: fixed_array(s, s.role) for s in self.inputs if s.role != BATCH}

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._info.outputs)

    @property
    def params(self) -> int:
        return int(self._info.params)

    @property
    def macs(self) -> int:
        return int(self._info.macs)

    def onnx_path(self) -> Path:
        if self.kind == "onnx":
            return self.files.main
        if self._onnx is None:
            from studio.core.models import export_onnx, torch_input_specs

            module = self.load_torch()
            specs = torch_input_specs(self.files, module, self.input_shapes)
            path = self._scratch() / f"{self.name}.onnx"
            export_onnx(
                module,
                self.example_inputs(1),
                path,
                input_names=[s.name for s in specs],
                output_names=[s.name for s in self.outputs] or None,
            )
            self._onnx = path
        return self._onnx

    def load_onnx(self):
        from studio.core.models import load_onnx

        return load_onnx(self.files) if self.kind == "onnx" else _load_onnx_file(self.onnx_path())

    def load_torch(self):
        if self.kind != "torch":
            raise ParameterError(f"{self.name} is an ONNX model; this step needs a PyTorch model")
        from studio.core.models import load_torch_module

        return load_torch_module(self.files, trusted=self.trusted)

    def example_inputs(self, batch: int = 1) -> tuple:
        from studio.core.models import torch_example_inputs, torch_input_specs

        if self.kind == "torch":
            from studio.core.input_roles import assign_roles

            specs = assign_roles(
                torch_input_specs(self.files, self.load_torch(), self.input_shapes), self.input_roles
            )
        else:
            specs = self.inputs
        return torch_example_inputs(specs, batch=batch)


def _load_onnx_file(path: Path):
    from studio.core.models import load_onnx

    return load_onnx(collect_files(Path(path)))


class LocalDataset:
    """A DatasetHandle: one split, bound to the input model's input names."""

    def __init__(self, dataset: Any, inputs: list[TensorSpec]) -> None:
        from studio.core.data import bind

        self.name = dataset.name
        self.labels = dataset.labels
        self._feeds = bind(dataset, inputs)
        self._n = len(dataset)

    def __len__(self) -> int:
        return self._n

    def feeds(self) -> dict[str, np.ndarray]:
        return self._feeds

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[tuple[dict, Any]]:
        order = np.random.default_rng(seed).permutation(self._n) if shuffle else np.arange(self._n)
        for start in range(0, self._n, batch_size):
            idx = order[start : start + batch_size]
            labels = None if self.labels is None else self.labels[idx]
            yield {k: v[idx] for k, v in self._feeds.items()}, labels


class LocalContext:
    """A Context for one run; use as a context manager so scratch space is removed."""

    def __init__(
        self,
        model: Path | ModelFiles,
        *,
        dataset: Any = None,
        output_dir: Path,
        device: str = "cpu",
        threads: int | None = None,
        trusted: bool = False,
        input_shapes: list[tuple[int, ...]] | None = None,
        input_roles: Mapping[str, str] | None = None,
        progress: Callable[[float, str], None] | None = None,
        cancel_requested: Callable[[], bool] | None = None,
        resolve: Callable[[str], Any] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.device = device
        self.threads = threads
        self.log = log or logging.getLogger("studio.technique")
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._scratch_root: Path | None = None
        files = model if isinstance(model, ModelFiles) else collect_files(Path(model))
        self.model = LocalModel(
            files, trusted=trusted, input_shapes=input_shapes, scratch=self.temp_dir, input_roles=input_roles
        )
        self._dataset_spec = dataset
        self._datasets: dict[str, LocalDataset] = {}
        self._loaded = None
        self._on_progress = progress
        self._cancel_requested = cancel_requested or (lambda: False)
        self._resolve = resolve

    # -- lifetime ------------------------------------------------------------------------------

    def __enter__(self) -> LocalContext:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._scratch_root is not None:
            shutil.rmtree(self._scratch_root, ignore_errors=True)

    def temp_dir(self) -> Path:
        if self._scratch_root is None:
            self._scratch_root = Path(tempfile.mkdtemp(prefix="studio-run-"))
        return Path(tempfile.mkdtemp(dir=self._scratch_root))

    # -- inputs --------------------------------------------------------------------------------

    def dataset(self, split: str = "train") -> LocalDataset | None:
        """A split of the part of the dataset a step may see.

        The studio judges every result on the validation split of the whole dataset (the result
        gate, every measurement); a step never sees those samples. Its own train, validation and
        calibration splits are cut, the same way, from the rest: what it tunes or selects on is
        not what its result is judged on.
        """
        if self._dataset_spec is None:
            return None
        if split not in self._datasets:
            if self._loaded is None:
                from studio.core.data import step_part

                self._loaded = step_part(self._dataset_spec.load())
            self._datasets[split] = LocalDataset(self._loaded.split(split), self.model.inputs)
        return self._datasets[split]

    def model_ref(self, ref: str) -> LocalModel:
        from studio.core.trust import is_model_trusted

        path = Path(ref).expanduser()
        if path.exists():
            files, shapes, roles = collect_files(path), None, None
        elif self._resolve is not None:
            files, shapes, *rest = self._resolve(ref)
            roles = rest[0] if rest else None
        else:
            raise ParameterError(f"'{ref}' is neither a model file nor a version of this project")
        return LocalModel(
            files,
            trusted=is_model_trusted(files),
            input_shapes=shapes,
            scratch=self.temp_dir,
            input_roles=roles,
        )

    # -- progress --------------------------------------------------------------------------------

    def cancelled(self) -> bool:
        return bool(self._cancel_requested())

    def progress(self, fraction: float, message: str = "") -> None:
        if self.cancelled():
            raise Cancelled("cancelled by the user")
        if self._on_progress is not None:
            self._on_progress(min(max(float(fraction), 0.0), 1.0), message)

    # -- services ------------------------------------------------------------------------------

    def predict(self, model: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
        from studio.core.evaluate import predict
        from studio.core.input_roles import roles_of
        from studio.core.runtime import open_runner

        if _is_torch_module(model):
            return _predict_torch(model, feeds, self.device)
        files = model.files if isinstance(model, LocalModel) else collect_files(Path(model))
        trusted = model.trusted if isinstance(model, LocalModel) else False
        shapes = model.input_shapes if isinstance(model, LocalModel) else None
        # a file a step wrote has its input model's interface (the gate holds it to that)
        roles = roles_of((model if isinstance(model, LocalModel) else self.model).inputs)
        with contextlib.closing(
            open_runner(
                files,
                runtime="onnxruntime",
                device=self.device,
                threads=self.threads,
                trusted=trusted,
                input_shapes=shapes,
                input_roles=roles,
            )
        ) as runner:
            named = _rename(feeds, runner.inputs)
            return predict(runner, named, batch_size=EVAL_BATCH)

    def accuracy(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        from studio.core.evaluate import accuracy

        return accuracy(outputs, labels)

    def fidelity(self, outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        from studio.core.evaluate import fidelity

        return fidelity(outputs, reference)

    def latency_ms(self, model: Path, *, batch: int = 1, runs: int = 50) -> float:
        from studio.core.benchmark import BenchmarkSettings, random_feeds, time_runner
        from studio.core.input_roles import roles_of
        from studio.core.runtime import open_runner

        settings = BenchmarkSettings(
            batch=batch, threads=self.threads or 1, warmup=5, min_runs=runs, min_seconds=0.2
        )
        files = collect_files(Path(model))
        roles = roles_of(self.model.inputs)
        with contextlib.closing(
            open_runner(files, device=self.device, threads=self.threads or 1, input_roles=roles)
        ) as runner:
            split = self.dataset("validation")
            if split is not None:
                feeds = {k: _first(v, batch) for k, v in _rename(split.feeds(), runner.inputs).items()}
            else:
                feeds = random_feeds(runner.inputs, batch)
            return time_runner(runner, feeds, settings).p50

    # -- outputs -------------------------------------------------------------------------------

    def save_onnx(self, model: Any, name: str = "model.onnx") -> ModelOutput:
        import onnx

        target = self.output_dir / name
        if isinstance(model, (str, Path)):
            source = collect_files(Path(model))
            for src, rel in source.sources():
                dest = self.output_dir / (name if src == source.main.absolute() else rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        else:
            large = model.ByteSize() > 1_800_000_000
            onnx.save_model(
                model,
                target,
                save_as_external_data=large,
                location=f"{name}.data" if large else None,
            )
        return ModelOutput(main=target, kind="onnx")

    def save_torch(self, module: Any, like: LocalModel | None = None) -> ModelOutput:
        from studio.core.torch_structure import save_torch_model

        base = like or self.model
        if base.kind != "torch" or base.files.format is not ModelFormat.TORCH_ARCHITECTURE:
            raise ParameterError(
                "a PyTorch result can be saved only next to an architecture file (.py with build_model())"
            )
        main = save_torch_model(module, base.files, self.output_dir)
        return ModelOutput(main=main, kind="torch")

    def check_output(self, result: TechniqueResult) -> None:
        main = Path(result.output.main).resolve()
        if self.output_dir.resolve() not in main.parents or not main.is_file():
            raise RuntimeError(f"the technique's output {main} is not a file inside its output folder")


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(obj, torch.nn.Module)


def _predict_torch(module: Any, feeds: dict[str, np.ndarray], device: str) -> np.ndarray:
    import torch

    module = module.to(device).eval()
    arrays = list(feeds.values())
    n = len(arrays[0])
    outs = []
    with torch.inference_mode():
        for start in range(0, n, EVAL_BATCH):
            batch = [
                torch.from_numpy(np.ascontiguousarray(a[start : start + EVAL_BATCH])).to(device)
                for a in arrays
            ]
            out = module(*batch)
            if isinstance(out, (tuple, list)):
                out = out[0]
            elif isinstance(out, dict):
                out = next(iter(out.values()))
            outs.append(out.detach().float().cpu().numpy())
    return np.concatenate(outs)


def _rename(feeds: dict[str, np.ndarray], inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Feeds bound to one model's input names, for another model with the same inputs in order."""
    names = [s.name for s in inputs]
    if set(names) <= set(feeds):
        return {name: feeds[name] for name in names}
    return {spec.name: value for spec, value in zip(inputs, feeds.values(), strict=False)}


def _first(array: np.ndarray, batch: int) -> np.ndarray:
    reps = -(-batch // len(array))
    return np.concatenate([array] * reps)[:batch] if reps > 1 else array[:batch]
