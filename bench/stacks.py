#!/usr/bin/env python3
"""hangscope's user-space stacks side by side with gdb's `thread apply all bt`, on the C
program tests/fixtures/stacks/blocked.c (threads in poll, futex, nanosleep, read), built with
and without frame pointers, with 1 and 100 poller threads.

For each target: the function names per thread (gdb's frames found, by name, on hangscope's
stack of the same thread), each tool's wall time (median of RUNS), and whether any thread was
seen stopped or traced (State t/T, TracerPid) while the tool ran.

usage: bench/stacks.py [HANGSCOPE] [RUNS]   (as root; HANGSCOPE defaults to target/release/hangscope)
"""
import json, os, re, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests/fixtures/stacks/blocked.c")
HANGSCOPE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/hangscope")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5

def norm(name):
    """gdb and DWARF name glibc's aliases differently (__GI___poll, __poll, poll)."""
    name = re.sub(r"\(.*$", "", name)
    for p in ("__GI_", "__libc_", "__"):
        while name.startswith(p):
            name = name[len(p):]
    return name.lstrip("_")

def watch(pid, stop, seen):
    until = time.time() + 120
    while not stop.is_set() and time.time() < until:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for l in f:
                        if (l.startswith("State:") and ("stopped" in l or "tracing stop" in l)) or \
                           (l.startswith("TracerPid:") and l.split()[1] != "0"):
                            seen.add(tid)
        except OSError:
            pass
        time.sleep(0.0002)

def timed(cmd, pid):
    stop, seen = threading.Event(), set()
    w = threading.Thread(target=watch, args=(pid, stop, seen))
    w.start()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    wall = time.perf_counter() - t0
    stop.set(); w.join()
    return wall, out, seen

def gdb_stacks(out):
    stacks, tid = {}, None
    for l in out.splitlines():
        m = re.match(r"Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)", l)
        if m:
            tid = int(m.group(1)); stacks[tid] = []
            continue
        m = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", l)
        if m and tid is not None:
            stacks[tid].append(m.group(1))
    return stacks

def hs_stacks(out):
    doc = json.loads(out)
    return {t["tid"]: [f.get("function") or "?" for f in (t.get("user_stack") or {}).get("frames", [])]
            for t in doc["snapshot"]["threads"]}

def bench(flags, pollers, tmp):
    exe = os.path.join(tmp, "blocked" + "".join(flags).replace("-", "_"))
    subprocess.run(["cc", "-g", "-pthread", *flags, SOURCE, "-o", exe], check=True)
    p = subprocess.Popen([exe, str(pollers)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    try:
        hs_cmd = [HANGSCOPE, str(p.pid), "--json", "--window", "0", "--no-chain"]
        gdb_cmd = ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", "-p", str(p.pid)]
        hs_walls, gdb_walls, hs_seen, gdb_seen = [], [], set(), set()
        for _ in range(RUNS):
            w, hs_out, seen = timed(hs_cmd, p.pid); hs_walls.append(w); hs_seen |= seen
            w, gdb_out, seen = timed(gdb_cmd, p.pid); gdb_walls.append(w); gdb_seen |= seen
        off = [timed(hs_cmd + ["--stacks", "off"], p.pid)[0] for _ in range(RUNS)]
        hs, gdb = hs_stacks(hs_out), gdb_stacks(gdb_out)
        total = matched = 0
        missed = {}
        for tid, frames in gdb.items():
            mine = [norm(f) for f in hs.get(tid, [])]
            for f in frames:
                total += 1
                if norm(f) in mine:
                    matched += 1
                else:
                    missed[f] = missed.get(f, 0) + 1
        h, g, o = statistics.median(hs_walls), statistics.median(gdb_walls), statistics.median(off)
        print(f"{' '.join(flags):28} {pollers + 4:4} threads  names {matched}/{total} = "
              f"{100.0 * matched / max(total, 1):5.1f}%  hangscope {h * 1000:6.0f} ms "
              f"(stacks off {o * 1000:5.0f} ms)  gdb {g * 1000:6.0f} ms  ratio {h / g:4.2f}  "
              f"stopped: hangscope {len(hs_seen)} threads, gdb {len(gdb_seen)} threads")
        if missed:
            print("    not on hangscope's stack:", ", ".join(f"{k} ×{v}" for k, v in sorted(missed.items())))
    finally:
        p.kill(); p.wait()

def main():
    print(f"hangscope {HANGSCOPE}, {RUNS} runs each, median wall time")
    with tempfile.TemporaryDirectory() as tmp:
        for flags in (["-O0"], ["-O2", "-fomit-frame-pointer"], ["-O2", "-fno-omit-frame-pointer"]):
            for pollers in (1, 100):
                bench(flags, pollers, tmp)

main()
