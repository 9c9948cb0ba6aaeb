#!/usr/bin/env bash
# Unpack benchmark: strata vs `umoci unpack` and `tar -xzf`, in one run, on the corpus
# made by /work/shared/bench/make_corpus.sh (or any OCI layout with tags base and three).
#
#   usage: benches/unpack.sh [CORPUS=/tmp/corpus] [RUNS=5]
#
# Cases (each: 1 warm-up + RUNS timed runs, median wall seconds and median peak RSS of
# the largest process, from /usr/bin/time; every run writes into a fresh directory
# under $SCRATCH, default /dev/shm/strata-unpack-bench, tmpfs; page cache warm):
#   umoci unpack three        the 3-layer image (177 whiteouts, edits, links)
#   tar -xzf base blob        GNU tar + gzip on the base layer alone (1 of the 3 layers)
#   strata unpack three       crates/strata-layer/examples/unpack_layout (release)
#   strata unpack base
#   strata unpack three --plan always   gzip layers decompressed twice to plan (the cost)
# and on `three` with uncompressed layers (made here by `strata save` + `strata load`,
# which keeps docker-archive layers as they are, in $W/plain):
#   tar -xf base (plain)      GNU tar on the uncompressed base layer alone
#   strata plain --plan never
#   strata plain --plan auto  headers read first (seeking over the data), the 1,090
#                             files (55 MiB) the top layer deletes never written
# Then prints the ratios the issue sets targets for, and checks that strata and umoci
# unpack `three` to the same tree (contents, types, modes, owners, link counts, symlink
# targets, xattrs, file and directory mtimes).
set -euo pipefail
C=${1:-/tmp/corpus}; N=${2:-5}
L=$C/oci
W=${SCRATCH:-/dev/shm/strata-unpack-bench}
cd "$(dirname "$0")/.."
export LC_ALL=C
for t in umoci tar jq /usr/bin/time; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -f "$L/index.json" ] || { echo "no OCI layout at $L (run make_corpus.sh)" >&2; exit 1; }

cargo build --quiet --release -p strata-layer --example unpack_layout --example compare_trees
cargo build --quiet --release -p strata-cli
BIN=$PWD/target/release/examples
STRATA=$PWD/target/release/strata
rm -rf "$W"; mkdir -p "$W"
# `three` with uncompressed layers, as a docker-archive load stores them.
"$STRATA" --store "$L" save three -o "$W/three.tar"
"$STRATA" --store "$W/plain" load -i "$W/three.tar" >/dev/null
rm "$W/three.tar"
P=$W/plain

blob() { # tag idx -> path of layer blob
  local m; m=$(jq -r --arg t "$1" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t)|.digest' "$L/index.json")
  echo "$L/blobs/sha256/$(jq -r ".layers[$2].digest" "$L/blobs/sha256/${m#sha256:}" | cut -d: -f2)"; }
B1=$(blob base 0)
PB1=$P/blobs/sha256/$(jq -r '.layers[0].digest' "$P/blobs/sha256/$(jq -r '.manifests[0].digest' "$P/index.json" | cut -d: -f2)" | cut -d: -f2)
cat "$L"/blobs/sha256/* >/dev/null   # warm the page cache

SEQ=0
declare -A WALL PEAK
run() { # name cmd   ($D = a fresh directory path)
  local name=$1 cmd=$2 i t=$W/time.txt walls=() peaks=() w p
  for ((i = 0; i <= N; i++)); do
    rm -rf "$W/r$SEQ"; SEQ=$((SEQ + 1)); export D=$W/r$SEQ
    sync
    /usr/bin/time -f '%e %M' -o "$t" sh -c "$cmd" >/dev/null 2>"$W/err.txt" \
      || { echo "$name: FAILED: $(tail -3 "$W/err.txt")"; exit 1; }
    ((i == 0)) && continue
    read -r w p <"$t"; walls+=("$w"); peaks+=("$p")
  done
  rm -rf "$W/r$SEQ"
  local mid=$(( (N + 1) / 2 ))
  w=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "${mid}p")
  p=$(printf '%s\n' "${peaks[@]}" | sort -g | sed -n "${mid}p")
  WALL[$name]=$w; PEAK[$name]=$p
  printf '%-26s %6.3f s  (%s)  peak %5.1f MiB\n' "$name" "$w" "$(printf '%s\n' "${walls[@]}" | sort -g | tr '\n' ' ' | sed 's/ $//')" \
    "$(awk -v p="$p" 'BEGIN{print p/1024}')"
}
export L B1 BIN P PB1
echo "corpus $L, $N runs, scratch $W ($(stat -f -c %T "$W")), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run "umoci unpack three"  'umoci unpack --image $L:three $D'
run "tar -xzf base blob"  'mkdir $D && tar -C $D -xzf $B1'
run "strata unpack three" '$BIN/unpack_layout $L three $D'
run "strata unpack base"  '$BIN/unpack_layout $L base $D'
run "strata three plan always" '$BIN/unpack_layout $L three $D --plan always'
run "tar -xf base (plain)" 'mkdir $D && tar -C $D -xf $PB1'
run "strata plain plan never" '$BIN/unpack_layout $P three:latest $D --plan never'
run "strata plain plan auto" '$BIN/unpack_layout $P three:latest $D --plan auto'
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
echo
echo "strata three / umoci three   = $(ratio "${WALL[strata unpack three]}" "${WALL[umoci unpack three]}")  (target <= 0.25)"
echo "strata three / tar -xzf base = $(ratio "${WALL[strata unpack three]}" "${WALL[tar -xzf base blob]}")  (target <= 0.5)"
echo "strata base  / tar -xzf base = $(ratio "${WALL[strata unpack base]}" "${WALL[tar -xzf base blob]}")"
echo "strata three peak RSS        = $(awk -v p="${PEAK[strata unpack three]}" 'BEGIN{printf "%.1f", p/1024}') MiB  (target <= 64)"
echo "gzip, plan always / no plan  = $(ratio "${WALL[strata three plan always]}" "${WALL[strata unpack three]}")  (> 1: a second inflate costs more than the writes saved)"
echo "plain, plan / no plan        = $(ratio "${WALL[strata plain plan auto]}" "${WALL[strata plain plan never]}")"
echo "plain planned / tar -xf base = $(ratio "${WALL[strata plain plan auto]}" "${WALL[tar -xf base (plain)]}")"
echo "plain planned peak RSS       = $(awk -v p="${PEAK[strata plain plan auto]}" 'BEGIN{printf "%.1f", p/1024}') MiB"

echo
echo "tree check: umoci unpack three vs strata unpack three"
umoci unpack --image "$L:three" "$W/umoci" >/dev/null
"$BIN/unpack_layout" "$L" three "$W/strata" >/dev/null
if "$BIN/compare_trees" "$W/umoci/rootfs" "$W/strata" --dir-mtimes; then echo "trees agree"; else echo "TREES DIFFER"; fi
echo "tree check: umoci unpack three vs strata plain --plan auto"
"$BIN/unpack_layout" "$P" three:latest "$W/planned" --plan auto >/dev/null
if "$BIN/compare_trees" "$W/umoci/rootfs" "$W/planned" --dir-mtimes; then echo "trees agree"; else echo "TREES DIFFER"; fi
rm -rf "$W"
