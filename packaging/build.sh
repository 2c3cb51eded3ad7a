#!/usr/bin/env bash
# Build the one-folder app bundle dist/chatgui/ with PyInstaller, in a throwaway venv under build/.
#   bash packaging/build.sh            reuse build/venv if it is there
#   bash packaging/build.sh --fresh    start from a new venv
# torch is pinned to 2.13.0: that pin takes the CPU wheel (an unpinned torch may pull a multi-GB CUDA
# build). PyInstaller is a build tool: it goes in this venv only, never in the app's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=build/venv
[ "${1:-}" = "--fresh" ] && rm -rf "$VENV"
if [ ! -d "$VENV" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
BIN="$VENV/bin"; [ -d "$VENV/Scripts" ] && BIN="$VENV/Scripts"   # Windows (Git Bash)
PY="$BIN/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m pip install -q torch==2.13.0
"$PY" -m pip install -q . "pyinstaller>=6.10"
[ -f assets/icon.ico ] || QT_QPA_PLATFORM=offscreen "$PY" packaging/make_icons.py
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/chatgui.spec
echo "built dist/chatgui in $(( $(date +%s) - start )) s; size: $(du -sh dist/chatgui | cut -f1)"
