#!/usr/bin/env bash
# Explorer benchmark (issue 19): time to the first frame of `strata dive` on the corpus
# image `three`, against `strata layers` (the same layers read and folded, one table
# printed: the floor), and peak RSS, in one run.
#
#   usage: benches/dive.sh [CORPUS=/tmp/corpus] [RUNS=5]
#
# Corpus: /work/shared/bench/make_corpus.sh (or any OCI layout with a tag `three`).
# Scratch space ($SCRATCH, /dev/shm by default) takes a copy of the layout and two
# archives of `three` (about 3x the image's size).
# The explorer needs a terminal: each run is under `script` (a pty), and
# STRATA_DIVE_FIRST_FRAME_EXIT=1 makes it exit once the first frame is drawn. Cases (1
# warm-up + RUNS timed runs; median wall seconds and median peak RSS from /usr/bin/time;
# page cache warm):
#   strata layers              the floor: headers read, layers folded, a table printed
#   strata dive --ci           the analysis alone (the same fold), no UI
#   strata dive, first frame   the fold keeping each layer's changes, the tree of the
#                              base layer built, the screen drawn
#   dive --archive ..., first frame / --ci
#                              the same on `three` saved as a docker-archive (layers
#                              uncompressed) and as an OCI archive (layers gzip), read
#                              in place: the tar's headers scanned, blobs read from it
#   load + dive --ci           what --archive cost before it read in place: the archive
#                              loaded into a fresh store, then analysed
# Goal from the issue: peak RSS <= 64 MiB.
set -euo pipefail
C=${1:-/tmp/corpus}; N=${2:-5}
L=$C/oci
W=${SCRATCH:-/dev/shm/strata-dive-bench}
cd "$(dirname "$0")/.."
export LC_ALL=C
for t in script /usr/bin/time; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -f "$L/index.json" ] || { echo "no OCI layout at $L (run make_corpus.sh)" >&2; exit 1; }

# NO_BUILD=1: time the release binary as it is (built by hand just before).
[ -n "${NO_BUILD:-}" ] || cargo build --quiet --release -p strata-cli
S=$PWD/target/release/strata
rm -rf "$W"; mkdir -p "$W"
# A copy of the layout: strata keeps a lock file beside index.json.
cp -a "$L" "$W/oci"
# `three` as archives (made outside the timing; the store's blobs are gzip: the OCI
# archive keeps them so, the docker-archive holds them uncompressed).
# A bare layout tag is saved untagged: a full name, for the load + dive case to name.
"$S" --store "$W/oci" tag three bench/three:1
"$S" --store "$W/oci" save bench/three:1 -o "$W/three-docker.tar"
"$S" --store "$W/oci" save bench/three:1 --format oci-archive -o "$W/three-oci.tar"
cat "$W"/oci/blobs/sha256/* "$W"/three-*.tar >/dev/null   # warm the page cache

. benches/lib.sh

T="/usr/bin/time -f '%e %M' -o '$W/time.txt'"
run_timed "strata layers" "$T '$S' --store '$W/oci' layers three"
run_timed "strata dive --ci" "$T '$S' --store '$W/oci' dive --ci --lowestEfficiency=disabled --highestUserWastedPercent=disabled three"
# script gives strata a pty for stdin and stdout (of 120x40: a new pty has no size, and
# nothing would be drawn); time runs inside it, around strata only.
run_timed "strata dive, first frame" "script -qec \"stty cols 120 rows 40; STRATA_DIVE_FIRST_FRAME_EXIT=1 TERM=xterm-256color $T '$S' --store '$W/oci' dive three\" /dev/null"
grep -q 'Image efficiency score' "$W/out.txt" || { echo "the first frame was not drawn:"; tail -5 "$W/out.txt"; exit 1; }
for f in docker oci; do
  A=$W/three-$f.tar
  run_timed "dive --archive ($f), frame" "script -qec \"stty cols 120 rows 40; STRATA_DIVE_FIRST_FRAME_EXIT=1 TERM=xterm-256color $T '$S' dive --archive '$A'\" /dev/null"
  grep -q 'Image efficiency score' "$W/out.txt" || { echo "the first frame was not drawn:"; tail -5 "$W/out.txt"; exit 1; }
  run_timed "dive --ci --archive ($f)" "$T '$S' dive --ci --lowestEfficiency=disabled --highestUserWastedPercent=disabled --archive '$A'"
done
# Before reading in place: load into a fresh store, then the analysis (time covers both).
run_timed "load + dive --ci (docker)" "$T sh -c \"rm -rf '$W/loaded' && '$S' --store '$W/loaded' load -i '$W/three-docker.tar' >/dev/null && '$S' --store '$W/loaded' dive --ci --lowestEfficiency=disabled --highestUserWastedPercent=disabled bench/three:1\""

echo
echo "ratios (wall): first frame / strata layers = $(ratio 'strata dive, first frame' 'strata layers');" \
  "dive --ci / strata layers = $(ratio 'strata dive --ci' 'strata layers')"
echo "ratios (wall) of --archive: first frame / strata layers = $(ratio 'dive --archive (docker), frame' 'strata layers') (docker-archive)," \
  "$(ratio 'dive --archive (oci), frame' 'strata layers') (OCI archive);" \
  "load + dive --ci / dive --ci --archive (docker) = $(ratio 'load + dive --ci (docker)' 'dive --ci --archive (docker)')"
awk -v p="${PEAK[dive --archive (docker), frame]}" -v q="${PEAK[dive --archive (oci), frame]}" \
  'BEGIN{ printf "--archive first frame peak RSS %.1f MiB (docker), %.1f MiB (OCI) (goal <= 64 MiB)\n", p/1024, q/1024 }'
awk -v p="${PEAK[strata dive, first frame]}" 'BEGIN{ printf "first frame peak RSS %.1f MiB (goal <= 64 MiB): %s\n", p/1024, (p <= 65536 ? "met" : "NOT met") }'
