#!/usr/bin/env python3
"""Runs commands side by side on the same target, alternating, and prints the median wall time,
CPU time and peak memory of each, and each one's ratio to the first. Public tools only: the
kernel's own accounting of each finished child (wait4's rusage).

usage: compare.py RUNS 'label=command' 'label=command' ...
With PER_PROCESS=N in the environment, also the CPU time per process of a host of N processes.
"""
import atexit, os, shlex, statistics, subprocess, sys, time

MAXRSS = "/tmp/compare-maxrss.%d" % os.getpid()
atexit.register(lambda: os.path.exists(MAXRSS) and os.remove(MAXRSS))

def run(cmd):
    # GNU time reports the command's own peak RSS (%M); a child forked straight from this
    # script would count the script's pages copied before exec.
    timed = ["/usr/bin/time", "-f", "%M %x", "-o", MAXRSS] + cmd
    start = time.perf_counter()
    p = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    with open(MAXRSS) as f:
        kb, code = f.read().split()[-2:]
    return wall, ru.ru_utime + ru.ru_stime, int(kb) / 1024.0, int(code)

def main():
    runs = int(sys.argv[1])
    cmds = []
    for spec in sys.argv[2:]:
        label, cmd = spec.split("=", 1)
        cmds.append((label, shlex.split(cmd)))
    results = {label: [] for label, _ in cmds}
    for label, cmd in cmds:  # warm-up, not counted
        run(cmd)
    for _ in range(runs):
        for label, cmd in cmds:
            results[label].append(run(cmd))
    base = statistics.median(r[0] for r in results[cmds[0][0]])
    per = int(os.environ.get("PER_PROCESS", "0") or 0)
    per_head = f" {'cpu us/proc':>12}" if per else ""
    print(f"{'command':<28} {'wall ms':>9} {'cpu ms':>8}{per_head} {'peak MB':>8} {'vs ' + cmds[0][0]:>14}  exit")
    for label, _ in cmds:
        rs = results[label]
        wall = statistics.median(r[0] for r in rs)
        cpu = statistics.median(r[1] for r in rs)
        mem = max(r[2] for r in rs)
        codes = sorted(set(r[3] for r in rs))
        per_col = f" {cpu*1e6/per:12.0f}" if per else ""
        print(f"{label:<28} {wall*1000:9.1f} {cpu*1000:8.1f}{per_col} {mem:8.1f} {wall/base:13.2f}x  {codes}")

if __name__ == "__main__":
    main()
