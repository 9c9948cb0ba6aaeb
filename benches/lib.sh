# benches/lib.sh: the timing loop the comparison scripts share (sourced; needs W, the
# scratch directory, and N, the runs). Each case runs N+1 times, the first only warming
# the page cache; the median wall time and peak RSS are kept in WALL[name] / PEAK[name]
# and printed with every run's time; with `run` and `run_batch` also the median CPU time
# (user + system) in CPU[name], which a loaded machine inflates less than the wall time.
declare -A WALL PEAK CPU

# run NAME CMD: CMD (a shell command line) timed by /usr/bin/time around it.
run() { _measure "$1" "/usr/bin/time -f '%e %M %U %S' -o '$W/time.txt' sh -c $(printf '%q' "$2")"; }

# run_timed NAME CMD: CMD times itself (`/usr/bin/time -f '%e %M' -o "$W/time.txt"`
# inside it, around one program: under `script`, say, so the pty is not counted).
run_timed() { _measure "$1" "$2"; }

# run_batch NAME K CMD: CMD run K times back to back under one /usr/bin/time, the time
# divided by K: for commands near the 10 ms resolution of /usr/bin/time (peak RSS is the
# largest of the K runs).
run_batch() {
  local k=$2 loop
  loop="for i in \$(seq $k); do $3; done"
  _measure "$1" "/usr/bin/time -f '%e %M %U %S' -o '$W/batch.txt' sh -c $(printf '%q' "$loop") && awk -v k=$k '{printf \"%.5f %s %.5f %.5f\\n\", \$1 / k, \$2, \$3 / k, \$4 / k}' '$W/batch.txt' >'$W/time.txt'"
}

_measure() {
  local name=$1 cmd=$2 i t=$W/time.txt walls=() peaks=() cpus=() w p u s c=
  for ((i = 0; i <= N; i++)); do
    rm -f "$t"
    bash -c "$cmd" >"$W/out.txt" 2>"$W/err.txt" || { echo "$name: FAILED: $(tail -3 "$W/err.txt")"; exit 1; }
    [ -s "$t" ] || { echo "$name: no timing: $(tail -3 "$W/out.txt")"; exit 1; }
    ((i == 0)) && continue
    read -r w p u s <"$t"; walls+=("$w"); peaks+=("$p")
    [ -n "$s" ] && cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.5f", u + s}')")
  done
  local mid=$(( (N + 1) / 2 ))
  w=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "${mid}p")
  p=$(printf '%s\n' "${peaks[@]}" | sort -g | sed -n "${mid}p")
  ((${#cpus[@]})) && c=$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "${mid}p")
  WALL[$name]=$w; PEAK[$name]=$p; CPU[$name]=$c
  printf '%-31s %7.4f s  (%s)  peak %5.1f MiB%s\n' "$name" "$w" "$(printf '%s\n' "${walls[@]}" | sort -g | tr '\n' ' ' | sed 's/ $//')" \
    "$(awk -v p="$p" 'BEGIN{print p/1024}')" "${c:+  cpu $c s}"
}

# ratio A B: WALL[A] / WALL[B], as "1.23x".
ratio() { awk -v a="${WALL[$1]}" -v b="${WALL[$2]}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }

# cpu_ratio A B: CPU[A] / CPU[B], as "1.23x" ("n/a" without CPU times).
cpu_ratio() { awk -v a="${CPU[$1]:-}" -v b="${CPU[$2]:-}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }

# run_pair NAME ROUNDS K CMD_A CMD_B: CMD_B's wall time over CMD_A's, the two timed in
# turn (each K times back to back, by the shell's microsecond clock) for ROUNDS rounds
# after one to warm up; prints and keeps in PAIR[name] the median of the rounds'
# ratios. A shared machine that slows down or speeds up between two cases timed minutes
# apart moves a ratio of `run`s; here it moves both sides of each round alike.
declare -A PAIR
run_pair() {
  local name=$1 rounds=$2 k=$3 a=$4 b=$5 i t0 t1 t2 ratios=()
  for ((i = 0; i <= rounds; i++)); do
    t0=$EPOCHREALTIME
    bash -c "for _ in \$(seq $k); do $a; done" >/dev/null 2>&1 || { echo "$name: FAILED: $a"; exit 1; }
    t1=$EPOCHREALTIME
    bash -c "for _ in \$(seq $k); do $b; done" >/dev/null 2>&1 || { echo "$name: FAILED: $b"; exit 1; }
    t2=$EPOCHREALTIME
    ((i == 0)) && continue
    ratios+=("$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN{printf "%.3f", (c - b) / (b - a)}')")
  done
  PAIR[$name]=$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n "$(( (rounds + 1) / 2 ))p")
  printf '%-44s %sx  (rounds: %s)\n' "$name" "${PAIR[$name]}" "$(printf '%s\n' "${ratios[@]}" | sort -g | tr '\n' ' ' | sed 's/ $//')"
}
