"""Datasets: what accuracy is measured on and what calibration reads.

Every loader ends in the same small `Dataset`: arrays keyed ``"x"`` (one input) or by model input
name, plus integer labels when the source has them. Nothing here runs code from a file: `.npz`
files are opened with ``allow_pickle=False``, so an object array is refused instead of unpickled.
Splits are fixed by a seed, so every model version of a project is scored on the same samples.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from studio.api import DatasetError, StudioError
from studio.core.models import TensorSpec
from studio.core.resources import resource

SplitPart = Literal["train", "validation", "calibration"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LABEL_COLUMN_NAMES = ("label", "target", "y", "class")
TINY_DATASET = 5  # below this many samples a dataset is not split at all


@dataclass
class Dataset:
    """Samples in memory: ``arrays`` share their first (sample) dimension with ``labels``."""

    name: str
    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    classes: list[str] | None = field(default=None)  # label index -> class name, when known

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(
            name=self.name,
            arrays={k: v[idx] for k, v in self.arrays.items()},
            labels=None if self.labels is None else self.labels[idx],
            source=self.source,
            classes=self.classes,
        )

    def fingerprint(self) -> str:
        """A hash of the samples themselves, so a measurement records which data it used
        even after the file on disk was replaced."""
        digest = hashlib.sha256()
        for key in sorted(self.arrays):
            _hash_array(digest, key, self.arrays[key])
        if self.labels is not None:
            _hash_array(digest, "\0labels", self.labels)
        return digest.hexdigest()

    def split(
        self,
        part: SplitPart,
        *,
        seed: int = 0,
        validation_fraction: float = 0.2,
        calibration_size: int = 256,
    ) -> Dataset:
        """One part of a fixed split: the same dataset and seed always give the same samples.

        Validation and train are disjoint; calibration is drawn from train, so a quantized
        model is never calibrated on the samples it is then scored on. A tiny dataset (fewer
        than 5 samples) is not split: every part is the whole set.
        """
        indices = split_indices(len(self), part, seed, validation_fraction, calibration_size)
        return self.subset(indices)


def step_part(dataset: Dataset) -> Dataset:
    """The part of a dataset a technique may see: all but the validation split (seed 0, 20 %) on
    which the studio judges every result (the gate, every measurement). A step's own train,
    validation and calibration splits are cut from this part, the same way."""
    return dataset.split("train")


def split_indices(
    n: int, part: SplitPart, seed: int, validation_fraction: float, calibration_size: int
) -> np.ndarray:
    if part not in ("train", "validation", "calibration"):
        raise StudioError(f"unknown dataset split '{part}'; use train, validation or calibration")
    if not 0.0 < validation_fraction < 1.0:
        raise StudioError(f"validation fraction must be between 0 and 1, not {validation_fraction}")
    if calibration_size < 1:
        raise StudioError("calibration size must be at least 1")
    if n < TINY_DATASET:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * validation_fraction)))
    chosen = {
        "validation": order[:n_val],
        "train": order[n_val:],
        "calibration": order[n_val : n_val + calibration_size],
    }[part]
    return np.sort(chosen)  # keep file order inside a part: the first samples stay the first


def _hash_array(digest: hashlib._Hash, key: str, array: np.ndarray) -> None:
    digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
    digest.update(np.ascontiguousarray(array).tobytes())


# Feeding a model ------------------------------------------------------------------------------


def bind(dataset: Dataset, inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Map the dataset's arrays onto the model's inputs, checked and cast, before any run.

    One array and one input pair up whatever their names; otherwise arrays are matched to
    inputs by name. A shape or type that cannot fit is refused here with one sentence rather
    than failing deep inside the runtime. Inputs that do not take samples (a state, a fixed
    value: see studio.core.input_roles) are left to the runner.
    """
    inputs = [spec for spec in inputs if spec.role == "batch"]
    if len(dataset.arrays) == 1 and len(inputs) == 1:
        (array,) = dataset.arrays.values()
        return {inputs[0].name: _fit(dataset.name, array, inputs[0])}
    if "x" in dataset.arrays and len(dataset.arrays) == 1:
        names = ", ".join(spec.name for spec in inputs)
        raise DatasetError(
            f"dataset '{dataset.name}' gives one array 'x', but the model takes {len(inputs)} inputs "
            f"({names}); save one array per input, named after it"
        )
    feeds = {}
    for spec in inputs:
        if spec.name not in dataset.arrays:
            have = ", ".join(sorted(dataset.arrays))
            raise DatasetError(
                f"dataset '{dataset.name}' has no array for the model's input '{spec.name}' (it has {have})"
            )
        feeds[spec.name] = _fit(dataset.name, dataset.arrays[spec.name], spec)
    return feeds


def _fit(dataset_name: str, array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    sample, wanted = tuple(array.shape[1:]), tuple(spec.shape[1:])
    fits = len(sample) == len(wanted) and all(
        not isinstance(w, int) or w == s for s, w in zip(sample, wanted, strict=True)
    )
    if not fits:
        shown = tuple(w if isinstance(w, int) else "?" for w in wanted)
        raise DatasetError(
            f"dataset '{dataset_name}' gives samples of shape {_shape(sample)}, "
            f"but the model's input '{spec.name}' takes {_shape(shown)}"
        )
    return np.ascontiguousarray(_cast(dataset_name, array, spec))


def _shape(dims: tuple) -> str:
    inner = ", ".join(str(d) for d in dims)
    return f"({inner},)" if len(dims) == 1 else f"({inner})"


def _cast(dataset_name: str, array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Cast only where no value changes meaning: float width, or integers that fit."""
    target = np.dtype(spec.dtype)
    if array.dtype == target:
        return array
    src_kind, dst_kind = array.dtype.kind, target.kind
    if src_kind == "f" and dst_kind == "f":
        return array.astype(target)
    if src_kind in "iub" and dst_kind in "iu":
        info = np.iinfo(target)
        if array.size == 0 or (array.min() >= info.min and array.max() <= info.max):
            return array.astype(target)
    if src_kind == "b" and dst_kind == "b":
        return array
    hint = "; scale them and save them as float32" if src_kind in "iu" and dst_kind == "f" else ""
    raise DatasetError(
        f"dataset '{dataset_name}' gives {array.dtype} samples, "
        f"but the model's input '{spec.name}' takes {target}{hint}"
    )


def iter_batches(feeds: dict[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Slices (views, not copies) of every input at once, the last batch possibly shorter."""
    if batch_size < 1:
        raise StudioError("batch size must be at least 1")
    lengths = {len(v) for v in feeds.values()}
    if len(lengths) > 1:
        raise DatasetError("the dataset's arrays do not all have the same number of samples")
    n = lengths.pop() if lengths else 0
    for start in range(0, n, batch_size):
        yield {k: v[start : start + batch_size] for k, v in feeds.items()}


# Loading -------------------------------------------------------------------------------------


class DatasetSpec(BaseModel):
    """Where a dataset comes from and how to read it: small enough to travel in a job record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    image_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    grayscale: bool = False
    label_column: str | None = None

    def load(self) -> Dataset:
        return load_dataset(
            self.source,
            image_size=self.image_size,
            mean=self.mean,
            std=self.std,
            grayscale=self.grayscale,
            label_column=self.label_column,
        )


def load_dataset(
    spec: str,
    *,
    image_size: tuple[int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    grayscale: bool = False,
    label_column: str | None = None,
) -> Dataset:
    """Read "digits" (the shipped sample), an `.npz`, an image folder or a `.csv`.

    ``image_size`` is (height, width); it, ``mean``, ``std`` and ``grayscale`` apply to image
    folders, ``label_column`` to CSV files.
    """
    if spec == "digits":
        path = resource("demo", "digits.npz")
        if not path.is_file():
            raise DatasetError(f"the shipped digits sample is missing from {path.parent}")
        return _load_npz(path, name="digits", source="digits")
    path = Path(spec).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset file or folder not found: {spec}")
    if path.is_dir():
        return _load_image_folder(path, image_size=image_size, mean=mean, std=std, grayscale=grayscale)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, name=path.stem, source=str(path))
    if suffix == ".csv":
        return _load_csv(path, label_column=label_column)
    raise DatasetError(
        f"cannot read '{path.name}' as a dataset; give an .npz file, a .csv file or an image folder"
    )


def _load_npz(path: Path, *, name: str, source: str) -> Dataset:
    arrays: dict[str, np.ndarray] = {}
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"'{path.name}' is not a readable .npz file (it is not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = npz[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DatasetError(
                f"'{path.name}' holds Python objects, which the studio does not load; save plain numeric arrays"
            ) from None
        raise DatasetError(f"'{path.name}' is not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"'{path.name}' is not a readable .npz file ({exc})") from None
    labels = arrays.pop("y", None)
    inputs = {"x": arrays["x"]} if "x" in arrays else arrays
    if not inputs:
        raise DatasetError(f"'{path.name}' has no array 'x' (nor any array named after a model input)")
    return _checked(Dataset(name, inputs, None, source), labels, path.name)


def _checked(dataset: Dataset, labels: np.ndarray | None, label_where: str) -> Dataset:
    """Common rules for every loader: numeric samples, equal lengths, integer labels."""
    lengths = set()
    for key, array in dataset.arrays.items():
        if array.ndim == 0 or array.dtype.kind not in "biuf":
            raise DatasetError(
                f"array '{key}' of '{label_where}' must be numeric with one row per sample, not {array.dtype} {array.shape}"
            )
        lengths.add(len(array))
    if len(lengths) > 1:
        raise DatasetError(f"the arrays of '{label_where}' do not all have the same number of samples")
    n = lengths.pop()
    if n == 0:
        raise DatasetError(f"'{label_where}' holds no samples")
    if labels is not None:
        dataset.labels = _integer_labels(labels, n, label_where)
    return dataset


def _integer_labels(labels: np.ndarray, n: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DatasetError(
            f"the labels of '{where}' must be one integer per sample, not shape {labels.shape}"
        )
    if len(labels) != n:
        raise DatasetError(
            f"'{where}' has {n} samples but {len(labels)} labels; x and y must have the same length"
        )
    integral = labels.dtype.kind in "iub" or (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    )
    if not integral:
        raise DatasetError(
            f"the labels of '{where}' must be integers (class indices), not {labels.dtype} values"
        )
    return labels.astype(np.int64)


def _load_csv(path: Path, *, label_column: str | None) -> Dataset:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read '{path.name}': {exc}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise DatasetError(f"'{path.name}' needs a header row and at least one row of data")
    header = [name.strip() for name in rows[0]]
    if len(header) < 2:
        raise DatasetError(f"'{path.name}' needs at least one feature column and a label column")
    label_at = _label_index(header, label_column, path.name)
    values = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise DatasetError(
                f"row {r + 2} of '{path.name}' has {len(row)} cells, but the header has {len(header)}"
            )
        for c, cell in enumerate(row):
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise DatasetError(
                    f"row {r + 2}, column '{header[c]}' of '{path.name}' is not a number: {cell!r}"
                ) from None
    features = np.delete(values, label_at, axis=1).astype(np.float32)
    dataset = Dataset(path.stem, {"x": features}, None, str(path))
    return _checked(dataset, values[:, label_at], f"{path.name}, column '{header[label_at]}'")


def _label_index(header: list[str], label_column: str | None, file_name: str) -> int:
    if label_column is not None:
        if label_column not in header:
            raise DatasetError(f"'{file_name}' has no column '{label_column}' (it has {', '.join(header)})")
        return header.index(label_column)
    lowered = [name.lower() for name in header]
    for name in LABEL_COLUMN_NAMES:
        if name in lowered:
            return lowered.index(name)
    return len(header) - 1


def _load_image_folder(
    root: Path,
    *,
    image_size: tuple[int, int] | None,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    grayscale: bool,
) -> Dataset:
    """``root/class_name/*.png``: classes sorted by name give the label indices, as in
    torchvision's ImageFolder, so a model trained that way reads its own class order."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"folder '{root}' has no class folders; put the images in one folder per class")
    files = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((root / name).iterdir())
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DatasetError(f"folder '{root}' has no .png or .jpg images in its class folders")
    channels = 1 if grayscale else 3
    shift, scale = _normalisation(mean, std, channels)
    size = image_size or _image_size(files[0][0])
    if len(size) != 2 or min(size) < 1:
        raise DatasetError(f"image size must be two positive numbers (height, width), not {size}")
    x = np.empty((len(files), channels, size[0], size[1]), dtype=np.float32)
    for i, (path, _) in enumerate(files):
        x[i] = _read_image(path, size, grayscale)
    x = (x - shift) / scale
    labels = np.array([label for _, label in files], dtype=np.int64)
    return Dataset(root.name, {"x": x.astype(np.float32)}, labels, str(root), classes=classes)


def _normalisation(
    mean: tuple[float, ...] | None, std: tuple[float, ...] | None, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    def per_channel(values: tuple[float, ...] | None, default: float, what: str) -> np.ndarray:
        if values is None:
            values = (default,)
        if len(values) not in (1, channels):
            raise DatasetError(f"{what} needs 1 or {channels} values (one per channel), not {len(values)}")
        array = np.asarray(values, dtype=np.float32)
        return np.broadcast_to(array, (channels,)).reshape(1, channels, 1, 1)

    shift, scale = per_channel(mean, 0.0, "mean"), per_channel(std, 1.0, "std")
    if np.any(scale == 0):
        raise DatasetError("std values must not be zero")
    return shift, scale


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image '{path}': {exc}") from None
    return height, width


def _read_image(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image '{path}': {exc}") from None
    return pixels[None] if grayscale else pixels.transpose(2, 0, 1)
