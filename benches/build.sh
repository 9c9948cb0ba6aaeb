#!/usr/bin/env bash
# strata build on the corpus (../shared/bench/make_corpus.sh, tag `base`: Debian minbase).
#
# 1. A 10-step RUN-less Dockerfile on the corpus base, built by strata and by
#    `buildah bud --layers --storage-driver vfs` (same base, imported into both), then a
#    fully cached rebuild of each, timed with hyperfine in one run; target: strata <= 0.1x.
# 2. A RUN Dockerfile on the corpus base (create a user, write files, delete files, COPY,
#    ENV, WORKDIR, CMD), built by strata as root and unpacked by `umoci unpack`: the
#    expected tree, and history entries for every instruction.
#
# Usage: benches/build.sh   (root; needs buildah, umoci, hyperfine, jq; CORPUS=/tmp/corpus/oci)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-/tmp/corpus/oci}
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS (run ../shared/bench/make_corpus.sh)"; exit 1; }
cargo build --release -q -p strata-cli
S=$PWD/target/release/strata
# buildah names an image pulled from a layout after its path: keep it lower-case.
W=/tmp/strata-build-bench-$$
rm -rf "$W"; mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
B="buildah --root $W/buildah-root --runroot $W/buildah-run --storage-driver vfs"

echo "== base image into both"
cp -r "$CORPUS" "$W/store"
export STRATA_STORE=$W/store
id=$($B pull -q "oci:$CORPUS:base")
$B tag "$id" localhost/bench-base:1

mkdir -p "$W/ctx/app/lib" "$W/ctx-b"
for i in $(seq 1 200); do head -c 4096 /dev/urandom > "$W/ctx/app/lib/f$i.bin"; done
echo 'print("hi")' > "$W/ctx/app/main.py"
echo 'conf=1' > "$W/ctx/app.conf"
body='ENV APP_HOME=/srv/app LANG=C.UTF-8
LABEL org.example.title="bench"
WORKDIR /srv/app
COPY app/ ./
COPY app.conf /etc/app.conf
ENV MODE=production
EXPOSE 8080
USER nobody
CMD ["python3", "main.py"]'
printf 'FROM base\n%s\n' "$body" > "$W/ctx/Dockerfile"
cp -a "$W/ctx/." "$W/ctx-b/"
printf 'FROM localhost/bench-base:1\n%s\n' "$body" > "$W/ctx-b/Dockerfile"

echo "== first builds (uncached), once each"
/usr/bin/time -f "strata build (uncached): %es, %MKB max RSS" $S build -q -t bench:1 "$W/ctx"
/usr/bin/time -f "buildah bud (uncached): %es, %MKB max RSS" $B bud --layers -q -t localhost/bench:1 "$W/ctx-b" >/dev/null

echo "== fully cached rebuilds (10 steps), one hyperfine run"
hyperfine -N --warmup 2 --runs 10 \
  -n strata "$S build -q -t bench:1 $W/ctx" \
  -n buildah "$B bud --layers -q -t localhost/bench:1 $W/ctx-b" \
  --export-json "$W/cached.json"
jq -r '.results as $r | "strata/buildah (cached rebuild, mean): \(($r[0].mean / $r[1].mean * 1000 | round) / 1000)x"' "$W/cached.json"
$S build --json -t bench:1 "$W/ctx" | jq -c '{Steps, Cached, Executed}'

echo "== RUN on the corpus base, checked with umoci unpack"
mkdir -p "$W/run/site"
echo '<h1>hi</h1>' > "$W/run/site/index.html"
echo 'remove me' > "$W/run/site/remove-me.txt"
cat > "$W/run/Dockerfile" <<'DF'
FROM base
RUN useradd --create-home --uid 2000 web && echo created > /home/web/created.txt
ENV GREETING="hello there"
WORKDIR /srv/app
COPY site/ ./site/
RUN echo "$GREETING" > greeting.txt && rm site/remove-me.txt && rm -rf /usr/share/doc/apt && mkdir -p /var/log/app
USER web
RUN id -un > /home/web/whoami
CMD ["cat", "/srv/app/greeting.txt"]
DF
/usr/bin/time -f "strata build (RUN, uncached): %es, %MKB max RSS" $S build -q -t runbench:1 "$W/run"
umoci unpack --image "$W/store:runbench:1" "$W/bundle" >/dev/null
R=$W/bundle/rootfs
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; exit 1; fi; }
check '[ "$(cat $R/srv/app/greeting.txt)" = "hello there" ]' "RUN saw ENV, wrote into WORKDIR"
check '[ "$(cat $R/home/web/whoami)" = web ]' "USER web (made by a RUN) ran the last RUN"
check '[ "$(stat -c %u:%g $R/home/web)" = 2000:2000 ]' "useradd's home owned by the new user"
check 'grep -q "^web:x:2000" $R/etc/passwd' "the user is in /etc/passwd"
check '[ -f $R/srv/app/site/index.html ] && [ ! -e $R/srv/app/site/remove-me.txt ]' "COPY, then a RUN deleted a copied file"
check '[ ! -e $R/usr/share/doc/apt ] && [ -d $R/usr/share/doc ]' "a RUN deleted a directory of the base"
check '[ -d $R/var/log/app ]' "a RUN made a directory"
check '[ -z "$(ls -A $R/proc)" ] && [ "$($S ls base /dev)" = "$($S ls runbench:1 /dev)" ]' "nothing of the /proc and /dev mounts in the image"
hist=$($S history --no-trunc --json runbench:1 | jq -r '.[].CreatedBy')
for want in "useradd" "#(nop)  ENV GREETING=hello there" "#(nop) WORKDIR /srv/app" "#(nop) COPY dir:" "rm site/remove-me.txt" "#(nop)  USER web" "id -un" '#(nop)  CMD ["cat" "/srv/app/greeting.txt"]'; do
  check 'grep -qF -- "$want" <<<"$hist"' "history has: $want"
done
echo "== cached RUN rebuild"
hyperfine -N --runs 5 -n "strata RUN build (cached)" "$S build -q -t runbench:1 $W/run"
