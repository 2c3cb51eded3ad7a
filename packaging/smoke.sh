#!/usr/bin/env bash
# Smoke-test the built bundle dist/chatgui/ on a virtual X screen (Linux):
# start it, wait for its window, screenshot it, send one message and wait for the model's reply;
# then `chatgui serve` (the OpenAI API, no window) answers one request.
# Prints the bundle size, the time to window and the time to the first full reply.
#   bash packaging/smoke.sh [MODEL.gguf]   use this model (default: the one in the user's models folder;
#                                          without one, the reply check is skipped)
#   bash packaging/smoke.sh --fetch        first run for real: the app downloads the default model itself
# The app runs on its own throwaway data and config folders. Needs: Xvfb, xdotool,
# ImageMagick's `import` (Debian: xvfb xdotool imagemagick, and Qt's libxcb-* libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
APP=${CHATGUI_APP:-dist/chatgui/chatgui}   # CHATGUI_APP: another launcher to compare with
OUT=build/smoke
FETCH=; [ "${1:-}" = "--fetch" ] && FETCH=1 && shift
MODEL=${1:-${XDG_DATA_HOME:-$HOME/.local/share}/chatgui/models/SmolLM2-135M-Instruct.Q4_1.gguf}
WINDOW_TIMEOUT=${WINDOW_TIMEOUT:-60}
REPLY_TIMEOUT=${REPLY_TIMEOUT:-300}
[ -x "$APP" ] || { echo "no bundle at $APP: run packaging/build.sh first" >&2; exit 1; }
for tool in Xvfb xdotool import; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install xvfb xdotool imagemagick)" >&2; exit 1; }
done
rm -rf "$OUT"; mkdir -p "$OUT/data" "$OUT/config"

Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$OUT/display" >"$OUT/xvfb.log" 2>&1 &
XVFB=$!
APP_PID= SERVE_PID=
cleanup() {
  set +e
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  kill "$XVFB" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do [ -s "$OUT/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$OUT/display")" QT_QPA_PLATFORM=xcb
export CHATGUI_DATA_DIR="$PWD/$OUT/data" CHATGUI_CONFIG_DIR="$PWD/$OUT/config"
if [ -n "$FETCH" ]; then
  export CHATGUI_AUTO_FETCH=1
else
  export CHATGUI_NO_FETCH=1
  [ -f "$MODEL" ] && export CHATGUI_MODEL="$MODEL"
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
start=$(now)
"$APP" >"$OUT/app.log" 2>&1 &
APP_PID=$!
window=
while [ -z "$window" ]; do
  window=$(xdotool search --onlyvisible --name '^chatgui$' 2>/dev/null | head -n1 || true)
  kill -0 "$APP_PID" 2>/dev/null || { echo "the app exited; its log:" >&2; cat "$OUT/app.log" >&2; exit 1; }
  [ "$(elapsed "$start" | cut -d. -f1)" -ge "$WINDOW_TIMEOUT" ] && { echo "no window after ${WINDOW_TIMEOUT}s" >&2; exit 1; }
  [ -z "$window" ] && sleep 0.1
done
to_window=$(elapsed "$start")
sleep 2
import -window root "$OUT/window.png"
echo "bundle size: $(du -sh dist/chatgui | cut -f1)"
echo "time to window: ${to_window}s"
echo "screenshot: $OUT/window.png"

if [ -z "${CHATGUI_MODEL:-}$FETCH" ]; then
  echo "no model at $MODEL: skipped the reply check"
  exit 0
fi
if [ -n "$FETCH" ]; then
  # A message sent while the model is still downloading is answered with "no model": wait for the
  # file, then give the app a few seconds to load it.
  fetch_start=$(now)
  until [ -f "$OUT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]; do
    [ "$(elapsed "$fetch_start" | cut -d. -f1)" -ge "$REPLY_TIMEOUT" ] && { echo "no model fetched after ${REPLY_TIMEOUT}s" >&2; exit 1; }
    sleep 0.5
  done
  echo "model fetched in $(elapsed "$fetch_start")s after the window appeared"
  sleep 10
fi
xdotool windowactivate --sync "$window" 2>/dev/null || xdotool windowfocus --sync "$window" || true
xdotool type --delay 20 "Say hello in five words."
xdotool key Return
sent=$(now)
reply=
while [ -z "$reply" ]; do
  reply=$(python3 - "$OUT/data/chats" <<'EOF'
import json, pathlib, sys
for path in pathlib.Path(sys.argv[1]).glob("*.json"):
    if path.name.startswith("."):
        continue
    for m in json.loads(path.read_text(encoding="utf-8")).get("messages", []):
        if m.get("role") == "assistant" and m.get("content", "").strip() and m.get("meta", {}).get("finish_reason"):
            print(json.dumps(m["content"][:200]), m["meta"].get("tokens_per_second"))
EOF
  )
  kill -0 "$APP_PID" 2>/dev/null || { echo "the app exited; its log:" >&2; cat "$OUT/app.log" >&2; exit 1; }
  [ "$(elapsed "$sent" | cut -d. -f1)" -ge "$REPLY_TIMEOUT" ] && { import -window root "$OUT/no-reply.png"; echo "no reply after ${REPLY_TIMEOUT}s (see $OUT/no-reply.png)" >&2; exit 1; }
  [ -z "$reply" ] && sleep 0.5
done
echo "reply after $(elapsed "$sent")s (text, tokens/s): $reply"
sleep 1
import -window root "$OUT/reply.png"
echo "screenshot: $OUT/reply.png"
kill "$APP_PID" 2>/dev/null; wait "$APP_PID" 2>/dev/null || true; APP_PID=

"$APP" serve --model "${CHATGUI_MODEL:-$OUT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}" --port 0 --quiet \
  >"$OUT/serve.out" 2>"$OUT/serve.log" &
SERVE_PID=$!
serve_start=$(now)
until [ -s "$OUT/serve.out" ]; do
  kill -0 "$SERVE_PID" 2>/dev/null || { echo "chatgui serve exited; its log:" >&2; cat "$OUT/serve.log" >&2; exit 1; }
  [ "$(elapsed "$serve_start" | cut -d. -f1)" -ge "$WINDOW_TIMEOUT" ] && { echo "chatgui serve did not start" >&2; exit 1; }
  sleep 0.2
done
python3 - "$(head -n1 "$OUT/serve.out")" <<'EOF'
import json, sys, urllib.request
url = sys.argv[1]
model = json.load(urllib.request.urlopen(url + "/models", timeout=30))["data"][0]["id"]
body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 16}
request = urllib.request.Request(url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
reply = json.load(urllib.request.urlopen(request, timeout=300))
print(f"chatgui serve at {url} answered: {json.dumps(reply['choices'][0]['message']['content'])}")
EOF
