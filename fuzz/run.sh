#!/usr/bin/env bash
# Run every fuzz target for a few minutes each (not in CI).
#   usage: fuzz/run.sh [SECONDS_PER_TARGET=180] [TARGET...]
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Corpora go to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target> (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-180}; shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(tar_reader decompress apply_layer apply_structured spec_json archive_load dockerfile_parse
  reference_parse registry_headers)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
# Seed each target with valid inputs (layers of each tar format with right checksums,
# archives that load, real Dockerfiles, ...), so the fuzzer starts deep inside the parser.
python3 seeds.py corpus
fail=0
for t in "${TARGETS[@]}"; do
  echo "== $t (${SECS}s)"
  mkdir -p "corpus/$t"
  # -rss_limit_mb: a target that allocates with the input's claims (a PAX bomb) fails.
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -rss_limit_mb=1024 \
      -timeout=20 -print_final_stats=1 2>"/tmp/fuzz-$t.log"; then
    echo "$t: FAILED, see /tmp/fuzz-$t.log and fuzz/artifacts/$t"; fail=1
  fi
  grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "/tmp/fuzz-$t.log" | tail -2 || true
done
exit $fail
