#!/usr/bin/env bash
# strata-image against its peers on the corpus (make_corpus.sh), in one run, as ratios:
#   commit after a 1-file change   vs  umoci repack                        target <= 0.03x
#   docker-archive save of three   vs  skopeo copy oci: docker-archive:    target <= 0.3x
#   load of that same archive      vs  podman load (vfs, isolated root)    target <= 0.5x
# and peak RSS of each strata command (target <= 64 MiB). Then the commit law on the
# real corpus: unpack `three`, make make_corpus.sh's third-layer edits, commit, unpack
# the commit (strata and umoci), compare with the edited rootfs.
#
#   usage: benches/image.sh [CORPUS=/tmp/corpus] [RUNS=5]
#
# Wall time from date +%s%N around /usr/bin/time (which gives the peak RSS of the
# command); strata and the peer alternate, 1 warm-up + RUNS timed runs each, median
# (min-max), so that both see the same load on a shared machine. Scratch, layouts, archives,
# bundles and every tool's TMPDIR on /dev/shm (SCRATCH to override). Warm page cache.
# podman runs on storage of its own under the scratch dir (vfs, own root, runroot,
# tmpdir and config files). strata is driven by crates/strata-image/examples/image_tool.rs
# (one library call per command), built in release.
set -euo pipefail
C=${1:-/tmp/corpus}; N=${2:-5}
L=$C/oci
W=${SCRATCH:-/dev/shm/strata-image-bench}
cd "$(dirname "$0")/.."
cargo build --quiet --release --example image_tool -p strata-image
T=$PWD/target/release/examples/image_tool
rm -rf "$W"; mkdir -p "$W/tmp"
export TMPDIR=$W/tmp LC_ALL=C
cp -a "$L" "$W/oci-s"; cp -a "$L" "$W/oci-u"     # strata's and umoci's copies of the corpus
cat "$W"/oci-s/blobs/sha256/* >/dev/null

# podman, isolated: storage, runroot, tmpdir and config files under $W/p (recreated per run).
podman_fresh() {
  rm -rf "$W/p"; mkdir -p "$W/p/root" "$W/p/runroot" "$W/p/tmp" "$W/p/net"
  printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' "$W/p/root" "$W/p/runroot" >"$W/p/storage.conf"
  printf '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\ntmp_dir = "%s"\n[network]\nnetwork_config_dir = "%s"\n' \
    "$W/p/tmp" "$W/p/net" >"$W/p/containers.conf"
  printf 'unqualified-search-registries = []\n' >"$W/p/registries.conf"
}
PODMAN="env CONTAINERS_STORAGE_CONF=$W/p/storage.conf CONTAINERS_CONF=$W/p/containers.conf"
PODMAN+=" CONTAINERS_REGISTRIES_CONF=$W/p/registries.conf TMPDIR=$W/p/tmp podman --storage-driver vfs"
PODMAN+=" --root $W/p/root --runroot $W/p/runroot --tmpdir $W/p/tmp --events-backend none --cgroup-manager cgroupfs"

declare -A MED PEAK
printf '%-44s %9s %19s %8s\n' case wall_ms "(min-max)" peak_MB
once() { # setup cmd -> "wall_us peak_kb"
  local t0 t1
  eval "$1"
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$W/rss" sh -c "$2" >/dev/null 2>"$W/err" || { echo "FAILED: $2: $(tail -3 "$W/err")" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 )) $(cat "$W/rss")"
}
report() { # key name walls... (us) ; peaks in PEAKS
  local key=$1 name=$2 ws mid=$(( (N + 1) / 2 )); shift 2
  ws=$(printf '%s\n' "$@" | sort -n)
  MED[$key]=$(sed -n "${mid}p" <<<"$ws")
  printf '%-44s %9.1f %19s %8.1f\n' "$name" "$(awk -v u="${MED[$key]}" 'BEGIN{print u/1000}')" \
    "($(awk -v a="$(head -1 <<<"$ws")" -v b="$(tail -1 <<<"$ws")" 'BEGIN{printf "%.1f-%.1f", a/1000, b/1000}'))" \
    "$(awk -v k="${PEAK[$key]}" 'BEGIN{print k/1024}')"
}
# Runs strata's command and the peer's alternately (1 warm-up each, then N each), so
# that both see the same machine load; median wall, max peak RSS.
pair() { # key name setup cmd  peer_key peer_name peer_setup peer_cmd
  local i w p a=() b=()
  PEAK[$1]=0; PEAK[$5]=0
  for ((i = 0; i <= N; i++)); do
    read -r w p < <(once "$3" "$4"); [ -n "$w" ] || exit 1
    ((i > 0)) && a+=("$w") && ((p > PEAK[$1])) && PEAK[$1]=$p
    read -r w p < <(once "$7" "$8"); [ -n "$w" ] || exit 1
    ((i > 0)) && b+=("$w") && ((p > PEAK[$5])) && PEAK[$5]=$p
  done
  report "$1" "$2" "${a[@]}"; report "$5" "$6" "${b[@]}"
}

# --- commit after a 1-file change (both bundles of `three`, unpacked once) ---
"$T" unpack "$W/oci-s" three "$W/sb" >/dev/null
umoci unpack --image "$W/oci-u:three" "$W/ub" >/dev/null
pair commit "strata commit: 1 file modified (three)" 'date +%s%N >$W/sb/rootfs/etc/motd' "$T commit $W/oci-s $W/sb small" \
     repack "umoci repack: 1 file modified (three)" 'date +%s%N >$W/ub/rootfs/etc/motd' "umoci repack --image $W/oci-u:small $W/ub"
# --- docker-archive save of three ---
pair save "strata save three docker-archive" 'rm -f $W/s.tar' "$T save $W/oci-s docker-archive $W/s.tar three" \
     skopeo "skopeo copy oci:three docker-archive:" 'rm -f $W/k.tar' "skopeo copy -q oci:$W/oci-s:three docker-archive:$W/k.tar"
# --- load of the same archive (strata's), into an empty store / podman storage each run ---
pair load "strata load (strata's archive of three)" 'rm -rf $W/ls' "$T load $W/ls $W/s.tar" \
     podman "podman load (same archive, vfs)" 'podman_fresh' "$PODMAN load -q -i $W/s.tar"

echo
ratio() { awk -v a="${MED[$1]}" -v b="${MED[$2]}" -v t="$3" -v n="$4" \
  'BEGIN{r=a/b; printf "%-44s %7.3fx  (target <= %sx) %s\n", n, r, t, (r<=t)?"ok":"MISSED"}'; }
ratio commit repack 0.03 "commit / umoci repack"
ratio save skopeo 0.3 "save / skopeo copy"
ratio load podman 0.5 "load / podman load"
for k in commit save load; do
  awk -v k="$k" -v p="${PEAK[$k]}" 'BEGIN{printf "peak RSS strata %-7s %6.1f MiB (target <= 64) %s\n", k, p/1024, (p<=65536)?"ok":"MISSED"}'
done

# --- the commit law on the corpus ---
echo; echo "commit law on the corpus: unpack three, make_corpus.sh's edits, commit, unpack, compare"
B=$W/law; R=$B/rootfs; EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
"$T" unpack "$W/oci-s" three "$B" >/dev/null
rm -rf "$R"/usr/share/doc/* "$R"/usr/lib/python3.11/json "$R"/usr/share/perl/5.36/unicore/lib/Perl "$R"/usr/bin/who
echo 'law:x:1001:1001::/home/law:/bin/sh' >>"$R/etc/passwd"
mkdir -p "$R/home/law/deep/er"; chown -R 1001:1001 "$R/home/law"; echo deep >"$R/home/law/deep/er/f"
printf 'changed again\n' >"$R/etc/motd"
printf '\x00' | dd of="$R/opt/data/blob.bin" bs=1 seek=8192 conv=notrunc status=none   # 1 byte in 12 MiB
chmod 0640 "$R/etc/hostname"; chmod u+s "$R/usr/bin/env"
rm -rf "$R/var/log"; echo 'was a directory' >"$R/var/log"                           # directory -> file
rm -f "$R/etc/issue"; mkdir "$R/etc/issue"; echo x >"$R/etc/issue/now-a-dir"           # file -> directory
ln -sfn python3.11 "$R/usr/bin/python"; ln "$R/usr/bin/perl" "$R/usr/local/bin/perl-hl"
setfattr -n user.law -v yes "$R/etc/passwd" 2>/dev/null || true
find "$R" -newermt "@$EPOCH" -exec touch -h -d "@$((EPOCH + 2 * 86400))" {} +
"$T" diff "$W/oci-s" "$B" | awk '{c[$1]++} END{printf "changes: %d added, %d changed, %d deleted\n", c["A"], c["C"], c["D"]}'
"$T" commit "$W/oci-s" "$B" law:1 >/dev/null
"$T" unpack-raw "$W/oci-s" law:1 "$W/law-strata" >/dev/null
printf 'strata unpack of the commit vs the edited rootfs: '; "$T" compare "$R" "$W/law-strata" | tail -1
umoci unpack --image "$W/oci-s:law:1" "$W/law-umoci" >/dev/null
printf 'umoci unpack of the commit vs the edited rootfs:  '; "$T" compare "$R" "$W/law-umoci/rootfs" | tail -1
echo "whiteouts left by umoci: $(find "$W/law-umoci/rootfs" -name '.wh.*' | wc -l)"
printf 'fsck: '; "$T" fsck "$W/oci-s" | head -1
rm -rf "$W"
