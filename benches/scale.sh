#!/usr/bin/env bash
# Scale benchmark (issue 17): a store with 250,000 index entries, a layer of a million
# small files, a layer of one 8 GiB file. Prints every figure with its goal.
#
#   usage: benches/scale.sh [index|files|unpack|big|all] ...
#
# env: SCRATCH (default /dev/shm/strata-scale: tmpfs, so disk speed is left out),
#      ENTRIES (250000), FILES (1000000), BIG_GIB (8), BIG_RANDOM (set: the big file is
#      random bytes, not sparse), STRATA (a built binary), ROUNDS (3: rounds of the
#      unpack part), REPEAT (7: runs of inspect, tag and rmi for their medians).
#
# index  benches/scale/gen_index.py writes a layout of 2,000 images (500 chains of 4,
#        each image built on the one before) with ENTRIES tags between them, straight
#        into index.json; a first lookup builds strata's index table and image
#        summaries (an inspect opens every image once to find the parent); then inspect,
#        tag, rmi, images and fsck --quick (no re-hash) run on it (inspect, tag and
#        rmi REPEAT times on different names: the median of their wall times)
#        (goals: inspect and tag <= 50 ms, rmi <= 200 ms, images <= 1 s, fsck <= 2 s).
# files  a tree of FILES small files (0-2 KiB, 1,000 per directory), imported as a
#        one-layer image, then: unpack --raw against `tar -xzf` of the same layer blob
#        (goal <= 0.6x), the bundle unpack's and the merged view's (`ls` of a deep
#        directory, `export`) peak RSS (goal <= 64 MiB + 64 bytes per path), commit after
#        a 1-file change (goal <= 0.25 s per 100k files), import against
#        `tar -c | pigz -6` (goal <= 1.0x).
# unpack the files part's unpack --raw figure alone, in ROUNDS interleaved rounds (tar
#        -xzf, unpack --raw, and unpack --raw with STRATA_UNPACK_SEQUENTIAL=1: every file
#        created on one thread, as before issue 17), the median of each and the ratio
#        of the medians (goal <= 0.6x); not part of `all` (files measures it once).
# big    a layer holding one BIG_GIB GiB file (sparse on the source side): import
#        (commit of a directory), unpack --raw, save, load, push and pull (a loopback
#        docker-registry), each with its peak RSS (goal <= 64 MiB) and its throughput
#        against the `cat` and `sha256sum` floors of the same bytes (of the file: with the
#        sparse default, the blob that save, load, push and pull move is much smaller).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
W=${SCRATCH:-/dev/shm/strata-scale}
ENTRIES=${ENTRIES:-250000}
FILES=${FILES:-1000000}
BIG_GIB=${BIG_GIB:-8}
ROUNDS=${ROUNDS:-3}
REPEAT=${REPEAT:-7}
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(all)
for t in python3 tar pigz sha256sum /usr/bin/time; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
# STRATA: a strata binary to measure instead of building this checkout's.
[ -n "${STRATA:-}" ] || cargo build --quiet --release -p strata-cli
S=${STRATA:-$PWD/target/release/strata}
mkdir -p "$W"

# timed NAME CMD...: run once; sets WALL (s), CPU (user + sys, s) and PEAK (MiB) and
# prints them (CPU: on a shared machine, wall time includes waiting for a core).
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$W/time.txt" "$@" >/dev/null 2>"$W/err.txt" \
    || { echo "$name: FAILED: $(tail -3 "$W/err.txt")" >&2; exit 1; }
  read -r WALL USER SYS PEAK_KIB <"$W/time.txt"
  CPU=$(awk -v u="$USER" -v s="$SYS" 'BEGIN { printf "%.2f", u + s }')
  PEAK=$((PEAK_KIB / 1024))
  printf '  %-44s %8.2f s  (cpu %5.2f s)  %6d MiB peak\n' "$name" "$WALL" "$CPU" "$PEAK"
}
# repeated NAME CMD...: run REPEAT times, `{}` in the arguments replaced by the round
# (1, 2, ...); sets WALL to the median wall time (s), timed by the shell's own
# microsecond clock (EPOCHREALTIME: no process started around the command), and prints
# every round.
repeated() {
  local name=$1; shift
  local r t0 t1 us=()
  for r in $(seq "$REPEAT"); do
    local args=("${@//\{\}/$r}")
    t0=${EPOCHREALTIME/./}
    "${args[@]}" >/dev/null 2>"$W/err.txt" || { echo "$name: FAILED: $(tail -3 "$W/err.txt")" >&2; exit 1; }
    t1=${EPOCHREALTIME/./}
    us+=($((t1 - t0)))
  done
  WALL=$(printf '%s\n' "${us[@]}" | sort -n | awk '{a[NR] = $1} END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.4f", m / 1e6}')
  printf '  %-44s %8.4f s  median of %d: %s ms\n' "$name" "$WALL" "$REPEAT" \
    "$(printf '%s\n' "${us[@]}" | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), $1 / 1000}')"
}
# goal TEXT VALUE LIMIT: one line with the figure, its goal and whether it is met.
goal() { awk -v t="$1" -v v="$2" -v l="$3" 'BEGIN { printf "  GOAL %-40s %10.3f  <= %-8s %s\n", t, v, l, (v <= l ? "met" : "NOT MET") }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
is() { local p; for p in "${PARTS[@]}"; do [ "$p" = "$1" ] || [ "$p" = all ] && return 0; done; return 1; }

if is index; then
  echo "== index: $ENTRIES index entries"
  L=$W/index
  rm -rf "$L" "$W/index-w"
  python3 benches/scale/gen_index.py "$L" 500 4 $((ENTRIES / 2000))
  cp -a "$L" "$W/index-w"
  export STRATA_STORE=$W/index-w
  # index.json was written by another program: the first command builds strata's index
  # table (.strata/index.table) from it, and its search for the parent opens every image
  # once and keeps their summaries (.strata/image-summaries.cache); the figures below are
  # those of the commands after.
  timed "first lookup (builds table and summaries)" "$S" inspect scale/f1-l1:t1
  sleep 0.1
  # Once under /usr/bin/time (peak RSS; its clock counts hundredths), then REPEAT times
  # on other names for the median (to the microsecond).
  timed "inspect scale/f250-l2:t7" "$S" inspect scale/f250-l2:t7
  repeated "inspect scale/f250-l2:t{N}" "$S" inspect "scale/f250-l2:t{}"; goal "inspect (s)" "$WALL" 0.05
  timed "tag scale/f250-l2:t7 new:0" "$S" tag scale/f250-l2:t7 new:0
  repeated "tag scale/f250-l2:t7 new:{N}" "$S" tag scale/f250-l2:t7 "new:{}"; goal "tag (s)" "$WALL" 0.05
  timed "rmi scale/f251-l3:t0 (one tag of many)" "$S" rmi scale/f251-l3:t0
  repeated "rmi scale/f251-l3:t{N} (one tag of many)" "$S" rmi "scale/f251-l3:t{}"; goal "rmi (s)" "$WALL" 0.2
  timed "images" "$S" images; goal "images (s)" "$WALL" 1
  timed "fsck --quick" "$S" fsck --quick; goal "fsck without re-hash (s)" "$WALL" 2
  unset STRATA_STORE
  rm -rf "$L" "$W/index-w"
fi

# make_tree DIR: the files part's tree of FILES small files.
make_tree() {
  python3 - "$1" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 100000}", f"e{i // 1000 % 100}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(b"x" * (i * 7919 % 2048))
EOF
}

if is files; then
  echo "== files: $FILES files"
  T=$W/tree F=$W/files
  rm -rf "$T" "$F"; mkdir -p "$F"
  make_tree "$T"
  export STRATA_STORE=$F/store
  timed "strata import tree" "$S" import "$T" many:1; IMPORT=$WALL
  timed "tar -c tree | pigz -6" sh -c "tar -C '$T' -c . | pigz -6 >'$F/tree.tgz'"; PIGZ=$WALL
  goal "import / (tar -c | pigz -6)" "$(ratio "$IMPORT" "$PIGZ")" 1.0
  BLOB=$STRATA_STORE/blobs/sha256/$("$S" inspect many:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Strata"]["LayerBlobs"][0][7:])' 2>/dev/null || true)
  [ -f "$BLOB" ] || BLOB=$(ls -S "$STRATA_STORE"/blobs/sha256/* | head -1)
  cat "$BLOB" >/dev/null
  rm -rf "$F/x"; mkdir "$F/x"; sync
  timed "tar -xzf layer" tar -C "$F/x" -xzf "$BLOB"; TARX=$WALL; rm -rf "$F/x"
  timed "strata unpack --raw" "$S" unpack --raw many:1 "$F/raw"; RAW=$WALL; rm -rf "$F/raw"
  goal "unpack --raw / tar -xzf" "$(ratio "$RAW" "$TARX")" 0.6
  PATHS=$((FILES + FILES / 1000 + FILES / 100000 + 1))
  LIMIT=$((64 + PATHS * 64 / 1048576))
  timed "strata unpack (bundle)" "$S" unpack many:1 "$F/bundle"; goal "bundle unpack peak RSS (MiB)" "$PEAK" "$LIMIT"
  timed "strata ls many:1 /d0/e0" "$S" ls many:1 /d0/e0; goal "merged view (ls) peak RSS (MiB)" "$PEAK" "$LIMIT"
  timed "strata export" "$S" export -o /dev/null many:1; goal "merged view (export) peak RSS (MiB)" "$PEAK" "$LIMIT"
  echo changed >"$F/bundle/rootfs/d0/e0/f0"
  timed "strata commit (1 file changed)" "$S" commit "$F/bundle" many:2
  goal "commit s per 100k files" "$(awk -v w="$WALL" -v n="$FILES" 'BEGIN { print w * 100000 / n }')" 0.25
  # The floor of a commit's diff: one lstat per path (find, one thread), same run.
  COMMIT=$WALL
  timed "find rootfs -printf (lstat floor)" find "$F/bundle/rootfs" -printf '%s %T@ %C@ %i\n'
  echo "  commit / find floor: $(ratio "$COMMIT" "$WALL")"
  unset STRATA_STORE
  rm -rf "$T" "$F"
fi

if [[ " ${PARTS[*]} " == *" unpack "* ]]; then
  echo "== unpack: $FILES files, $ROUNDS rounds"
  T=$W/tree F=$W/unpack
  rm -rf "$T" "$F"; mkdir -p "$F"
  make_tree "$T"
  export STRATA_STORE=$F/store
  "$S" import "$T" many:1 >/dev/null
  rm -rf "$T"
  BLOB=$(ls -S "$STRATA_STORE"/blobs/sha256/* | head -1)
  cat "$BLOB" >/dev/null
  TARS=() RAWS=() SEQS=()
  for ((r = 1; r <= ROUNDS; r++)); do
    rm -rf "$F/x"; mkdir "$F/x"; sync
    timed "round $r: tar -xzf layer" tar -C "$F/x" -xzf "$BLOB"; TARS+=("$WALL"); rm -rf "$F/x"
    timed "round $r: strata unpack --raw" "$S" unpack --raw many:1 "$F/raw"; RAWS+=("$WALL"); rm -rf "$F/raw"
    timed "round $r: unpack --raw, sequential create" env STRATA_UNPACK_SEQUENTIAL=1 "$S" unpack --raw many:1 "$F/raw"
    SEQS+=("$WALL"); rm -rf "$F/raw"
  done
  median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
  TARX=$(median "${TARS[@]}") RAW=$(median "${RAWS[@]}") SEQ=$(median "${SEQS[@]}")
  echo "  medians: tar -xzf $TARX s, unpack --raw $RAW s, sequential create $SEQ s"
  goal "unpack --raw / tar -xzf" "$(ratio "$RAW" "$TARX")" 0.6
  echo "  sequential create / tar -xzf: $(ratio "$SEQ" "$TARX")"
  unset STRATA_STORE
  rm -rf "$F"
fi

if is big; then
  echo "== big: one $BIG_GIB GiB file"
  G=$W/big
  rm -rf "$G"; mkdir -p "$G/src/opt"
  if [ -n "${BIG_RANDOM:-}" ]; then
    # Incompressible: the layer blob is as big as the file, so save, load, push and pull
    # move BIG_GIB GiB too (needs ~4x BIG_GIB of scratch space).
    head -c "${BIG_GIB}G" /dev/urandom >"$G/src/opt/big"
  else
    # Sparse on the source side: unpack and commit move BIG_GIB GiB, but the gzip layer
    # is ~1/1000 of it, so save, load, push and pull move little.
    truncate -s "${BIG_GIB}G" "$G/src/opt/big"
    printf 'head' | dd of="$G/src/opt/big" conv=notrunc status=none
  fi
  MIB=$((BIG_GIB * 1024))
  export STRATA_STORE=$G/store
  timed "cat big file (floor)" cat "$G/src/opt/big"; CAT=$WALL
  timed "sha256sum big file (floor)" sha256sum "$G/src/opt/big"; SHA=$WALL
  floors() { printf '  %-44s %8.0f MiB/s  (%.2fx cat, %.2fx sha256sum)\n' "$1" "$(awk -v m=$MIB -v w="$WALL" 'BEGIN { print m / w }')" "$(ratio "$WALL" "$CAT")" "$(ratio "$WALL" "$SHA")"; }
  timed "strata import (commit of a directory)" "$S" import "$G/src" big:1; floors import; goal "import peak RSS (MiB)" "$PEAK" 64
  timed "strata unpack --raw" "$S" unpack --raw big:1 "$G/raw"; floors unpack; goal "unpack peak RSS (MiB)" "$PEAK" 64
  timed "strata unpack (bundle)" "$S" unpack big:1 "$G/bundle"; goal "bundle unpack peak RSS (MiB)" "$PEAK" 64
  rm -rf "$G/raw"
  printf 'tail' >>"$G/bundle/rootfs/opt/big"
  timed "strata commit (the big file changed)" "$S" commit "$G/bundle" big:2; floors commit; goal "commit peak RSS (MiB)" "$PEAK" 64
  rm -rf "$G/bundle"
  timed "strata save" "$S" save -o "$G/big.tar" big:1; floors save; goal "save peak RSS (MiB)" "$PEAK" 64
  timed "strata load" "$S" --store "$G/store2" load -i "$G/big.tar"; floors load; goal "load peak RSS (MiB)" "$PEAK" 64
  rm -rf "$G/big.tar" "$G/store2"
  if command -v docker-registry >/dev/null && command -v curl >/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$G/reg/data"
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$G/reg/data" "$port" >"$G/reg/config.yml"
    docker-registry serve "$G/reg/config.yml" >"$G/reg/log" 2>&1 </dev/null &
    REG=$!
    trap 'kill $REG 2>/dev/null || true' EXIT
    for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break; sleep 0.05; done
    timed "strata push" "$S" push --insecure big:1 "127.0.0.1:$port/big:1"; floors push; goal "push peak RSS (MiB)" "$PEAK" 64
    timed "strata pull" "$S" --store "$G/store3" pull --insecure "127.0.0.1:$port/big:1"; floors pull; goal "pull peak RSS (MiB)" "$PEAK" 64
    kill $REG; wait $REG 2>/dev/null || true; trap - EXIT
  else
    echo "  push/pull: skipped (no docker-registry or curl)"
  fi
  unset STRATA_STORE
  rm -rf "$G"
fi
