#!/usr/bin/env python3
"""A process that writes a plain log and, as asked, guards it the way a careful (or hostile)
target might; used to check that hangscope neither changes it nor hangs on it.

usage: log_target.py LOG MODE MARKER
  plain     open LOG for appending and write a few lines
  lease     and take a write lease on it (F_SETLEASE F_WRLCK); a SIGIO, which is how the kernel
            tells a lease holder its lease is being broken, creates the file MARKER
  fanotify  and mark LOG with FAN_OPEN_PERM in a fanotify group that is never read: every
            later open of LOG by another process waits for an answer that never comes
  fanotify-dir  the same on LOG's directory (FAN_ONDIR): a listing of it waits
Prints "ready" once set up (or "error ..." and exits 1), then sleeps; ends after 120 s.
"""
import ctypes
import fcntl
import os
import signal
import sys
import time

FAN_CLOEXEC = 0x00000001
FAN_CLASS_CONTENT = 0x00000004
FAN_MARK_ADD = 0x00000001
FAN_OPEN_PERM = 0x00010000
FAN_ONDIR = 0x40000000
AT_FDCWD = -100


def main():
    log, mode, marker = sys.argv[1], sys.argv[2], sys.argv[3]
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for i in range(5):
        os.write(fd, f"2026-12-01 09:00:0{i} INFO worker started step {i}\n".encode())
    keep = []
    if mode == "lease":
        signal.signal(signal.SIGIO, lambda s, f: open(marker, "w").close())
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    elif mode in ("fanotify", "fanotify-dir"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
        libc.fanotify_mark.argtypes = [
            ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p
        ]
        fan = libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, os.O_RDONLY)
        if fan < 0:
            raise OSError(ctypes.get_errno(), "fanotify_init")
        if mode == "fanotify":
            what, mask = log, FAN_OPEN_PERM
        else:
            what, mask = os.path.dirname(log), FAN_OPEN_PERM | FAN_ONDIR
        if libc.fanotify_mark(fan, FAN_MARK_ADD, mask, AT_FDCWD, what.encode()) < 0:
            raise OSError(ctypes.get_errno(), "fanotify_mark")
        keep.append(fan)
    elif mode != "plain":
        raise ValueError(f"unknown mode {mode}")
    print("ready", flush=True)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        time.sleep(0.2)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test prints this when the setup fails
        print(f"error {e}", flush=True)
        sys.exit(1)
