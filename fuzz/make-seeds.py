#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/TARGET/ from the recorded files in tests/fixtures, in
the input layout each target expects (see crates/collect/src/fuzzing.rs). The seeds are
committed; rerun this when a fixture is added. Inputs the fuzzer finds are not kept here
(fuzz/run.sh works on a copy); the crashing ones become unit tests beside the parser."""

import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def fixture(*parts):
    with open(os.path.join(FIX, *parts), "rb") as f:
        return f.read()


def hex_fixture(name):
    lines = fixture("netlink", name).decode().splitlines()
    last = [l for l in lines if l.strip() and not l.startswith("#")][-1]
    return bytes.fromhex(last)


def nlmsg(msg_type, flags, seq, body):
    """struct nlmsghdr (host order, x86_64) + body, padded to 4 bytes."""
    msg = struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body
    return msg + b"\0" * (-len(msg) % 4)


def nla(kind, value):
    a = struct.pack("=HH", 4 + len(value), kind) + value
    return a + b"\0" * (-len(a) % 4)


seeds = {}


def seed(target, name, data):
    seeds.setdefault(target, {})[name] = data


# fd: the link, then the fdinfo.
links = {
    "append-log": "/var/log/app.log",
    "deleted-file": "/tmp/scratch (deleted)",
    "eventfd": "anon_inode:[eventfd]",
    "eventpoll": "anon_inode:[eventpoll]",
    "inotify": "anon_inode:inotify",
    "signalfd": "anon_inode:[signalfd]",
    "socket": "socket:[692518610]",
    "timerfd": "anon_inode:[timerfd]",
}
for name, link in links.items():
    seed("fd", name, link.encode() + b"\n" + fixture("proc", "fdinfo-linux-6.18", name))
for name in ["fdinfo-holder-flock", "fdinfo-holder-ofd", "fdinfo-holder-posix", "fdinfo-waiter"]:
    seed("fd", name, b"/var/lib/app.lock\n" + fixture("proc", "locks-linux-6.18", name))

# locks: /proc/locks, alone and followed by a holder's fdinfo.
locks = fixture("proc", "locks-linux-6.18", "proc-locks")
seed("locks", "proc-locks", locks)
for name in ["fdinfo-holder-flock", "fdinfo-holder-ofd", "fdinfo-holder-posix"]:
    seed("locks", "proc-locks+" + name, locks + fixture("proc", "locks-linux-6.18", name))

# mountinfo: the unit test's table (no recorded file in tests/fixtures).
seed(
    "mountinfo",
    "mixed",
    b"24 1 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=10g\n"
    b"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    b"90 27 0:50 / /mnt/hung rw,nosuid - fuse.hangfs hangfs rw,user_id=0\n"
    b"91 27 0:51 / /usr/share/smartx/volumes rw - nfs4 10.0.0.1:/vol rw\n"
    b"92 27 0:52 / /srv/with\\040space rw shared:7 master:2 - tmpfs tmpfs rw\n",
)

# proc_pid: status files, a stat line, limits, an ns link, a stack, sched.
for name in ["thread-on-host", "thread-in-pid-namespace"]:
    seed("proc_pid", "status-" + name, fixture("proc", "status-linux-6.18", name))
seed(
    "proc_pid",
    "stat",
    b"31516 (zbs (meta) d) S 1 31516 31516 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 24 0 12345 "
    b"1000000 200 18446744073709551615 1 1 0 0 0 0 0 4096 16386 0 0 0 17 1 0 0 0 0 0 0 0 0 0 "
    b"0 0 0\n",
)
seed(
    "proc_pid",
    "limits",
    b"Limit                     Soft Limit           Hard Limit           Units     \n"
    b"Max open files            1024                 20000                files     \n",
)
seed("proc_pid", "ns", b"net:[4026531840]")
seed("proc_pid", "stack", b"[<0>] hrtimer_nanosleep+0x74/0xf0\n[<0>] common_nsleep+0x30/0x60\n")
seed(
    "proc_pid",
    "sched",
    b"zbs-metad (31516, #threads: 24)\n"
    b"-------------------------------------------------------------------\n"
    b"se.exec_start                                :      11843531.283926\n"
    b"se.sum_exec_runtime                          :           132.457541\n"
    b"nr_switches                                  :                 1520\n"
    b"nr_voluntary_switches                        :                 1499\n"
    b"nr_involuntary_switches                      :                   21\n",
)

# syscall: the line, then the target's memory (what its pointers read as).
pollfds = struct.pack("=ihh", 5, 1, 0) + struct.pack("=ihh", -1, 4, 0)
timespec = struct.pack("=qq", 2, 500_000_000)
syscalls = {
    # x86_64 numbers: poll 7, ppoll 271, select 23, pselect6 270, futex 202, nanosleep 35,
    # clock_nanosleep 230, epoll_wait 232, fcntl 72, flock 73, wait4 61, read 0.
    "poll": (b"7 0x7ffd00000010 0x2 0xffffffff 0x0 0x0 0x0 0x7ffc 0x7f00", pollfds),
    "ppoll": (b"271 0x7ffd00000010 0x2 0x7ffd00000020 0x0 0x8 0x0 0x7ffc 0x7f00", pollfds),
    "select": (b"23 0x8 0x7ffd00000000 0x0 0x0 0x7ffd00000008 0x0 0x7ffc 0x7f00",
               struct.pack("=Q", 0b10110) + struct.pack("=qq", 1, 5)),
    "pselect6": (b"270 0x40 0x7ffd00000000 0x7ffd00000000 0x0 0x7ffd00000000 0x0 0x7ffc 0x7f00",
                 struct.pack("=Q", 1 << 63)),
    "futex": (b"202 0x7ffd00000000 0x80 0x2 0x0 0x0 0x0 0x7ffc 0x7f00",
              struct.pack("=I", 0x80000000 | 4242)),
    "futex-timed": (b"202 0x7ffd00000000 0x189 0x0 0x7ffd00000010 0x0 0xffffffff 0x7ffc 0x7f00",
                    struct.pack("=I", 101) + b"\0" * 12 + timespec),
    "nanosleep": (b"35 0x7ffd00000000 0x0 0x0 0x0 0x0 0x0 0x7ffc 0x7f00", timespec),
    "clock_nanosleep": (b"230 0x1 0x1 0x7ffd00000000 0x0 0x0 0x0 0x7ffc 0x7f00", timespec),
    "epoll_wait": (b"232 0x4 0x7ffd00000000 0x8 0xffffffff 0x0 0x0 0x7ffc 0x7f00",
                   fixture("proc", "fdinfo-linux-6.18", "eventpoll")),
    "fcntl": (b"72 0xd 0x7 0x7ffd00000000 0x0 0x0 0x0 0x7ffc 0x7f00",
              struct.pack("=hhxxxxqqi", 1, 0, 0, 100, 42) + b"\0" * 4),
    "flock": (b"73 0xd 0x2 0x0 0x0 0x0 0x0 0x7ffc 0x7f00", b""),
    "wait4": (b"61 0xffffffffffffffff 0x7ffd00000000 0x0 0x0 0x0 0x0 0x7ffc 0x7f00", b""),
    "read": (b"0 0x7 0x7ffd00000000 0x40 0x0 0x0 0x0 0x7ffc 0x7f00", b""),
    "running": (b"running", b""),
    "not-in-syscall": (b"-1 0x7ffd00000000 0x7f0000000000", b""),
}
for name, (line, mem) in syscalls.items():
    seed("syscall", name, line + b"\n" + mem)
for line in fixture("proc", "task-syscall-aarch64-constructed.txt").splitlines():
    if line.startswith(b"#") or b"\t" not in line:
        continue
    name, text = line.split(b"\t", 1)
    seed("syscall", "aarch64-" + name.decode().replace(" ", "-"), text + b"\n" + timespec)

# proc_net: the recorded tables.
for name in ["tcp", "tcp6", "udp", "udp6", "unix"]:
    seed("proc_net", name, fixture("proc_net", name + "-linux-6.18"))

# sock_diag: reply bodies, tcp_info attributes, and a whole receive (reply + NLMSG_DONE).
inet = hex_fixture("inet_diag_msg-tcp-linux-6.18.hex")
seed("sock_diag", "inet_diag_msg-tcp", inet)
for name in ["280b", "truncated-232b", "truncated-200b"]:
    seed("sock_diag", "tcp_info-" + name, hex_fixture("tcp_info-linux-6.18-" + name + ".hex"))
unix = (
    struct.pack("=BBBBII", 1, 1, 10, 0, 4242, 0) + struct.pack("=II", 0xFFFFFFFF, 0xFFFFFFFF)
    + nla(0, b"\0abstract-name") + nla(2, struct.pack("=I", 4243)) + nla(4, struct.pack("=II", 0, 1))
)
seed("sock_diag", "unix_diag_msg", unix)
NLM_F_MULTI = 2
seed(
    "sock_diag",
    "batch",
    nlmsg(20, NLM_F_MULTI, 1, inet) + nlmsg(20, NLM_F_MULTI, 1, unix)
    + nlmsg(3, NLM_F_MULTI, 1, struct.pack("=i", 0)),
)

# services: a few lines in the format of /etc/services.
seed(
    "services",
    "services",
    b"# Network services, Internet style\n"
    b"ssh             22/tcp                          # SSH Remote Login Protocol\n"
    b"http            80/tcp          www             # WorldWideWeb HTTP\n"
    b"eforward        2181/tcp\n"
    b"domain          53/udp\n",
)

# logs: the file name, its mtime, then the content.
seed(
    "logs",
    "glog",
    b"zbs-metad.log.20230918-075346.31516\n1695000000\n" + fixture("logs", "glog-zbs-metad-seed.log"),
)
seed(
    "logs",
    "json",
    b"app.json.log\n1694928400\n"
    b'{"level":"error","ts":1694928327.038,"caller":"meta/dump.go:104","msg":"dump failed",'
    b'"peer":"10.0.130.72:10100","tid":31576}\n'
    b'{"time":"2023-09-17T05:25:27.038Z","severity":"WARNING","message":"slow","thread":"77"}\n'
    b'{"level":50,"time":1694928327038,"msg":"x"}\n{"a":1\n',
)
seed(
    "logs",
    "plain",
    b"app.log-20230918\n1694928400\n"
    b"2023-09-17 13:25:27,038 [WARN] slow disk\n"
    b"[2023-09-17 05:25:27] 4242 INFO: started\n"
    b"2023-09-17 05:25:27,038 - db.pool - ERROR - gone\n"
    b"    at com.example.Pool.get(Pool.java:42)\n"
    b"2023-09-17T05:25:27+08:00 connection error: reset by 10.0.130.72:10100\n"
    b"Sep  7 05:25:27 host kernel: x\n"
    b"\x01\x02 garbage\n",
)

# kmsg: the recorded records, one per NUL-separated part.
raw = fixture("kmsg", "records-linux-6.18.bin")
records = []
while b"\n" in raw:
    head, raw = raw.split(b"\n", 1)
    n = int(head)
    records.append(raw[:n])
    raw = raw[n:]
seed("kmsg", "records-linux-6.18", b"\0".join(records))
seed(
    "kmsg",
    "about-the-target",
    b"3,1,1000000,-;INFO: task zbs-metad:31576 blocked for more than 120 seconds.\0"
    b"6,2,2000000,-;Out of memory: Killed process 31516 (zbs-metad) total-vm:1000kB\0"
    b"4,3,3000000,c,caller=T1;dump_meta[31576]: segfault at 0 ip 0 sp 0 error 4\n SUBSYSTEM=x\n",
)

# snapshot: the recorded documents.
for name in sorted(os.listdir(os.path.join(FIX, "snapshots"))):
    seed("snapshot", name.removesuffix(".json"), fixture("snapshots", name))

# A libFuzzer dictionary for the snapshot target: the document's field names and enum values,
# from the committed JSON Schema.
import json

with open(os.path.join(ROOT, "docs", "snapshot-schema.json")) as f:
    schema = json.load(f)
words = set()


def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "properties" and isinstance(v, dict):
                words.update('"%s":' % name for name in v)
            if k == "enum" and isinstance(v, list):
                words.update('"%s"' % x for x in v if isinstance(x, str))
            if k == "const" and isinstance(v, str):
                words.add('"%s"' % v)
            walk(v)
    elif isinstance(o, list):
        for x in o:
            walk(x)


walk(schema)
with open(os.path.join(ROOT, "fuzz", "snapshot.dict"), "w") as f:
    f.write("# Written by fuzz/make-seeds.py from docs/snapshot-schema.json.\n")
    for w in sorted(words):
        f.write('"%s"\n' % w.replace("\\", "\\\\").replace('"', '\\"'))

if os.path.isdir(OUT):
    shutil.rmtree(OUT)
for target, files in seeds.items():
    os.makedirs(os.path.join(OUT, target))
    for name, data in files.items():
        with open(os.path.join(OUT, target, name), "wb") as f:
            f.write(data)
print(f"{sum(len(f) for f in seeds.values())} seeds for {len(seeds)} targets in {OUT}", file=sys.stderr)
