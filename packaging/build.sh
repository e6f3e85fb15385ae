#!/usr/bin/env bash
# Build the one-folder Linux application into dist/studio and say how big it is and where it went.
#
#   packaging/build.sh                 build dist/studio (and dist/share with icons, .desktop, MIME)
#   packaging/build.sh --install DIR   also install into DIR (e.g. ~/.local): the application in
#                                      DIR/lib/model-optimization-studio, a `studio` link in
#                                      DIR/bin, and the desktop integration files in DIR/share
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
INSTALL_PREFIX=""
if [[ "${1:-}" == "--install" ]]; then
    INSTALL_PREFIX="${2:?--install needs a folder, e.g. ~/.local}"
fi

"$PYTHON" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/studio.spec

SHARE="dist/share"
rm -rf "$SHARE"
mkdir -p "$SHARE/applications" "$SHARE/metainfo" "$SHARE/mime/packages" "$SHARE/icons"
"$PYTHON" packaging/make_icons.py "$SHARE/icons" >/dev/null
cp packaging/model-optimization-studio.desktop "$SHARE/applications/"
cp packaging/io.github.modeloptimizationstudio.metainfo.xml "$SHARE/metainfo/"
cp packaging/model-optimization-studio-mime.xml "$SHARE/mime/packages/"

if [[ -n "$INSTALL_PREFIX" ]]; then
    APP_DIR="$INSTALL_PREFIX/lib/model-optimization-studio"
    rm -rf "$APP_DIR"
    mkdir -p "$APP_DIR" "$INSTALL_PREFIX/bin" "$INSTALL_PREFIX/share"
    cp -a dist/studio/. "$APP_DIR/"
    ln -sf "$APP_DIR/studio" "$INSTALL_PREFIX/bin/studio"
    cp -a "$SHARE/." "$INSTALL_PREFIX/share/"
    command -v update-mime-database >/dev/null && update-mime-database "$INSTALL_PREFIX/share/mime" || true
    command -v update-desktop-database >/dev/null && update-desktop-database "$INSTALL_PREFIX/share/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -f -t "$INSTALL_PREFIX/share/icons/hicolor" || true
    echo "Installed into $INSTALL_PREFIX (run: $INSTALL_PREFIX/bin/studio)"
fi

SIZE="$(du -sh dist/studio | cut -f1)"
echo "Built: $ROOT/dist/studio/studio"
echo "Size:  $SIZE ($ROOT/dist/studio)"
echo "Desktop files: $ROOT/$SHARE"
