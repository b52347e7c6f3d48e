//! File scenarios: a process holding one of each kind of fd.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{announce, flag};

/// Holds one of each kind of fd the fd table must show, announces their numbers, and waits.
pub(super) fn holder(args: &[String]) -> Result<(), String> {
    let dir = flag(args, "--dir").ok_or("give --dir DIR")?;
    let err = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let kept = std::fs::File::create(format!("{dir}/kept.txt")).map_err(|e| err("kept", e))?;
    let deleted_path = format!("{dir}/deleted.txt");
    let mut deleted = std::fs::File::create(&deleted_path).map_err(|e| err("deleted", e))?;
    deleted
        .write_all(b"gone but open\n")
        .map_err(|e| err("deleted", e))?;
    std::fs::remove_file(&deleted_path).map_err(|e| err("unlink", e))?;
    let locked = std::fs::File::create(format!("{dir}/locked")).map_err(|e| err("locked", e))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(locked.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(err("flock", std::io::Error::last_os_error()));
    }
    let mut pipe = [0i32; 2];
    // SAFETY: pipe writes two fds into the array.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Err(err("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: plain syscalls creating fds this process owns until it exits.
    let efd = unsafe { libc::eventfd(5, libc::EFD_CLOEXEC) };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| err("listen", e))?;
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: listener.as_raw_fd() as u64,
    };
    // SAFETY: valid epoll fd, valid listener fd, live event struct.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), &mut ev) } != 0 {
        return Err(err("epoll_ctl", std::io::Error::last_os_error()));
    }
    announce(&format!(
        "fds kept={} deleted={} locked={} pipe_r={} pipe_w={} eventfd={} epoll={} listener={}",
        kept.as_raw_fd(),
        deleted.as_raw_fd(),
        locked.as_raw_fd(),
        pipe[0],
        pipe[1],
        efd,
        epfd,
        listener.as_raw_fd()
    ));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The benchmark's huge target: `--files N` regular files and `--conns M` loopback TCP
/// connections with both ends held (2·M socket fds), then waits. `--extras` adds a log open
/// for appending, a read-only file and a deleted file, announced by fd; `--flock` also takes a
/// shared flock on the read-only file, `--flock-by-child` has a child that exits take it. `--path P` also holds P open (announced as `held`).
/// `--sparse` closes every third file and dups one far
/// above the rest, so the table has holes. `--pipes N` holds N pipes (both ends of each),
/// announced as `pipe_read` and `pipe_write` for the first.
pub(super) fn many_fds(args: &[String]) -> Result<(), String> {
    let dir = flag(args, "--dir").ok_or("give --dir DIR")?;
    let files: usize = flag(args, "--files")
        .and_then(|s| s.parse().ok())
        .unwrap_or(9000);
    let conns: usize = flag(args, "--conns")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    raise_nofile_limit();
    let mut held_files = Vec::with_capacity(files);
    // `--devnull`: the files are /dev/null, opened again and again (a character device).
    let devnull = args.iter().any(|a| a == "--devnull");
    for i in 0..files {
        let f = if devnull {
            std::fs::File::open("/dev/null")
        } else {
            std::fs::File::create(format!("{dir}/f{i}"))
        };
        held_files.push(f.map_err(|e| format!("file {i}: {e}"))?);
    }
    if args.iter().any(|a| a == "--sparse") {
        // Holes below the open count, and one fd far above it: a table that is not dense.
        let high = held_files.last().map(|f| f.as_raw_fd() * 4).unwrap_or(4096);
        if let Some(f) = held_files.first() {
            // SAFETY: dup2 onto a number this process does not use; held until exit.
            if unsafe { libc::dup2(f.as_raw_fd(), high) } < 0 {
                return Err(format!("dup2: {}", std::io::Error::last_os_error()));
            }
        }
        let mut i = 0;
        held_files.retain(|_| {
            i += 1;
            i % 3 != 2
        });
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut held_socks = Vec::with_capacity(conns * 2);
    for i in 0..conns {
        let c = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {i}: {e}"))?;
        let (s, _) = listener.accept().map_err(|e| format!("accept {i}: {e}"))?;
        held_socks.push(c);
        held_socks.push(s);
    }
    let mut ready = format!("ready files={files} conns={conns}");
    let mut held_extras = Vec::new();
    if args.iter().any(|a| a == "--extras") {
        let err = |what: &str, e: std::io::Error| format!("{what}: {e}");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(format!("{dir}/app.log"))
            .map_err(|e| err("log", e))?;
        let ro_path = format!("{dir}/readonly");
        std::fs::write(&ro_path, b"data").map_err(|e| err("readonly", e))?;
        let ro = std::fs::File::open(&ro_path).map_err(|e| err("readonly", e))?;
        let gone_path = format!("{dir}/gone");
        let gone = std::fs::File::create(&gone_path).map_err(|e| err("deleted", e))?;
        std::fs::remove_file(&gone_path).map_err(|e| err("unlink", e))?;
        // SAFETY: flock on an fd we own.
        if args.iter().any(|a| a == "--flock")
            && unsafe { libc::flock(ro.as_raw_fd(), libc::LOCK_SH) } != 0
        {
            return Err(err("flock", std::io::Error::last_os_error()));
        }
        if args.iter().any(|a| a == "--flock-by-child") {
            flock_in_child(ro.as_raw_fd()).map_err(|e| err("flock in a child", e))?;
        }
        ready.push_str(&format!(
            " log={} readonly={} deleted={}",
            log.as_raw_fd(),
            ro.as_raw_fd(),
            gone.as_raw_fd()
        ));
        held_extras.extend([log, ro, gone]);
    }
    let pipes: usize = flag(args, "--pipes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for i in 0..pipes {
        let mut ends = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two fds into the array we own; they are held until exit.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe {i}: {}", std::io::Error::last_os_error()));
        }
        if i == 0 {
            ready.push_str(&format!(" pipe_read={} pipe_write={}", ends[0], ends[1]));
        }
    }
    if let Some(path) = flag(args, "--path") {
        let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        ready.push_str(&format!(" held={}", f.as_raw_fd()));
        held_extras.push(f);
    }
    announce(&ready);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// A shared flock on `fd` taken by a child that then exits: the lock stays, held through the
/// open file description this process shares, and /proc/locks names the child, now gone (as
/// for a daemon that forked away from the process that took its lock).
fn flock_in_child(fd: i32) -> std::io::Result<()> {
    // SAFETY: the child only calls flock and _exit, which are async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child: flock on an inherited fd, then _exit.
        unsafe {
            let rc = libc::flock(fd, libc::LOCK_SH);
            libc::_exit(if rc == 0 { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: waitpid for our own child, into a local.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid
        || !libc::WIFEXITED(status)
        || libc::WEXITSTATUS(status) != 0
    {
        return Err(std::io::Error::other("the child's flock failed"));
    }
    Ok(())
}

/// Lifts the soft RLIMIT_NOFILE to the hard limit.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Opens `--path` read-only, announces the fd, and holds it: a process with a file on a mount
/// that may hang.
pub(super) fn open_hold(args: &[String]) -> Result<(), String> {
    let path = flag(args, "--path").ok_or("give --path FILE")?;
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    announce(&format!("fd {}", f.as_raw_fd()));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// A parent whose "reader" thread waits for a child's output on a pipe, and a child (`sleep`)
/// that holds the pipe's write end as its stdout and never writes.
pub(super) fn pipe_parent(_args: &[String]) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("600").stdout(std::process::Stdio::piped());
    // SAFETY: prctl in the forked child before exec touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn sleep: {e}"))?;
    let mut out = child.stdout.take().ok_or("no stdout pipe")?;
    let child_pid = child.id();
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            announce(&format!(
                "reader {} fd {} child {child_pid}",
                super::tid(),
                out.as_raw_fd()
            ));
            let mut buf = [0u8; 512];
            let _ = out.read(&mut buf);
        })
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    Ok(())
}

/// Opens `--path` (on a mount that hangs once a file is open) and then, on a thread named
/// "stat", stats it: that thread sleeps uninterruptibly in the kernel until the server answers.
pub(super) fn stat_hung(args: &[String]) -> Result<(), String> {
    let path = flag(args, "--path").ok_or("give --path FILE")?.to_string();
    let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    std::thread::Builder::new()
        .name("stat".into())
        .spawn(move || {
            announce(&format!("stat {}", super::tid()));
            let _ = std::fs::metadata(&path);
        })
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(f);
    Ok(())
}
