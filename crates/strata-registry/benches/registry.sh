#!/usr/bin/env bash
# Pull and push of a corpus image through a loopback registry (docker-registry, i.e.
# distribution 2.8): strata (examples/registry_copy.rs) against `skopeo copy`, in the
# same run, alternating, cold (skopeo's blob-info cache deleted before every run; a
# fresh destination layout for every pull, a fresh registry for every push). Prints
# the median wall time and peak RSS of each, and the ratios.
#
#   crates/strata-registry/benches/registry.sh [RUNS=5]
#   env: CORPUS=/tmp/corpus/oci TAG=three (made by shared/bench/make_corpus.sh)
set -euo pipefail
RUNS=${1:-5}
CORPUS=${CORPUS:-/tmp/corpus/oci}
TAG=${TAG:-three}
SKOPEO_CACHE=/var/lib/containers/cache/blob-info-cache-v1.boltdb
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

for tool in docker-registry skopeo curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -f "$CORPUS/index.json" ] || { echo "no corpus at $CORPUS (shared/bench/make_corpus.sh)" >&2; exit 1; }

(cd "$root" && cargo build --quiet --release -p strata-registry --example registry_copy)
BIN=$root/target/release/examples/registry_copy

work=$(mktemp -d /tmp/strata-registry-bench.XXXXXX)
pid=
stop_registry() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi
}
trap 'stop_registry; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry DIR: a registry with storage in DIR on a free port; sets $pid, $port.
start_registry() {
  local dir=$1
  port=$(free_port)
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "registry did not start" >&2; cat "$dir/registry.log" >&2; exit 1
}

# timed NAME CMD...: run once, append "wall_seconds peak_rss_kib" to $work/NAME.
timed() {
  local name=$1; shift
  rm -f "$SKOPEO_CACHE"
  /usr/bin/time -f "%e %M" -o "$work/time.tmp" "$@" >/dev/null 2>"$work/err.tmp" || {
    echo "$name failed:" >&2; cat "$work/err.tmp" >&2; exit 1; }
  cat "$work/time.tmp" >>"$work/$name"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

size=$(jq -r --arg t "$TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' \
  "$CORPUS/index.json" | sed 's/sha256://' | xargs -I{} jq '[.config.size] + [.layers[].size] | add' "$CORPUS/blobs/sha256/{}")
echo "image $TAG: $((size / 1000000)) MB of blobs, $RUNS runs each, $(nproc) cores"

# Pull: one registry holding the image (pushed by skopeo), a fresh destination per run.
start_registry "$work/pull-registry"
skopeo copy -q --dest-tls-verify=false "oci:$CORPUS:$TAG" "docker://127.0.0.1:$port/bench:$TAG"
ref=127.0.0.1:$port/bench:$TAG
for i in $(seq "$RUNS"); do
  rm -rf "$work/dst"; timed pull-strata "$BIN" pull "$work/dst" "$TAG" "$ref" -q
  rm -rf "$work/dst"; timed pull-skopeo skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/dst:$TAG"
done
stop_registry

# Push: a fresh, empty registry per run.
for i in $(seq "$RUNS"); do
  for tool in strata skopeo; do
    rm -rf "$work/push-registry"; start_registry "$work/push-registry"
    ref=127.0.0.1:$port/bench:$TAG
    if [ "$tool" = strata ]; then
      timed push-strata "$BIN" push "$CORPUS" "$TAG" "$ref" -q
    else
      timed push-skopeo skopeo copy -q --dest-tls-verify=false "oci:$CORPUS:$TAG" "docker://$ref"
    fi
    stop_registry
  done
done

printf '%-6s %12s %12s %14s %14s %8s\n' op strata_s skopeo_s strata_rss_MiB skopeo_rss_MiB ratio
for op in pull push; do
  st=$(cut -d' ' -f1 "$work/$op-strata" | median); sk=$(cut -d' ' -f1 "$work/$op-skopeo" | median)
  sr=$(cut -d' ' -f2 "$work/$op-strata" | median); kr=$(cut -d' ' -f2 "$work/$op-skopeo" | median)
  awk -v op="$op" -v st="$st" -v sk="$sk" -v sr="$sr" -v kr="$kr" \
    'BEGIN { printf "%-6s %12.3f %12.3f %14.1f %14.1f %7.2fx\n", op, st, sk, sr/1024, kr/1024, st/sk }'
done
