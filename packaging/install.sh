#!/usr/bin/env bash
# Install the built application for one user or for everyone, with its launcher entry, icons and
# file types; or remove it again. Run from a checkout after packaging/build.sh (it installs
# dist/studio and dist/share), or from the unpacked release archive that build.sh writes.
#
#   packaging/install.sh ~/.local               the application in ~/.local/lib/model-optimization-studio,
#                                               `studio` in ~/.local/bin, desktop files in ~/.local/share
#   sudo packaging/install.sh /usr/local        for every user
#   packaging/install.sh --uninstall ~/.local   remove what the line above installed
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -x "$HERE/studio/studio" ]]; then
    BUILD="$HERE"  # the release archive: studio/, share/ and this script side by side
else
    BUILD="$(cd "$HERE/.." && pwd)/dist"  # a checkout
fi
NAME="model-optimization-studio"
UNINSTALL=0
if [[ "${1:-}" == "--uninstall" ]]; then
    UNINSTALL=1
    shift
fi
PREFIX="${1:?usage: install.sh [--uninstall] PREFIX (for example ~/.local)}"
PREFIX="$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)"
APP_DIR="$PREFIX/lib/$NAME"
SHARE="$PREFIX/share"
DESKTOP="$SHARE/applications/$NAME.desktop"

refresh_caches() {
    if command -v update-mime-database >/dev/null; then update-mime-database "$SHARE/mime" || true; fi
    if command -v update-desktop-database >/dev/null; then update-desktop-database "$SHARE/applications" || true; fi
    if command -v gtk-update-icon-cache >/dev/null; then gtk-update-icon-cache -f -t "$SHARE/icons/hicolor" 2>/dev/null || true; fi
}

if [[ "$UNINSTALL" == 1 ]]; then
    if [[ -L "$PREFIX/bin/studio" && "$(readlink "$PREFIX/bin/studio")" == "$APP_DIR/studio" ]]; then
        rm -f "$PREFIX/bin/studio"
    fi
    rm -rf "$APP_DIR"
    rm -f "$DESKTOP" "$SHARE/metainfo/io.github.modeloptimizationstudio.metainfo.xml" \
        "$SHARE/mime/packages/$NAME-mime.xml"
    find "$SHARE/icons/hicolor" -name "$NAME.*" -delete 2>/dev/null || true
    refresh_caches
    echo "Removed Model Optimization Studio from $PREFIX (projects and settings are kept)"
    exit 0
fi

if [[ ! -x "$BUILD/studio/studio" || ! -d "$BUILD/share" ]]; then
    echo "install.sh: no build in $BUILD; run packaging/build.sh first" >&2
    exit 2
fi
STAGING="$(mktemp -d "$PREFIX/.$NAME.XXXXXX")"
trap 'rm -rf "$STAGING"' EXIT
cp -a "$BUILD/studio/." "$STAGING/"
mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$SHARE"
rm -rf "$APP_DIR"
mv "$STAGING" "$APP_DIR"  # the new application appears whole, never half-copied
ln -sfn "$APP_DIR/studio" "$PREFIX/bin/studio"
cp -a "$BUILD/share/." "$SHARE/"
# Launchers do not always search PREFIX/bin: the installed desktop file names the program exactly.
sed -i -e "s|^Exec=studio |Exec=\"$APP_DIR/studio\" |" -e "s|^TryExec=studio$|TryExec=$APP_DIR/studio|" "$DESKTOP"
refresh_caches
echo "Installed into $PREFIX: run $PREFIX/bin/studio, or find Model Optimization Studio among your applications"
