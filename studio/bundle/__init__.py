"""`.studio` bundles: a whole project (database and model files) as one file to save and share.

A bundle is a zip holding ``manifest.json`` (format version, studio version, schema revision, and
the path, sha256 and size of every member), ``studio.sqlite`` and ``artifacts/<sha256>/<files>``.
Packing is deterministic; unpacking checks everything before it writes anything, and never runs
or unpickles anything from the bundle.
"""

from studio.bundle.checks import Limits, check_member_name
from studio.bundle.manifest import FORMAT_VERSION, MANIFEST_NAME, MIGRATIONS, Manifest, migrate, read_manifest
from studio.bundle.pack import PackResult, pack_project, snapshot_database
from studio.bundle.unpack import UnpackResult, default_unpack_folder, inspect_bundle, unpack_bundle

BUNDLE_SUFFIX = ".studio"

__all__ = [
    "BUNDLE_SUFFIX",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "MIGRATIONS",
    "Limits",
    "Manifest",
    "PackResult",
    "UnpackResult",
    "check_member_name",
    "default_unpack_folder",
    "inspect_bundle",
    "migrate",
    "pack_project",
    "read_manifest",
    "snapshot_database",
    "unpack_bundle",
]
