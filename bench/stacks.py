#!/usr/bin/env python3
"""hangscope's user-space stacks side by side with gdb's `thread apply all bt`, on programs whose
threads block in poll, futex, nanosleep and read: C (tests/fixtures/stacks/blocked.c, with and
without frame pointers), C++ (blocked.cpp: namespaces, class templates, methods; g++) and Rust
(blocked.rs, plain rustc), with 1 and 100 poller threads.

For each target: the function names per thread (gdb's frames found, by name, on hangscope's
stack of the same thread), each tool's wall time (median of RUNS), hangscope's with
`--stacks off` too, and whether any thread was seen stopped or traced (State t/T, TracerPid)
while the tool ran.

usage: bench/stacks.py [HANGSCOPE] [RUNS] [TARGETS]   (as root; HANGSCOPE defaults to
target/release/hangscope; TARGETS a comma-separated subset of c,cpp,rust)
"""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests/fixtures/stacks")
HANGSCOPE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/hangscope")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
TARGETS = sys.argv[3].split(",") if len(sys.argv) > 3 else ["c", "cpp", "rust"]


def strip_generics(name):
    """Drops every <...> (C++ template and Rust generic arguments); a Rust qualified path
    `<T as Trait>::f` becomes `T::f`."""
    if name.startswith("<"):
        depth = 0
        for i, ch in enumerate(name):
            depth += {"<": 1, ">": -1}.get(ch, 0)
            if depth == 0:
                inner, rest = name[1:i], name[i + 1:]
                break
        else:
            inner, rest = name[1:], ""
        inner = re.split(r" as ", inner, maxsplit=1)[0]
        name = re.sub(r"^(&|mut |dyn |\*const |\*mut )+", "", inner) + rest
    out, depth = [], 0
    for ch in name:
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def norm(name, lang):
    """One key for a function as gdb names it and as hangscope does.

    C: glibc's aliases (__GI___poll, __poll, poll) are one. C++: the name as written, spaces
    aside (gdb's from DWARF, hangscope's demangled without parameters). Rust: gdb names a
    function from DWARF's namespaces (a method by its impl block, `blocked::rpc::{impl#0}::
    wait_reply<T>`, a closure `{closure#2}`), hangscope by its symbol as Rust's own backtraces
    do (`blocked::rpc::Channel<T>::wait_reply`, `{{closure}}`): compared by crate and function
    name (with the function holding a closure)."""
    raw, name = name, re.sub(r"\s+", "", name)
    c = name
    for p in ("__GI_", "__libc_", "__"):
        while c.startswith(p):
            c = c[len(p):]
    c = c.lstrip("_")
    if lang == "c" or "::" not in name:
        return c
    if lang == "cpp":
        # gdb gives a function without DWARF (libstdc++'s) with its parameters; cpp_demangle
        # writes a template's integer argument `(unsigned long)0` where GNU's demangler writes
        # `0ul`, and an empty parameter pack as a trailing `, >`.
        name = re.sub(r"\(\)(const)?$", "", name)
        name = re.sub(r"\(unsignedlong\)(\d+)", r"\1ul", name)
        name = re.sub(r"\(long\)(\d+)", r"\1l", name)
        name = re.sub(r"\(unsignedint\)(\d+)", r"\1u", name)
        return name.replace(",>", ">")
    segs = [s for s in re.sub(r"\s+", "", strip_generics(raw)).split("::") if s and not re.fullmatch(r"\{impl#\d+\}", s)]
    segs = ["{closure}" if re.fullmatch(r"\{\{closure\}\}|\{closure#\d+\}", s) else s for s in segs]
    tail = segs[-2:] if segs[-1] == "{closure}" else segs[-1:]
    return "::".join([segs[0], *tail])


def watch(pid, stop, seen):
    until = time.time() + 300
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


def gdb_name(rest):
    """The function of a frame line after `#N  [0xADDR in ]`: up to the argument list, the
    first ` (` outside <...> (C++ and Rust names hold parentheses and spaces)."""
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0 and rest[i - 1] == " ":
            return rest[:i - 1]
    return rest


def gdb_stacks(out):
    stacks, tid = {}, None
    for l in out.splitlines():
        m = re.match(r"Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)", l)
        if m:
            tid = int(m.group(1)); stacks[tid] = []
            continue
        m = re.match(r"#\d+\s+(?:(0x[0-9a-f]+) in )?(.*)$", l)
        if m and tid is not None:
            stacks[tid].append((gdb_name(m.group(2)), int(m.group(1), 16) if m.group(1) else None))
    return stacks


def hs_stacks(out):
    doc = json.loads(out)
    return {t["tid"]: [(f.get("function") or "?", f.get("address")) for f in (t.get("user_stack") or {}).get("frames", [])]
            for t in doc["snapshot"]["threads"]}


def build(kind, flags, tmp):
    exe = os.path.join(tmp, kind + "".join(flags).replace("-", "_").replace("=", "_"))
    if kind == "c":
        cmd = ["cc", "-g", "-pthread", *flags, os.path.join(FIXTURES, "blocked.c"), "-o", exe]
    elif kind == "cpp":
        cmd = ["g++", "-g", "-pthread", *flags, os.path.join(FIXTURES, "blocked.cpp"), "-o", exe]
    else:
        cmd = ["rustc", "-g", *flags, os.path.join(FIXTURES, "blocked.rs"), "-o", exe]
    if not shutil.which(cmd[0]):
        print(f"{kind} {' '.join(flags)}: skipped, no {cmd[0]}")
        return None
    subprocess.run(cmd, check=True)
    return exe


def bench(kind, flags, pollers, tmp):
    exe = build(kind, flags, tmp)
    if not exe:
        return
    p = subprocess.Popen([exe, str(pollers)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    try:
        hs_cmd = [HANGSCOPE, str(p.pid), "--json", "--window", "0", "--no-chain"]
        gdb_cmd = ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", "-p", str(p.pid)]
        hs_walls, gdb_walls, off, hs_seen, gdb_seen = [], [], [], set(), set()
        for _ in range(RUNS):
            w, hs_out, seen = timed(hs_cmd, p.pid); hs_walls.append(w); hs_seen |= seen
            w, gdb_out, seen = timed(gdb_cmd, p.pid); gdb_walls.append(w); gdb_seen |= seen
            w, _, seen = timed(hs_cmd + ["--stacks", "off"], p.pid); off.append(w); hs_seen |= seen
        hs, gdb = hs_stacks(hs_out), gdb_stacks(gdb_out)
        total = matched = 0
        missed = {}
        for tid, frames in gdb.items():
            mine = hs.get(tid, [])
            names = {norm(f, kind) for f, _ in mine}
            addrs = {a for _, a in mine}
            for f, addr in frames:
                total += 1
                # A frame gdb cannot name either (a stripped library's local function): the
                # same address unwound is the match.
                if norm(f, kind) in names or (f == "??" and addr in addrs):
                    matched += 1
                else:
                    missed[f] = missed.get(f, 0) + 1
        h, g, o = statistics.median(hs_walls), statistics.median(gdb_walls), statistics.median(off)
        print(f"{kind:4} {' '.join(flags):28} {pollers + 4:4} threads  names {matched}/{total} = "
              f"{100.0 * matched / max(total, 1):5.1f}%  hangscope {h * 1000:6.0f} ms "
              f"(stacks off {o * 1000:5.0f} ms)  gdb {g * 1000:6.0f} ms  ratio {h / g:4.2f} "
              f"(stacks' share {max(h - o, 0) / g:4.2f})  "
              f"stopped: hangscope {len(hs_seen)} threads, gdb {len(gdb_seen)} threads", flush=True)
        if missed:
            print("    not on hangscope's stack:", ", ".join(f"{k} ×{v}" for k, v in sorted(missed.items())), flush=True)
    finally:
        p.kill(); p.wait()


def main():
    print(f"hangscope {HANGSCOPE}, {RUNS} runs each, median wall time", flush=True)
    builds = {
        "c": (["-O0"], ["-O2", "-fomit-frame-pointer"], ["-O2", "-fno-omit-frame-pointer"]),
        "cpp": (["-O0"], ["-O2"]),
        "rust": (["-O"], ["-Copt-level=0"]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for kind in TARGETS:
            for flags in builds[kind]:
                for pollers in (1, 100):
                    bench(kind, list(flags), pollers, tmp)

main()
