#!/usr/bin/env bash
# Soak the property tests: every property test of the workspace, with many more cases
# than CI runs and fresh seeds. Run it before landing a change to anything they cover.
#
#   usage: benches/soak.sh [SCALE=25] [ROUNDS=3] [CRATE...]
#
# CI runs each property test with its own number of cases and one fixed seed
# (strata_testkit::CI_SEED), so CI fails only when the code changed, never on a seed
# nobody has seen. New seeds are tried here (and by local `cargo test` runs, which pick
# a random seed each time). Each round draws a seed and runs every `proptest!` test of
# the crates (all crates with property tests by default), in release, its cases
# multiplied by SCALE (STRATA_PROPTEST_SCALE), PROPTEST_RNG_SEED set to the seed. A
# failure stops the soak and prints the seed and the command that repeats it; fix it
# with a regression test in the crate's tests (proptest's shrunk input is the case).
#
# The tests are found by reading the sources: the `fn` names inside `proptest! { }`
# blocks of crates/*/tests (cargo test filters by name, so a test of another kind whose
# name contains one of these runs too, once, which is harmless).
set -euo pipefail
SCALE=${1:-25}; ROUNDS=${2:-3}; shift $(( $# > 2 ? 2 : $# ))
cd "$(dirname "$0")/.."
unset CI PROPTEST_CASES PROPTEST_RNG_SEED

declare -A names
for f in $(grep -l '^proptest! {' -r crates/*/tests --include='*.rs' | sort); do
  crate=$(echo "$f" | cut -d/ -f2)
  if [ $# -gt 0 ] && [[ " $* " != *" $crate "* ]]; then continue; fi
  found=$(awk '/^proptest! \{/{p=1} p&&/^[ \t]*fn [a-z_0-9]+\(/{match($0,/fn [a-z_0-9]+/); print substr($0,RSTART+3,RLENGTH-3)} p&&/^\}/{p=0}' "$f")
  names[$crate]="${names[$crate]:-} $(echo $found)"
done
[ ${#names[@]} -gt 0 ] || { echo "no property tests found" >&2; exit 1; }

crates=$(printf '%s\n' "${!names[@]}" | sort)
for crate in $crates; do
  echo "$crate:${names[$crate]}"
done
echo "building (release)"
for crate in $crates; do cargo test --quiet --release -p "$crate" --no-run 2>&1 | grep -v '^ *Executable' || true; done

for ((round = 1; round <= ROUNDS; round++)); do
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  for crate in $crates; do
    echo "== round $round/$ROUNDS, $crate, seed $seed, cases x$SCALE"
    start=$SECONDS
    # shellcheck disable=SC2086 # the names are separate filters
    if ! PROPTEST_RNG_SEED=$seed STRATA_PROPTEST_SCALE=$SCALE \
        cargo test --quiet --release -p "$crate" -- ${names[$crate]} >"${TMPDIR:-/tmp}/soak-$crate.log" 2>&1; then
      grep -E 'minimal failing input|panicked|Test failed|FAILED|^failures:|^    [a-z_:]+$' \
        "${TMPDIR:-/tmp}/soak-$crate.log" | head -40 || true
      echo
      echo "FAILED: $crate, seed $seed (full log: ${TMPDIR:-/tmp}/soak-$crate.log). Repeat with:"
      echo "  PROPTEST_RNG_SEED=$seed STRATA_PROPTEST_SCALE=$SCALE cargo test --release -p $crate --${names[$crate]}"
      exit 1
    fi
    echo "   ok ($((SECONDS - start)) s)"
  done
done
echo "all property tests passed: $ROUNDS rounds, cases x$SCALE"
