#!/usr/bin/env bash
# Build the one-folder Linux application into dist/studio and say how big it is and where it went.
#
#   packaging/build.sh                 build dist/studio (and dist/share with icons, .desktop, MIME)
#   packaging/build.sh --install DIR   then install it into DIR (e.g. ~/.local) with packaging/install.sh
#
# It also writes dist/model-optimization-studio-VERSION-linux-ARCH.tar.gz, the file to hand out:
# unpacked, it holds studio/, share/ and install.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
INSTALL_PREFIX=""
if [[ "${1:-}" == "--install" ]]; then
    INSTALL_PREFIX="${2:?--install needs a folder, e.g. ~/.local}"
fi

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is not installed for $PYTHON; install it with: $PYTHON -m pip install -e \".[package]\"" >&2
    exit 2
fi
"$PYTHON" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/studio.spec
"$PYTHON" packaging/check_build.py dist/studio

SHARE="dist/share"
rm -rf "$SHARE"
mkdir -p "$SHARE/applications" "$SHARE/metainfo" "$SHARE/mime/packages" "$SHARE/icons"
"$PYTHON" packaging/make_icons.py "$SHARE/icons" >/dev/null
cp packaging/model-optimization-studio.desktop "$SHARE/applications/"
cp packaging/io.github.modeloptimizationstudio.metainfo.xml "$SHARE/metainfo/"
cp packaging/model-optimization-studio-mime.xml "$SHARE/mime/packages/"

VERSION="$("$PYTHON" -c 'import studio; print(studio.__version__)')"
RELEASE="model-optimization-studio-$VERSION-linux-$(uname -m)"
rm -f "dist/$RELEASE.tar.gz"
tar --transform "s,^,$RELEASE/,SH" -C dist -cf - studio share -C "$ROOT/packaging" install.sh \
    | gzip -1 > "dist/$RELEASE.tar.gz.part"
mv "dist/$RELEASE.tar.gz.part" "dist/$RELEASE.tar.gz"

if [[ -n "$INSTALL_PREFIX" ]]; then
    packaging/install.sh "$INSTALL_PREFIX"
fi

SIZE="$(du -sh dist/studio | cut -f1)"
echo "Built: $ROOT/dist/studio/studio"
echo "Size:  $SIZE ($ROOT/dist/studio)"
echo "Desktop files: $ROOT/$SHARE"
echo "Release: $ROOT/dist/$RELEASE.tar.gz ($(du -h "dist/$RELEASE.tar.gz" | cut -f1))"
