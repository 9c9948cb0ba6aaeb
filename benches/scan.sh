#!/usr/bin/env bash
# Scan benchmark (issue 15): the package inventory of the corpus image `three` read
# from its merged view (no unpack), against `dpkg-query` on an already-unpacked tree
# (the floor: dpkg reading its own database from disk), in one run; and a check that the
# two package lists are the same.
#
#   usage: [STRATA_BIN=...] [BATCH=20] [ROUNDS=11] [WARM_ONLY=1] benches/scan.sh [CORPUS=/tmp/corpus] [RUNS=5]
#
# WARM_ONLY=1: only dpkg-query and the warm scans, and the check (no cold scans, no
# load or commit): what a change to the warm path needs, in a minute.
#
# Corpus: /work/shared/bench/make_corpus.sh (or any OCI layout with tag `three` holding
# a dpkg database). Cases (1 warm-up + RUNS timed runs; median wall seconds and median
# peak RSS from /usr/bin/time; page cache warm). The cases near the 10 ms resolution of
# /usr/bin/time (dpkg-query and the warm scans) each time BATCH runs back to back and
# report the time divided by BATCH (`run_batch`), so the floor is a real figure:
#   dpkg-query on unpacked tree   dpkg-query --admindir=ROOTFS/var/lib/dpkg -W -f ...
#   gzip -dc / pigz -dc layers    inflating three's layer blobs once: the floor of any
#                                 scan that reads the layers (the headers are spread
#                                 through the whole compressed stream)
#   strata sbom, cold             --no-cache: every layer read once (headers, and the
#                                 package databases kept on the way), folded from that
#   strata sbom, cold history     the same, with the layer history (no second read)
#   strata sbom, warm             the image scanned before (by the warm-up run): its
#                                 inventory read from the image's scan record alone
#   strata sbom, warm history     the same, with the layer history
#   strata sbom spdx-json, warm   the same, written as SPDX 2.3
#   ... cyclonedx-json, warm      the same, written as CycloneDX 1.5
#   strata sbom, layer records    --no-image-cache: the per-layer scan cache alone (a new
#                                 image made of known layers): no layer blob read, the
#                                 lookups answered from the layers' records (no fold
#                                 when their union is plain, as the corpus's is)
#   ..., layer records history    the same, with the layer history
# Goals from the issue: within 2x of dpkg-query with the headers read once; peak RSS
# <= 64 MiB. The layout is a copy; `strata tag` on it first makes it a store strata
# writes to (strata never adds its records to a layout it has only read).
set -euo pipefail
C=${1:-/tmp/corpus}; N=${2:-5}; B=${BATCH:-20}
L=$C/oci
W=${SCRATCH:-/dev/shm/strata-scan-bench}
cd "$(dirname "$0")/.."
export LC_ALL=C
for t in dpkg-query umoci jq /usr/bin/time; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -f "$L/index.json" ] || { echo "no OCI layout at $L (run make_corpus.sh)" >&2; exit 1; }

# STRATA_BIN: a strata binary already built (else the release build of this checkout).
if [ -n "${STRATA_BIN:-}" ]; then S=$STRATA_BIN; else cargo build --quiet --release -p strata-cli; S=$PWD/target/release/strata; fi
rm -rf "$W"; mkdir -p "$W"
# A copy of the layout: strata keeps a lock file beside index.json.
cp -a "$L" "$W/oci"
"$S" --store "$W/oci" tag three three-scan-bench >/dev/null
umoci unpack --rootless --image "$W/oci:three" "$W/bundle" >/dev/null 2>&1
R_DIR=$W/bundle/rootfs
cat "$W"/oci/blobs/sha256/* >/dev/null   # warm the page cache

. benches/lib.sh

FMT='${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n'
run_batch "dpkg-query on unpacked tree" "$B" "dpkg-query --admindir='$R_DIR/var/lib/dpkg' -W -f '$FMT' >/dev/null"
M=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="three") | .digest' "$W/oci/index.json" | sed 's/sha256://')
LAYERS=$(jq -r '.layers[].digest' "$W/oci/blobs/sha256/$M" | sed "s|sha256:|$W/oci/blobs/sha256/|" | tr '\n' ' ')
if [ -z "${WARM_ONLY:-}" ]; then
  run "gzip -dc layers (floor)" "cat $LAYERS | gzip -dc | wc -c"
  command -v pigz >/dev/null && run "pigz -dc layers (floor)" "cat $LAYERS | pigz -dc | wc -c"
  run "strata sbom, cold" "'$S' --store '$W/oci' sbom --no-cache --no-layer-history three"
  run "strata sbom, cold history" "'$S' --store '$W/oci' sbom --no-cache three"
fi
run_batch "strata sbom, warm" "$B" "'$S' --store '$W/oci' sbom --no-layer-history three >/dev/null"
run_batch "strata sbom, warm history" "$B" "'$S' --store '$W/oci' sbom three >/dev/null"
run_batch "strata sbom spdx-json, warm" "$B" "'$S' --store '$W/oci' sbom --format spdx-json three >/dev/null"
run_batch "strata sbom cyclonedx-json, warm" "$B" "'$S' --store '$W/oci' sbom --format cyclonedx-json three >/dev/null"
run_batch "strata sbom, layer records" "$B" "'$S' --store '$W/oci' sbom --no-image-cache --no-layer-history three >/dev/null"
run_batch "sbom, layer records history" "$B" "'$S' --store '$W/oci' sbom --no-image-cache three >/dev/null"

echo
# The same ratios, each side timed in turn (ROUNDS rounds of BATCH runs each): what a
# machine whose speed drifts between the cases above does not move.
R=${ROUNDS:-11}
DQ="dpkg-query --admindir='$R_DIR/var/lib/dpkg' -W -f '$FMT' >/dev/null"
echo "paired with dpkg-query on the unpacked tree ($R rounds of $B runs each side):"
run_pair "strata sbom, warm / dpkg-query" "$R" "$B" "$DQ" "'$S' --store '$W/oci' sbom --no-layer-history three >/dev/null"
run_pair "strata sbom, layer records / dpkg-query" "$R" "$B" "$DQ" "'$S' --store '$W/oci' sbom --no-image-cache --no-layer-history three >/dev/null"
run_pair "sbom, layer records history / dpkg-query" "$R" "$B" "$DQ" "'$S' --store '$W/oci' sbom --no-image-cache three >/dev/null"
echo
[ -z "${WARM_ONLY:-}" ] && echo "ratios (wall): cold / gzip -dc floor = $(ratio 'strata sbom, cold' 'gzip -dc layers (floor)');" \
  "cold history / gzip -dc floor = $(ratio 'strata sbom, cold history' 'gzip -dc layers (floor)')"
echo "ratios (wall): warm / dpkg-query = $(ratio 'strata sbom, warm' 'dpkg-query on unpacked tree');" \
  "warm history / dpkg-query = $(ratio 'strata sbom, warm history' 'dpkg-query on unpacked tree');" \
  "spdx-json / dpkg-query = $(ratio 'strata sbom spdx-json, warm' 'dpkg-query on unpacked tree');" \
  "cyclonedx-json / dpkg-query = $(ratio 'strata sbom cyclonedx-json, warm' 'dpkg-query on unpacked tree')"
echo "ratios (CPU):  warm / dpkg-query = $(cpu_ratio 'strata sbom, warm' 'dpkg-query on unpacked tree');" \
  "warm history / dpkg-query = $(cpu_ratio 'strata sbom, warm history' 'dpkg-query on unpacked tree');" \
  "spdx-json / dpkg-query = $(cpu_ratio 'strata sbom spdx-json, warm' 'dpkg-query on unpacked tree');" \
  "cyclonedx-json / dpkg-query = $(cpu_ratio 'strata sbom cyclonedx-json, warm' 'dpkg-query on unpacked tree')"
echo "ratios (layer records alone): wall $(ratio 'strata sbom, layer records' 'dpkg-query on unpacked tree')," \
  "with history $(ratio 'sbom, layer records history' 'dpkg-query on unpacked tree');" \
  "CPU $(cpu_ratio 'strata sbom, layer records' 'dpkg-query on unpacked tree')," \
  "with history $(cpu_ratio 'sbom, layer records history' 'dpkg-query on unpacked tree')"
echo "scan records: $(du -sh "$W/oci/.strata/records/scan" | cut -f1) for $(ls "$W/oci/.strata/records/scan/sha256" | wc -l) records (3 layers, 1 image)"

# The proof: the same packages, versions and architectures as dpkg-query.
dpkg-query --admindir="$R_DIR/var/lib/dpkg" -W -f "$FMT" | awk '$1 == "ii" {print $2, $3, $4}' | sort >"$W/want.txt"
"$S" --store "$W/oci" --json sbom three \
  | jq -r '.packages[] | select(.kind == "deb" and .location == "var/lib/dpkg/status") | "\(.name) \(.version) \(.arch)"' \
  | sort >"$W/got.txt"
cmp -s "$W/want.txt" "$W/got.txt" || { echo "check (warm): FAILED"; diff "$W/want.txt" "$W/got.txt" | head -20; exit 1; }
"$S" --store "$W/oci" --json sbom --no-cache three \
  | jq -r '.packages[] | select(.kind == "deb" and .location == "var/lib/dpkg/status") | "\(.name) \(.version) \(.arch)"' \
  | sort >"$W/got.txt"
if cmp -s "$W/want.txt" "$W/got.txt"; then
  echo "check: $(wc -l <"$W/got.txt") packages, identical to dpkg-query (warm and cold)"
else
  echo "check: FAILED, strata and dpkg-query differ:"; diff "$W/want.txt" "$W/got.txt" | head -20; exit 1
fi
[ -n "${WARM_ONLY:-}" ] && exit 0

# Filling the scan cache on arrival (load, commit), against the same command with it off
# (the default; STRATA_SCAN_CACHE=fill turns filling on) in the same run: load of `three` from an OCI archive (gzip
# layers: the diff_id check inflates each layer, the index is taken from that read) and
# from a docker-archive (plain layers: measured by their headers alone when off, read
# and hashed whole when on), each into a new store on tmpfs; commit of a one-file change
# on top of `three` (its new layer read once more when on; the time includes writing
# the 1 MiB file).
"$S" --store "$W/oci" save --format oci-archive -o "$W/three-oci.tar" three
"$S" --store "$W/oci" save --format docker-archive -o "$W/three-docker.tar" three
for f in oci docker; do
  run "load $f-archive, cache off" "rm -rf '$W/ld'; '$S' --store '$W/ld' load -i '$W/three-$f.tar'"
  run "load $f-archive, cache filled" "rm -rf '$W/ld'; STRATA_SCAN_CACHE=fill '$S' --store '$W/ld' load -i '$W/three-$f.tar'"
done
rm -rf "$W/ld" "$W/c"
"$S" --store "$W/oci" unpack --rootless three "$W/c" >/dev/null
# A new 1 MiB file for every commit, so that no run finds its layer indexed already.
NEW="head -c 1048576 /dev/urandom >'$W/c/rootfs/blob.bin'"
run "commit, cache off" "$NEW; '$S' --store '$W/oci' commit '$W/c' three-commit:off"
run "commit, cache filled" "$NEW; STRATA_SCAN_CACHE=fill '$S' --store '$W/oci' commit '$W/c' three-commit:on"
echo "ratios (wall): load oci-archive filled / off = $(ratio 'load oci-archive, cache filled' 'load oci-archive, cache off');" \
  "load docker-archive filled / off = $(ratio 'load docker-archive, cache filled' 'load docker-archive, cache off');" \
  "commit filled / off = $(ratio 'commit, cache filled' 'commit, cache off')"
