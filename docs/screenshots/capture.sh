#!/usr/bin/env bash
# The README's screenshot of `strata dive`: the explorer on the corpus image `three`
# (a real Debian image; /work/shared/bench/make_corpus.sh), run in a tmux pane of
# 120x40, layer 3 selected, the file tree focused and its unchanged paths hidden, captured with its colours
# (`capture-pane -e`) and rendered to PNG by ansi2png.py (Pillow).
#
#   usage: docs/screenshots/capture.sh [CORPUS=/tmp/corpus] [OUT=docs/screenshots/dive.png]
set -euo pipefail
C=${1:-/tmp/corpus}; OUT=${2:-docs/screenshots/dive.png}
cd "$(dirname "$0")/../.."
for t in tmux python3; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
python3 -c 'import PIL' 2>/dev/null || { echo "missing Pillow: pip install Pillow" >&2; exit 1; }
[ -f "$C/oci/index.json" ] || { echo "no OCI layout at $C/oci (run make_corpus.sh)" >&2; exit 1; }
cargo build --quiet --release -p strata-cli
W=$(mktemp -d /dev/shm/strata-shot.XXXXXX)
SOCK=strata-shot-$$
trap 'tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
cp -a "$C/oci" "$W/oci"   # strata keeps a lock file beside index.json
tmux -L "$SOCK" -f /dev/null new-session -d -x 120 -y 40 -s shot \
  "TERM=xterm-256color '$PWD/target/release/strata' --store '$W/oci' dive three; sleep 600"
until tmux -L "$SOCK" capture-pane -p -t shot | grep -q 'Image efficiency score'; do sleep 0.2; done
# Layer 3 (deletions, edits), then the tree with the unchanged paths hidden (^U), the
# cursor on an edited file.
tmux -L "$SOCK" send-keys -t shot Down Down Tab C-u
sleep 0.5
tmux -L "$SOCK" send-keys -t shot j j j
sleep 0.5
tmux -L "$SOCK" capture-pane -e -p -t shot >"$W/screen.txt"
python3 docs/screenshots/ansi2png.py "$W/screen.txt" "$OUT" 120 40
echo "wrote $OUT"
