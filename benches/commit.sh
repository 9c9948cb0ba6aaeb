#!/usr/bin/env bash
# strata layer writing vs peers on the corpus (see /work/shared/bench/make_corpus.sh),
# in one run, printing ratios.
#   usage: [SCRATCH=dir] benches/commit.sh [CORPUS=/tmp/corpus] [RUNS=5]
# Cases:
#   (a) compress the base rootfs: `tar -c | pigz -6` vs strata write_tree at gzip 6
#       (throughput and size ratio);
#   (b) a 1-file change in the `three` rootfs: strata `since` + layer write vs
#       `umoci repack`;
#   (c) +112 MB of new files (usr copied to usr-copy, as peers.sh does): same.
# The rootfs comes from `umoci unpack --image CORPUS/oci:three`; the snapshot is taken
# right after by the example driver (crates/strata-layer/examples/layer_tool.rs). Each
# case: untimed setup, 1 warm-up + RUNS timed runs, median wall seconds (bash
# EPOCHREALTIME around the command) and peak RSS of the largest process (/usr/bin/time).
# Warm page cache. Writes go to tmpfs by default.
set -euo pipefail
C=${1:-/tmp/corpus}; N=${2:-5}
L=$C/oci; W=${SCRATCH:-/dev/shm/strata-commit}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export LC_ALL=C
for t in umoci pigz jq; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -d "$L" ] || { echo "no corpus at $L (run make_corpus.sh)" >&2; exit 1; }
(cd "$HERE" && cargo build -q --release -p strata-layer --example layer_tool)
T=$HERE/target/release/examples/layer_tool
rm -rf "$W"; mkdir -p "$W"; export W T L

# median wall s, median peak MB of a command run N times after a warm-up; $setup runs
# untimed before each run.
measure() { # setup cmd
  local setup=$1 cmd=$2 i w p walls=() peaks=()
  for ((i = 0; i <= N; i++)); do
    eval "$setup"; sync
    local t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$W/time.txt" sh -c "$cmd" >/dev/null 2>"$W/err.txt" \
      || { echo "FAILED: $cmd: $(tail -3 "$W/err.txt")" >&2; exit 1; }
    local t1=$EPOCHREALTIME
    ((i == 0)) && continue
    w=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'); read -r p <"$W/time.txt"; walls+=("$w"); peaks+=("$p")
  done
  local mid=$(( (N + 1) / 2 ))
  w=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "${mid}p")
  p=$(printf '%s\n' "${peaks[@]}" | sort -g | sed -n "${mid}p")
  echo "$w $(awk -v p="$p" 'BEGIN{printf "%.0f", p/1024}')"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.3f", a/b; else print "inf" }'; }
row() { printf '%-46s %8s s %6s MB  %s\n' "$1" "$2" "$3" "${4:-}"; }

blob() { # tag idx -> layer blob path
  local m; m=$(jq -r --arg t "$1" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t)|.digest' "$L/index.json")
  echo "$L/blobs/sha256/$(jq -r ".layers[$2].digest" "$L/blobs/sha256/${m#sha256:}" | cut -d: -f2)"; }
cat "$L"/blobs/sha256/* >/dev/null

echo "== (a) compress the base rootfs at gzip level 6 (threads: all cores = $(nproc))"
ROOT=$W/root; mkdir "$ROOT"; zcat "$(blob base 0)" | tar -C "$ROOT" --numeric-owner -xpf -
TARB=$(tar -C "$ROOT" -cf - . | wc -c)
PIGZ_SIZE=$(tar -C "$ROOT" -cf - . | pigz -6 | wc -c)
"$T" tree "$ROOT" "$W/strata.tgz" --level 6 2>/dev/null; OURS_SIZE=$(stat -c %s "$W/strata.tgz")
read -r pw pm < <(measure ":" 'tar -C $W/root -cf - . | pigz -6')
read -r sw sm < <(measure ":" '$T tree $W/root - --level 6')
read -r s1 s1m < <(measure ":" '$T tree $W/root - --level 6 --threads 1')
read -r zw zm < <(measure ":" '$T tree $W/root - --zstd')
mbs() { awk -v b="$TARB" -v w="$1" 'BEGIN{printf "%.0f MB/s", b/1e6/w}'; }
row "tar -c | pigz -6" "$pw" "$pm" "$(mbs "$pw"), $PIGZ_SIZE bytes"
row "strata write_tree gzip-6 (all cores)" "$sw" "$sm" "$(mbs "$sw"), $OURS_SIZE bytes"
row "strata write_tree gzip-6 (1 thread)" "$s1" "$s1m" "$(mbs "$s1")"
row "strata write_tree zstd-3 (all cores)" "$zw" "$zm" "$(mbs "$zw")"
echo "ratio throughput strata/pigz = $(ratio "$pw" "$sw")x (target >= 2)   size strata/pigz = $(ratio "$OURS_SIZE" "$PIGZ_SIZE") (target <= 1.05)"

echo "== (b) 1-file change in 'three' (128 MB, 7.3k entries): since vs umoci repack"
cp -a "$L" "$W/oci"; B=$W/b3; umoci unpack --image "$W/oci:three" "$B" >/dev/null; export B
R=$B/rootfs
/usr/bin/time -f '%e %M' -o "$W/time.txt" "$T" snapshot "$R" "$W/snap" 2>"$W/snap.txt"
read -r cw cm <"$W/time.txt"
echo "snapshot: $(cat "$W/snap.txt") (wall ${cw}s, peak $((cm / 1024)) MB)"
read -r uw um < <(measure 'date +%s%N >$B/rootfs/etc/motd' 'umoci repack --image $W/oci:small $B')
read -r ow om < <(measure 'date +%s%N >$B/rootfs/etc/motd' '$T since $W/snap $B/rootfs $W/since.tgz')
"$T" since "$W/snap" "$R" "$W/since.tgz" 2>"$W/since.txt"
row "umoci repack (1 file modified)" "$uw" "$um"
row "strata since + layer write" "$ow" "$om" "$(grep -o 'changes=[0-9]*' "$W/since.txt")"
echo "ratio since/umoci = $(ratio "$ow" "$uw") (target <= 0.03)   peak RSS ${om} MB (target <= 64)"

echo "== (c) +112 MB new files (usr copied to usr-copy): since vs umoci repack"
cp -a "$R/usr" "$R/usr-copy"; BIG=$(du -sb --apparent-size "$R/usr-copy" | cut -f1)
read -r uw2 um2 < <(measure ":" 'umoci repack --image $W/oci:big $B')
read -r ow2 om2 < <(measure ":" '$T since $W/snap $B/rootfs $W/big.tgz --level 6')
read -r ow4 om4 < <(measure ":" '$T since $W/snap $B/rootfs $W/big4.tgz --level 4')
"$T" since "$W/snap" "$R" "$W/big.tgz" --level 6 2>"$W/big.txt"
m=$(jq -r '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]=="big")|.digest' "$W/oci/index.json")
USIZE=$(jq -r '.layers[-1].size' "$W/oci/blobs/sha256/${m#sha256:}")
row "umoci repack (+$((BIG / 1000000)) MB new)" "$uw2" "$um2" "layer $USIZE bytes"
row "strata since + layer write (gzip-6)" "$ow2" "$om2" "$(grep -o 'changes=[0-9]*' "$W/big.txt"), layer $(stat -c %s "$W/big.tgz") bytes"
row "strata since + layer write (gzip-4)" "$ow4" "$om4" "layer $(stat -c %s "$W/big4.tgz") bytes"
echo "ratio since/umoci = $(ratio "$ow2" "$uw2") at gzip-6, $(ratio "$ow4" "$uw2") at gzip-4 = the default (target <= 0.25)   peak RSS ${om2} MB (target <= 64)"
rm -rf "$W"
