"""Trust decisions: per machine, per file hash, surviving restarts and never crashing on a bad file."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from studio.core.files import sha256_file
from studio.core.models import collect_files
from studio.core.trust import TrustStore, files_needing_trust, grant, is_model_trusted, resolve_trust


def test_default_store_lives_in_the_data_dir(_private_data_dir):
    assert TrustStore.default().path == _private_data_dir / "trust.json"


def test_trust_is_remembered_across_instances(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    digest = sha256_file(model)
    TrustStore.default().trust(digest, model)
    store = TrustStore.default()
    assert store.is_trusted(digest)
    assert not store.is_trusted("0" * 64)
    entry = store.entries()[digest]
    assert entry["path"] == str(model.absolute())
    assert entry["trusted_at"].endswith("+00:00")


def test_revoke_forgets(tmp_path):
    store = TrustStore(tmp_path / "trust.json")
    store.trust("ab" * 32, tmp_path / "a.pt")
    store.trust("cd" * 32, tmp_path / "b.pt")
    store.revoke("ab" * 32)
    store.revoke("ef" * 32)  # revoking what was never trusted is not an error
    assert not store.is_trusted("ab" * 32)
    assert store.is_trusted("cd" * 32)
    assert set(json.loads(store.path.read_text())["files"]) == {"cd" * 32}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"files": "nope"}', "\x00\x01"])
def test_corrupt_trust_file_counts_as_empty_with_a_warning(tmp_path, caplog, content):
    store = TrustStore(tmp_path / "trust.json")
    store.path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="studio.core.trust"):
        assert not store.is_trusted("ab" * 32)
    assert "trust file" in caplog.text
    store.trust("ab" * 32, tmp_path / "a.pt")  # a new decision replaces the damaged file
    assert store.is_trusted("ab" * 32)


def test_writes_leave_no_temporary_files(tmp_path):
    store = TrustStore(tmp_path / "data" / "trust.json")
    store.trust("ab" * 32, tmp_path / "a.pt")
    assert [p.name for p in store.path.parent.iterdir()] == ["trust.json"]


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("onnx", False),
        ("onnx_external", False),
        ("torchscript", True),
        ("exported_program", False),
        ("arch", True),
        ("pickle", True),
    ],
)
def test_only_code_bearing_files_need_trust(corpus, name, needs):
    files = collect_files(getattr(corpus, name), weights=corpus.arch_weights if name == "arch" else None)
    assert files_needing_trust(files) == ([files.main] if needs else [])
    assert is_model_trusted(files) is not needs


def test_grant_then_edit_needs_trust_again(corpus, tmp_path):
    arch = tmp_path / "arch.py"
    shutil.copy(corpus.arch, arch)
    files = collect_files(arch, weights=corpus.arch_weights)
    assert resolve_trust(files, trust=False) is False
    assert grant(files) == [sha256_file(arch)]
    assert resolve_trust(files, trust=False) is True
    arch.write_text(arch.read_text() + "\n# edited\n")
    assert not is_model_trusted(files)
    assert resolve_trust(files, trust=True) is True
    assert is_model_trusted(files)
