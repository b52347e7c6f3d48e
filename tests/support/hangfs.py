#!/usr/bin/env python3
"""A FUSE file system that hangs: it serves one file, stuck.txt, and once any file has been
opened, every later call blocks for HANG_SECONDS (bounded) — a dead NFS or FUSE server, as the
target of a hang sees it. Attribute caching is off, so every stat reaches the server. With
"now", every call blocks from the start: a mount that is already dead when a path leads there.

usage: hangfs.py MOUNTPOINT HANG_SECONDS [now]   (runs in the foreground until killed)
"""
import errno
import stat
import sys
import threading
import time

from fuse import FUSE, FuseOSError, Operations


class HangFS(Operations):
    def __init__(self, hang_seconds, now):
        self.hang_seconds = hang_seconds
        self.hanging = threading.Event()
        if now:
            self.hanging.set()

    def _maybe_hang(self):
        if self.hanging.is_set():
            time.sleep(self.hang_seconds)

    def getattr(self, path, fh=None):
        self._maybe_hang()
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path == "/stuck.txt":
            return dict(st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=12)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        self._maybe_hang()
        return [".", "..", "stuck.txt"]

    def open(self, path, flags):
        self.hanging.set()
        return 0

    def read(self, path, size, offset, fh):
        self._maybe_hang()
        return b"hello world\n"[offset : offset + size]

    def statfs(self, path):
        self._maybe_hang()
        return dict(f_bsize=4096, f_blocks=1, f_bavail=0, f_bfree=0, f_files=1, f_ffree=0, f_namemax=255)


if __name__ == "__main__":
    FUSE(
        HangFS(float(sys.argv[2]), sys.argv[3:] == ["now"]),
        sys.argv[1],
        foreground=True,
        nothreads=False,
        attr_timeout=0,
        entry_timeout=0,
        fsname="hangfs",
        subtype="hangfs",
    )
