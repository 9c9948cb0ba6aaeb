#!/usr/bin/env python3
"""Interleaved A/B timing of short commands on a noisy machine.

    usage: benches/ab.py N NAME=COMMAND [NAME=COMMAND ...]

Runs every command N times, in a new random order each round (posix_spawn, stdout and
stderr to /dev/null), and prints each one's median and lower-quartile wall time and its
median over the first command's. Two binaries of one change compared this way see the
same drift of a shared host; the spawn itself (about /bin/true's time, worth listing as
a case) is in every figure.
"""
import os
import random
import shlex
import statistics
import sys
import time


def main() -> None:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit() or any("=" not in a for a in sys.argv[2:]):
        sys.exit(__doc__)
    n = int(sys.argv[1])
    cases = [a.split("=", 1) for a in sys.argv[2:]]
    argv = {name: shlex.split(cmd) for name, cmd in cases}
    times = {name: [] for name, _ in cases}
    null = os.open(os.devnull, os.O_WRONLY)
    io = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    for _ in range(n):
        order = list(argv)
        random.shuffle(order)
        for name in order:
            t = time.perf_counter()
            pid = os.posix_spawnp(argv[name][0], argv[name], os.environ, file_actions=io)
            _, status = os.waitpid(pid, 0)
            times[name].append(time.perf_counter() - t)
            if status != 0:
                sys.exit(f"{name}: exit status {status}: {' '.join(argv[name])}")
    base = statistics.median(times[cases[0][0]])
    for name, _ in cases:
        v = sorted(times[name])
        med = statistics.median(v)
        print(f"{name:16s} median {med * 1000:8.3f} ms  q1 {v[len(v) // 4] * 1000:8.3f} ms  {med / base:5.2f}x")


if __name__ == "__main__":
    main()
