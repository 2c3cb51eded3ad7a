#!/usr/bin/env bash
# Remake the translations: extract the interface's strings from chatgui/ui/**/*.py (and the sampler
# registry's labels, chatgui/common/samplers.py, the backend registry's, chatgui/common/backends.py, and a failed
# reply's words, chatgui/session/failures.py) into the .ts
# (new strings arrive "unfinished", vanished ones are dropped), then compile the .qm the app loads.
# After it: translate every unfinished message in chatgui/i18n/chatgui_zh_CN.ts (Qt Linguist, or
# by hand: fill in <translation> and remove type="unfinished"), and run it again to compile.
# tests/test_i18n.py fails while a string is untranslated or the .qm is older than the .ts.
set -euo pipefail
cd "$(dirname "$0")/.."
for lang in zh_CN; do
  pyside6-lupdate -no-obsolete -locations none $(find chatgui/ui -name "*.py") chatgui/common/samplers.py chatgui/common/backends.py chatgui/session/failures.py -ts "chatgui/i18n/chatgui_${lang}.ts"
  pyside6-lrelease "chatgui/i18n/chatgui_${lang}.ts" -qm "chatgui/i18n/chatgui_${lang}.qm"
done
