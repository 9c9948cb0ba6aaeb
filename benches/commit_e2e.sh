#!/usr/bin/env bash
# End-to-end check of a strata commit layer on the real corpus (not part of CI: needs
# /tmp/corpus from /work/shared/bench/make_corpus.sh, umoci, jq).
#   usage: [SCRATCH=dir] benches/commit_e2e.sh [CORPUS=/tmp/corpus] ['shell commands']
# 1. `umoci unpack` the corpus image `three`; take a strata snapshot of the rootfs.
# 2. Run the commands inside the rootfs (default: deletions, a rename, type changes, a
#    hard link, chmod/chown, edits, 112 MB of new files).
# 3. `layer_tool since` writes the layer; it is added on top of `three` (config diff_ids,
#    history, manifest, index tag `mine`) and `umoci unpack`-ed again.
# 4. The result must equal the changed rootfs: every path's type, mode, owner, size,
#    mtime, link target, link count, and every file's content; no `.wh.` files left.
set -euo pipefail
C=${1:-/tmp/corpus}; CHANGE=${2:-'rm -rf usr/share/doc usr/share/man; rm etc/os-release
  ln usr/bin/ls usr/local/bin/ls2; chmod 700 etc/hostname; mv usr/lib/python3.11 usr/lib/py
  rm -rf usr/games && echo game >usr/games; rm -rf home && mkdir -p home/x && echo y >home/x/f
  chown 1000:1000 etc/motd; echo z >>etc/passwd; cp -a usr/bin usr/bin-copy'}
W=${SCRATCH:-/dev/shm/strata-e2e}; HERE=$(cd "$(dirname "$0")/.." && pwd)
(cd "$HERE" && cargo build -q --release -p strata-layer --example layer_tool)
T=$HERE/target/release/examples/layer_tool
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cp -a "$C/oci" oci
umoci unpack --image oci:three b >/dev/null
"$T" snapshot b/rootfs snap 2>/dev/null
(cd b/rootfs && eval "$CHANGE")
"$T" since snap b/rootfs layer.tgz 2>info.txt
field() { grep -o "$1=sha256:[0-9a-f]*" info.txt | head -1 | cut -d= -f2; }
DIFFID=$(field diff_id); DG=$(grep -o ' digest=sha256:[0-9a-f]*' info.txt | cut -d= -f2); SZ=$(stat -c %s layer.tgz)
cp layer.tgz "oci/blobs/sha256/${DG#sha256:}"
m=$(jq -r '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]=="three")|.digest' oci/index.json)
M=oci/blobs/sha256/${m#sha256:}; CF=oci/blobs/sha256/$(jq -r .config.digest "$M" | cut -d: -f2)
jq -c --arg d "$DIFFID" '.rootfs.diff_ids += [$d] | .history += [{"created_by":"strata since"}]' "$CF" >cfg.json
CD=sha256:$(sha256sum cfg.json | cut -d' ' -f1); cp cfg.json "oci/blobs/sha256/${CD#sha256:}"
jq -c --arg cd "$CD" --argjson cs "$(stat -c %s cfg.json)" --arg dg "$DG" --argjson sz "$SZ" \
  '.config.digest=$cd | .config.size=$cs | .layers += [{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":$dg,"size":$sz}]' \
  "$M" >man.json
MD=sha256:$(sha256sum man.json | cut -d' ' -f1); cp man.json "oci/blobs/sha256/${MD#sha256:}"
jq -c --arg md "$MD" --argjson ms "$(stat -c %s man.json)" \
  '.manifests += [{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":$md,"size":$ms,"annotations":{"org.opencontainers.image.ref.name":"mine"}}]' \
  oci/index.json >idx.json && cp idx.json oci/index.json
umoci unpack --image oci:mine u >/dev/null
lst() { (cd "$1" && find . -printf '%p %y %m %U %G %s %T@ %l %n\n' | grep -v '^\. ' | sort); }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }
lst b/rootfs >want.lst; lst u/rootfs >got.lst; sums b/rootfs >want.md5; sums u/rootfs >got.md5
echo "layer: $(grep -o 'changes=[0-9]*' info.txt), $(zcat layer.tgz | tar -t | grep -c '\.wh\.' || true) whiteouts, $SZ bytes"
echo "entries: want $(wc -l <want.lst), got $(wc -l <got.lst); whiteout files left: $(find u/rootfs -name '.wh.*' | wc -l)"
if diff want.lst got.lst >meta.diff && cmp -s want.md5 got.md5 && [ -z "$(find u/rootfs -name '.wh.*')" ]; then
  echo "OK: umoci unpack of three + the strata layer equals the changed rootfs"; cd /; rm -rf "$W"
else
  echo "MISMATCH (kept in $W):"; head -20 meta.diff; exit 1
fi
