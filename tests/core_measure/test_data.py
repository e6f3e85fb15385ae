"""Datasets: every loader, every refusal, deterministic splits, binding to model inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.api import DatasetError, StudioError
from studio.core.data import Dataset, DatasetSpec, bind, iter_batches, load_dataset
from studio.core.models import TensorSpec

IMAGE_INPUT = TensorSpec("input", ("batch", 1, 8, 8), "float32")


def _dataset(n: int = 100, labels: bool = True) -> Dataset:
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    y = np.arange(n, dtype=np.int64) % 3 if labels else None
    return Dataset("numbers", {"x": x}, y, "memory")


# .npz ------------------------------------------------------------------------------------------


def test_npz_with_x_and_y(tmp_path: Path) -> None:
    path = tmp_path / "set.npz"
    np.savez(path, x=np.ones((6, 1, 8, 8), np.float32), y=np.arange(6))
    dataset = load_dataset(str(path))
    assert dataset.name == "set"
    assert len(dataset) == 6
    assert dataset.arrays["x"].shape == (6, 1, 8, 8)
    assert dataset.labels.dtype == np.int64
    assert dataset.labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_npz_named_arrays_without_labels(tmp_path: Path) -> None:
    path = tmp_path / "tokens.npz"
    ids = np.zeros((3, 6), np.int64)
    np.savez(path, input_ids=ids, attention_mask=ids + 1)
    dataset = load_dataset(str(path))
    assert sorted(dataset.arrays) == ["attention_mask", "input_ids"]
    assert dataset.labels is None


def test_npz_float_labels_with_whole_values_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "set.npz"
    np.savez(path, x=np.ones((3, 2), np.float32), y=np.array([0.0, 2.0, 1.0]))
    assert load_dataset(str(path)).labels.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y": np.arange(3)}, "has no array 'x'"),
        ({"x": np.ones((4, 2)), "y": np.arange(3)}, "x and y must have the same length"),
        ({"x": np.ones((3, 2)), "y": np.array([0.5, 1.0, 2.0])}, "must be integers"),
        ({"x": np.ones((0, 2))}, "holds no samples"),
        ({"x": np.array(["a", "b"])}, "must be numeric"),
    ],
)
def test_npz_refusals(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(path))


def test_npz_object_array_is_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DatasetError, match="Python objects"):
        load_dataset(str(path))


def test_npz_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset(str(path))


def test_missing_file_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(str(tmp_path / "nowhere.npz"))
    other = tmp_path / "data.parquet"
    other.write_bytes(b"x")
    with pytest.raises(DatasetError, match="cannot read 'data.parquet' as a dataset"):
        load_dataset(str(other))


def test_shipped_digits() -> None:
    dataset = load_dataset("digits")
    assert dataset.name == "digits"
    assert dataset.arrays["x"].shape[1:] == (1, 28, 28)
    assert dataset.arrays["x"].dtype == np.float32
    assert len(dataset.labels) == len(dataset)
    assert len(dataset.split("validation")) == round(len(dataset) * 0.2)


# image folders ---------------------------------------------------------------------------------


def _image_folder(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> Path:
    for label, (cls, shapes) in enumerate(sizes.items()):
        (root / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(shapes):
            value = 50 * (label + 1)
            Image.new("RGB", (w, h), (value, value, value)).save(root / cls / f"{i}.png")
    return root


def test_image_folder_labels_by_sorted_class_name(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets", {"dog": [(6, 4), (6, 4)], "cat": [(6, 4)]})
    dataset = load_dataset(str(root))
    assert dataset.classes == ["cat", "dog"]
    assert dataset.labels.tolist() == [0, 1, 1]
    assert dataset.arrays["x"].shape == (3, 3, 4, 6)  # N, C, H, W; size from the first image
    assert dataset.arrays["x"].dtype == np.float32
    np.testing.assert_allclose(dataset.arrays["x"][0], 100 / 255, rtol=1e-6)  # cat: grey 100, scaled


def test_image_folder_resize_grayscale_and_normalise(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets", {"a": [(10, 10)], "b": [(7, 5)]})
    dataset = load_dataset(str(root), image_size=(4, 3), grayscale=True, mean=(0.5,), std=(0.25,))
    x = dataset.arrays["x"]
    assert x.shape == (2, 1, 4, 3)
    np.testing.assert_allclose(x[0], (50 / 255 - 0.5) / 0.25, rtol=1e-5)
    np.testing.assert_allclose(x[1], (100 / 255 - 0.5) / 0.25, rtol=1e-5)


def test_image_folder_per_channel_normalisation_and_wrong_count(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets", {"a": [(2, 2)]})
    x = load_dataset(str(root), mean=(0.0, 0.1, 0.2), std=(1.0, 1.0, 2.0)).arrays["x"]
    np.testing.assert_allclose(x[0, :, 0, 0], [50 / 255, 50 / 255 - 0.1, (50 / 255 - 0.2) / 2], rtol=1e-5)
    with pytest.raises(DatasetError, match="mean needs 1 or 3 values"):
        load_dataset(str(root), mean=(0.1, 0.2))


def test_image_folder_refusals(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(str(empty))
    (empty / "cls").mkdir()
    (empty / "cls" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no .png or .jpg images"):
        load_dataset(str(empty))
    (empty / "cls" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image .*broken.png"):
        load_dataset(str(empty))


# CSV -------------------------------------------------------------------------------------------


def test_csv_label_column_found_by_name(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,label,b\n1,0,2.5\n3,1,4\n")
    dataset = load_dataset(str(path))
    assert dataset.arrays["x"].tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert dataset.arrays["x"].dtype == np.float32
    assert dataset.labels.tolist() == [0, 1]


def test_csv_last_column_or_named_column(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("f1,f2,kind\n1,2,1\n3,4,0\n")
    assert load_dataset(str(path)).labels.tolist() == [1, 0]
    chosen = load_dataset(str(path), label_column="f1")
    assert chosen.labels.tolist() == [1, 3]
    assert chosen.arrays["x"].tolist() == [[2.0, 1.0], [4.0, 0.0]]


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("a,label\n1,0\n2,oops\n", {}, r"row 3, column 'label' .* is not a number: 'oops'"),
        ("a,b,label\n1,x,0\n", {}, r"row 2, column 'b'"),
        ("a,label\n1,0.5\n", {}, "must be integers"),
        ("a,label\n", {}, "at least one row of data"),
        ("a,label\n1,0,3\n", {}, "has 3 cells"),
        ("a,b\n1,0\n", {"label_column": "target"}, "has no column 'target'"),
    ],
)
def test_csv_refusals(tmp_path: Path, text: str, options: dict, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(path), **options)


def test_dataset_spec_round_trips_as_json_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,b,target\n1,2,0\n")
    spec = DatasetSpec(source=str(path), label_column="target")
    again = DatasetSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert again.load().labels.tolist() == [0]


# splits and fingerprints -----------------------------------------------------------------------


def test_splits_are_deterministic_disjoint_and_calibration_comes_from_train() -> None:
    dataset = _dataset(100)
    val = dataset.split("validation")
    train = dataset.split("train")
    calib = dataset.split("calibration", calibration_size=30)
    assert (len(val), len(train), len(calib)) == (20, 80, 30)
    rows = {
        name: {tuple(r) for r in part.arrays["x"]} for name, part in [("v", val), ("t", train), ("c", calib)]
    }
    assert not rows["v"] & rows["t"]
    assert rows["c"] <= rows["t"]
    assert np.array_equal(dataset.split("validation").arrays["x"], val.arrays["x"])
    assert not np.array_equal(dataset.split("validation", seed=1).arrays["x"], val.arrays["x"])


def test_validation_split_follows_the_documented_rule() -> None:
    """A permutation from the seed, the first round(N * fraction) indices are validation."""
    dataset = _dataset(37)
    expected = np.sort(np.random.default_rng(0).permutation(37)[: round(37 * 0.2)])
    assert np.array_equal(dataset.split("validation").labels, dataset.labels[expected])


def test_tiny_dataset_is_not_split() -> None:
    dataset = _dataset(3)
    assert len(dataset.split("validation")) == 3
    assert len(dataset.split("train")) == 3


def test_split_refuses_bad_options() -> None:
    with pytest.raises(StudioError, match="validation fraction"):
        _dataset().split("validation", validation_fraction=1.0)
    with pytest.raises(StudioError, match="unknown dataset split"):
        _dataset().split("test")  # type: ignore[arg-type]


def test_fingerprint_changes_with_data_and_labels() -> None:
    a, b = _dataset(10), _dataset(10)
    assert a.fingerprint() == b.fingerprint()
    b.labels[0] += 1
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() != _dataset(10, labels=False).fingerprint()
    assert a.subset([0, 1]).fingerprint() != a.fingerprint()


# binding and batching --------------------------------------------------------------------------


def test_bind_single_array_casts_float64() -> None:
    values = np.linspace(-2.0, 2.0, 2 * 8 * 8).reshape(2, 1, 8, 8)
    dataset = Dataset("d", {"x": values}, None, "memory")
    feeds = bind(dataset, [IMAGE_INPUT])
    assert list(feeds) == ["input"]
    assert feeds["input"].dtype == np.float32
    np.testing.assert_array_equal(feeds["input"], values.astype(np.float32))


def test_bind_shape_mismatch_says_both_shapes() -> None:
    dataset = Dataset("digits", {"x": np.zeros((2, 1, 28, 28), np.float32)}, None, "memory")
    spec = TensorSpec("input", ("N", 3, 224, 224), "float32")
    with pytest.raises(DatasetError) as err:
        bind(dataset, [spec])
    assert str(err.value) == (
        "dataset 'digits' gives samples of shape (1, 28, 28), but the model's input 'input' takes (3, 224, 224)"
    )


def test_bind_symbolic_dims_accept_any_size_but_rank_must_match() -> None:
    spec = TensorSpec("ids", ("batch", "sequence"), "int64")
    dataset = Dataset("d", {"x": np.zeros((2, 11), np.int32)}, None, "memory")
    assert bind(dataset, [spec])["ids"].dtype == np.int64
    flat = Dataset("d", {"x": np.zeros((2, 11, 1), np.int64)}, None, "memory")
    with pytest.raises(DatasetError, match=r"shape \(11, 1\).* takes \(\?,\)"):
        bind(flat, [spec])


def test_bind_named_arrays_and_missing_one() -> None:
    inputs = [TensorSpec("input_ids", ("b", 6), "int64"), TensorSpec("attention_mask", ("b", 6), "int64")]
    ids = np.zeros((2, 6), np.int64)
    feeds = bind(Dataset("t", {"input_ids": ids, "attention_mask": ids}, None, "m"), inputs)
    assert list(feeds) == ["input_ids", "attention_mask"]
    with pytest.raises(DatasetError, match="no array for the model's input 'attention_mask'"):
        bind(Dataset("t", {"input_ids": ids, "other": ids}, None, "m"), inputs)
    with pytest.raises(DatasetError, match="takes 2 inputs"):
        bind(Dataset("t", {"x": ids}, None, "m"), inputs)


def test_bind_refuses_unsafe_casts() -> None:
    with pytest.raises(DatasetError, match="gives uint8 samples.*scale them"):
        bind(Dataset("d", {"x": np.zeros((1, 1, 8, 8), np.uint8)}, None, "m"), [IMAGE_INPUT])
    small = TensorSpec("ids", ("b", 2), "int8")
    with pytest.raises(DatasetError, match="takes int8"):
        bind(Dataset("d", {"x": np.full((1, 2), 1000, np.int64)}, None, "m"), [small])


def test_iter_batches_covers_every_sample_once() -> None:
    feeds = {"a": np.arange(10), "b": np.arange(10) * 2}
    batches = list(iter_batches(feeds, 4))
    assert [len(b["a"]) for b in batches] == [4, 4, 2]
    assert np.concatenate([b["b"] for b in batches]).tolist() == (np.arange(10) * 2).tolist()
    with pytest.raises(StudioError, match="batch size must be at least 1"):
        list(iter_batches(feeds, 0))
