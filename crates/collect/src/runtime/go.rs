//! Go: recognised by the build info the Go linker writes into every executable (the
//! `.go.buildinfo` section, which starts with the magic "\xff Go buildinf:"), and asked through
//! net/http/pprof when the program serves it: `GET /debug/pprof/goroutine?debug=2` on one of
//! its own TCP listeners, which lists every goroutine with its wait ("[semacquire, 5
//! minutes]") and stack. Never SIGQUIT: the Go runtime dumps its goroutines on SIGQUIT and
//! exits.
//!
//! The executable is read in the helper process (`isolate`), through /proc/PID/exe: only the
//! ELF header, the section headers and their names, and the first bytes of the one section,
//! so a 100 MB binary costs a few KB.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hangscope_model::{
    Gap, GapReason, Runtime, RuntimeKind, RuntimeThread, RuntimeView, Snapshot, SocketDetail,
    TcpState, Text, UnavailableReason, ViewUnavailable,
};
use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::FileHeader;
use object::{Endianness, ReadCache};

use super::{Answer, limit, no_time, unavailable};
use crate::isolate::Outcome;
use crate::{Options, ProcRoot};

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Bytes of the build info section read: the header (32) and two short strings.
const MAX_BUILDINFO: usize = 64 * 1024;
/// The most section headers read; real executables have a few dozen.
const MAX_SECTIONS: u32 = 4096;
/// How long the executable's read may take.
const EXE_LIMIT: Duration = Duration::from_millis(500);
/// A goroutine dump is larger than a thread dump: goroutines are cheap.
const MAX_DUMP: usize = 16 << 20;
/// Listeners tried for a pprof endpoint.
const MAX_LISTENERS: usize = 4;
const PPROF_PATH: &str = "/debug/pprof/goroutine?debug=2";
const MAX_THREADS: usize = 64;
const MAX_FRAMES: usize = 4;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildInfo {
    /// "go1.19.8"; empty before Go 1.18, whose build info points at its strings instead.
    pub version: String,
    /// The main module's path.
    pub module: String,
}

pub(crate) fn recognise(
    root: &ProcRoot,
    pid: i32,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) -> Option<Runtime> {
    let exe = root.pid(pid).join("exe");
    let info = match opts.reader.as_deref() {
        None => read_buildinfo(&exe, MAX_BUILDINFO),
        Some(helper) => {
            let fd = crate::logs::open::open_path(&exe).ok()?;
            let args = ["buildinfo".to_string(), MAX_BUILDINFO.to_string()];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match crate::isolate::ask(helper, fd.as_fd(), &args, MAX_BUILDINFO + 128, EXE_LIMIT) {
                Outcome::Done(bytes) => {
                    crate::isolate::split_answer(&bytes).and_then(|(_, body)| {
                        decode(body).ok_or_else(|| io::Error::other("bad answer"))
                    })
                }
                Outcome::Failed(e) => Err(e),
                Outcome::TimedOut(d) => {
                    gaps.push(Gap::new(
                        format!("/proc/{pid}/exe: Go build info"),
                        GapReason::Unsafe,
                        format!(
                            "the read of the executable did not end within {}",
                            hangscope_model::units::duration(d)
                        ),
                    ));
                    return None;
                }
            }
        }
    };
    let info = info.ok()?;
    Some(Runtime {
        kind: RuntimeKind::Go,
        version: (!info.version.is_empty()).then(|| Text::from(info.version)),
        recognised_by: Text::from(format!("/proc/{pid}/exe: .go.buildinfo")),
        module: (!info.module.is_empty()).then(|| Text::from(info.module)),
        ..Runtime::default()
    })
}

/// Whether the mappings hold a Go heap arena: the Go runtime asks for its first arenas at
/// 0x00c000000000, then 0x01c000000000 ... 0x7fc000000000 (runtime/malloc.go, 64-bit), so
/// every Go program maps one there. A cheap test on text already read, so the executable is
/// read (in a helper process) only for a likely Go program, not for every target.
pub(crate) fn has_heap_arena(maps: &str) -> bool {
    maps.lines().any(|l| {
        l.split('-')
            .next()
            .and_then(|a| u64::from_str_radix(a, 16).ok())
            .is_some_and(|a| a & ((1 << 40) - 1) == 0xc0 << 32)
    })
}

/// The build info of the ELF executable at `path`, reading at most `max` bytes of it beyond
/// its headers. Not a Go executable: `NotFound`.
pub fn read_buildinfo(path: &Path, max: usize) -> io::Result<BuildInfo> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    let cache = ReadCache::new(file);
    let data = match elf_section::<FileHeader64<Endianness>>(&cache, max) {
        Some(d) => Some(d),
        None => elf_section::<FileHeader32<Endianness>>(&cache, max),
    };
    data.as_deref()
        .and_then(parse_buildinfo)
        .ok_or_else(|| io::ErrorKind::NotFound.into())
}

fn elf_section<H: FileHeader<Endian = Endianness>>(
    cache: &ReadCache<File>,
    max: usize,
) -> Option<Vec<u8>> {
    let header = H::parse(cache).ok()?;
    let endian = header.endian().ok()?;
    if u32::from(header.e_shnum(endian)) > MAX_SECTIONS {
        return None;
    }
    let sections = header.sections(endian, cache).ok()?;
    let (_, section) = sections.section_by_name(endian, b".go.buildinfo")?;
    use object::read::elf::SectionHeader;
    let (offset, size) = section.file_range(endian)?;
    let size = size.min(max as u64);
    let bytes = object::ReadRef::read_bytes_at(cache, offset, size).ok()?;
    Some(bytes.to_vec())
}

/// The section's contents: the magic, the pointer size, flags (bit 1: the strings follow
/// inline, Go 1.18 on), then at offset 32 the version and the module info, each a uvarint
/// length and bytes. The module info's lines are "path\tMODULE", "mod\t...", between 16-byte
/// sentinels.
pub fn parse_buildinfo(data: &[u8]) -> Option<BuildInfo> {
    if !data.starts_with(MAGIC) || data.len() < 32 {
        return None;
    }
    let flags = data[15];
    if flags & 2 == 0 {
        // Before Go 1.18: pointers into the data segment. A Go program all the same.
        return Some(BuildInfo::default());
    }
    let mut at = 32;
    let string = |at: &mut usize| -> Option<Vec<u8>> {
        let (len, n) = uvarint(data.get(*at..)?)?;
        *at += n;
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        let s = data.get(*at..end)?.to_vec();
        *at = end;
        Some(s)
    };
    let version = String::from_utf8_lossy(&string(&mut at)?).into_owned();
    let modinfo = string(&mut at).unwrap_or_default();
    // Between two 16-byte sentinels, which are not text.
    let lines = modinfo
        .get(16..modinfo.len().saturating_sub(16))
        .unwrap_or(&[]);
    let module = String::from_utf8_lossy(lines)
        .lines()
        .find_map(|l| l.strip_prefix("path\t").map(str::to_string))
        .unwrap_or_default();
    Some(BuildInfo { version, module })
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

/// The helper's answer: version, NUL, module.
pub(crate) fn encode(info: &BuildInfo) -> Vec<u8> {
    let mut v = info.version.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(info.module.as_bytes());
    v
}

fn decode(body: &[u8]) -> Option<BuildInfo> {
    let text = String::from_utf8_lossy(body);
    let (version, module) = text.split_once('\0')?;
    Some(BuildInfo {
        version: version.to_string(),
        module: module.to_string(),
    })
}

/// The first goroutine dump, taken before the sampling window, and where it answered.
pub struct FirstDump {
    addr: SocketAddr,
    at: Instant,
    goroutines: Vec<Goroutine>,
}

/// The addresses to reach the process's own TCP listeners at, from this network namespace.
fn listeners(snap: &Snapshot) -> Vec<SocketAddr> {
    if snap.process.netns_same_as_tool != Some(true) {
        return Vec::new();
    }
    let mut out: Vec<SocketAddr> = snap
        .sockets
        .iter()
        .filter_map(|s| match &s.detail {
            SocketDetail::Tcp(t) if t.state == TcpState::Listen => {
                let ip: IpAddr = t.local.addr.parse().ok()?;
                let ip = match ip {
                    IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                Some(SocketAddr::new(ip, t.local.port))
            }
            _ => None,
        })
        .collect();
    // Loopback first: net/http/pprof is usually served on a debug port there.
    out.sort_by_key(|a| !a.ip().is_loopback());
    out.dedup();
    out.truncate(MAX_LISTENERS);
    out
}

enum Fetch {
    Dump(String),
    NotFound,
    Failed(String),
}

/// `GET /debug/pprof/goroutine?debug=2` over HTTP/1.0, the whole answer within `limit`.
fn fetch(addr: SocketAddr, limit: Duration) -> Fetch {
    let end = Instant::now() + limit;
    let mut s = match TcpStream::connect_timeout(&addr, limit) {
        Ok(s) => s,
        Err(e) => return Fetch::Failed(format!("{addr}: {e}")),
    };
    let req = format!(
        "GET {PPROF_PATH} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: hangscope\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = s
        .set_write_timeout(Some(limit))
        .and_then(|_| s.write_all(req.as_bytes()))
    {
        return Fetch::Failed(format!("{addr}: {e}"));
    }
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fetch::Failed(format!(
                "{addr}: no whole answer within {}",
                hangscope_model::units::duration(limit)
            ));
        }
        if let Err(e) = s.set_read_timeout(Some(left)) {
            return Fetch::Failed(format!("{addr}: {e}"));
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                if got.len() > MAX_DUMP {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Fetch::Failed(format!(
                    "{addr}: no whole answer within {}",
                    hangscope_model::units::duration(limit)
                ));
            }
            Err(e) => return Fetch::Failed(format!("{addr}: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1));
    match status {
        Some("200") if body.contains("goroutine ") => Fetch::Dump(body.to_string()),
        Some("404") => Fetch::NotFound,
        Some(code) => Fetch::Failed(format!("{addr}: HTTP {code}")),
        None => Fetch::Failed(format!("{addr}: not an HTTP answer")),
    }
}

/// Tries the listeners in turn: the first dump, or why none came.
fn find_dump(snap: &Snapshot, limit: Duration) -> Result<(SocketAddr, String), ViewUnavailable> {
    let addrs = listeners(snap);
    if addrs.is_empty() {
        let why = if snap.process.netns_same_as_tool == Some(false) {
            "the process is in another network namespace, whose listeners hangscope does not reach"
        } else {
            "the process has no TCP listener to ask for net/http/pprof's goroutine dump"
        };
        return Err(unavailable(UnavailableReason::NoEndpoint, why));
    }
    let end = Instant::now() + limit;
    let mut said = Vec::new();
    for addr in addrs {
        let left = end.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(50) {
            break;
        }
        match fetch(addr, left) {
            Fetch::Dump(d) => return Ok((addr, d)),
            Fetch::NotFound => said.push(format!("{addr}: HTTP 404, no pprof endpoint")),
            Fetch::Failed(e) => said.push(e),
        }
    }
    Err(unavailable(
        UnavailableReason::NoEndpoint,
        format!(
            "no pprof endpoint ({PPROF_PATH}) on its listeners: {}",
            said.join("; ")
        ),
    ))
}

pub(crate) fn first_dump(snap: &Snapshot, opts: &Options) -> Option<FirstDump> {
    let limit = limit(opts)?.min(Duration::from_millis(500));
    let (addr, dump) = find_dump(snap, limit).ok()?;
    Some(FirstDump {
        addr,
        at: Instant::now(),
        goroutines: parse_goroutines(&dump),
    })
}

pub(crate) fn ask(
    snap: &Snapshot,
    opts: &Options,
    first: Option<FirstDump>,
) -> Result<Answer, ViewUnavailable> {
    let Some(limit) = limit(opts) else {
        return Err(no_time());
    };
    let started = Instant::now();
    let (addr, dump) = match &first {
        Some(f) => match fetch(f.addr, limit) {
            Fetch::Dump(d) => (f.addr, d),
            Fetch::NotFound => {
                return Err(unavailable(
                    UnavailableReason::NoEndpoint,
                    format!("{}: HTTP 404", f.addr),
                ));
            }
            Fetch::Failed(e) => return Err(unavailable(UnavailableReason::Failed, e)),
        },
        None => find_dump(snap, limit)?,
    };
    let took_ms = started.elapsed().as_millis() as u64;
    let now = parse_goroutines(&dump);
    let mut view = RuntimeView {
        tool: Text::from(format!("curl 'http://{addr}{PPROF_PATH}' (net/http/pprof)")),
        command: format!("curl 'http://{addr}{PPROF_PATH}'"),
        took_ms,
        threads_total: now.len() as u32,
        between_dumps_ms: first.as_ref().map(|f| f.at.elapsed().as_millis() as u64),
        ..RuntimeView::default()
    };
    for g in now.iter().filter(|g| g.lock.is_some()) {
        if view.threads.len() >= MAX_THREADS {
            break;
        }
        let same = first.as_ref().is_some_and(|f| {
            f.goroutines
                .iter()
                .any(|o| o.id == g.id && o.lock == g.lock && o.frames == g.frames)
        });
        view.threads.push(RuntimeThread {
            name: Text::from(format!("goroutine {}", g.id)),
            tid: None,
            state: Text::from(g.state.as_str()),
            waiting_for: g.lock.as_deref().map(Text::from),
            wait_minutes: g.minutes,
            same_in_both_dumps: same,
            frames: g.frames.iter().map(|f| Text::from(f.as_str())).collect(),
        });
    }
    Ok(Answer {
        view,
        version_from_dump: None,
    })
}

/// One goroutine of a `debug=2` dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Goroutine {
    pub id: u64,
    /// "semacquire", "sync.Mutex.Lock", "IO wait".
    pub state: String,
    pub minutes: Option<u64>,
    /// The sync function it waits in, when it waits for a mutex.
    pub lock: Option<String>,
    /// Its own innermost frames, outside runtime, sync and internal packages.
    pub frames: Vec<String>,
}

/// "goroutine 18 [semacquire, 2 minutes]:" and its stack, for every goroutine.
pub fn parse_goroutines(dump: &str) -> Vec<Goroutine> {
    let mut out: Vec<Goroutine> = Vec::new();
    let mut lines = dump.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("goroutine ") else {
            continue;
        };
        let Some((id, rest)) = rest.split_once(" [") else {
            continue;
        };
        let Ok(id) = id.parse() else { continue };
        let inside = rest.trim_end_matches(':').trim_end_matches(']');
        let mut parts = inside.split(", ");
        let state = parts.next().unwrap_or("").to_string();
        let minutes = parts.find_map(|p| {
            p.strip_suffix(" minutes")
                .or_else(|| p.strip_suffix(" minute"))
                .and_then(|n| n.parse().ok())
        });
        let mut g = Goroutine {
            id,
            state,
            minutes,
            lock: None,
            frames: Vec::new(),
        };
        // The stack: a function line, then its "\tFILE:LINE +0x.." line; a blank line ends it.
        while let Some(&l) = lines.peek() {
            if l.is_empty() || l.starts_with("goroutine ") {
                break;
            }
            lines.next();
            if l.starts_with('\t') {
                continue;
            }
            let func = l.split('(').next().unwrap_or(l);
            let func = if l.contains(".(*") {
                // "sync.(*Mutex).Lock(...)": the receiver's parentheses are part of the name.
                l.find(").")
                    .and_then(|i| l[i + 2..].find('(').map(|j| &l[..i + 2 + j]))
                    .unwrap_or(func)
            } else {
                func
            };
            // The outermost sync frame is the call the program made: sync.(*Mutex).Lock.
            if is_mutex_wait(func) {
                g.lock = Some(func.to_string());
            }
            let own = !(func.starts_with("runtime.")
                || func.starts_with("sync.")
                || func.starts_with("internal/")
                || func.starts_with("created by "));
            if own && g.frames.len() < MAX_FRAMES {
                let at = lines
                    .peek()
                    .filter(|n| n.starts_with('\t'))
                    .map(|n| n.trim().split(" +0x").next().unwrap_or("").to_string());
                g.frames.push(match at {
                    Some(at) => format!("{func} ({at})"),
                    None => func.to_string(),
                });
            }
        }
        if g.lock.is_none()
            && (g.state.starts_with("sync.Mutex.") || g.state.starts_with("sync.RWMutex."))
        {
            g.lock = Some(g.state.clone());
        }
        out.push(g);
    }
    out
}

fn is_mutex_wait(func: &str) -> bool {
    matches!(
        func,
        "sync.(*Mutex).Lock"
            | "sync.(*Mutex).lockSlow"
            | "sync.(*RWMutex).Lock"
            | "sync.(*RWMutex).RLock"
            | "sync.runtime_SemacquireMutex"
            | "sync.runtime_SemacquireRWMutex"
            | "sync.runtime_SemacquireRWMutexR"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_build_info() {
        let mut d = MAGIC.to_vec();
        d.extend_from_slice(&[8, 2]);
        d.resize(32, 0);
        d.push(8);
        d.extend_from_slice(b"go1.19.8");
        let modinfo = b"0123456789abcdefpath\texample.com/srv\nmod\texample.com/srv\t(devel)\t\n0123456789abcdef";
        d.push(modinfo.len() as u8);
        d.extend_from_slice(modinfo);
        let info = parse_buildinfo(&d).unwrap();
        assert_eq!(info.version, "go1.19.8");
        assert_eq!(info.module, "example.com/srv");
        assert_eq!(decode(&encode(&info)), Some(info));
        assert_eq!(parse_buildinfo(b"\x7fELF"), None);
        // Truncated: the magic and flags, a length past the end.
        let mut t = MAGIC.to_vec();
        t.extend_from_slice(&[8, 2]);
        t.resize(32, 0);
        t.push(0x7f);
        assert_eq!(parse_buildinfo(&t), None);
    }

    #[test]
    fn go_heap_arenas_in_the_mappings() {
        assert!(has_heap_arena(
            "c000000000-c000400000 rw-p 00000000 00:00 0 \n"
        ));
        assert!(has_heap_arena(
            "55d0-55e0 r-xp 0 08:01 1 /srv/app\n1c000000000-1c000400000 rw-p 0 00:00 0\n"
        ));
        assert!(!has_heap_arena(
            "55d0c0000000-55d0c0001000 r-xp 0 08:01 1 /usr/bin/sleep\n"
        ));
        assert!(!has_heap_arena("garbage\n-\n"));
    }

    #[test]
    fn this_test_binary_is_not_go() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(
            read_buildinfo(&me, MAX_BUILDINFO).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    const DUMP: &str = "goroutine 1 [IO wait]:\n\
internal/poll.runtime_pollWait(0x7f, 0x72)\n\t/usr/lib/go-1.19/src/runtime/netpoll.go:305 +0x89\n\
net/http.(*Server).Serve(0xc0000f2000, {0x6f, 0xc0000a0000})\n\t/usr/lib/go-1.19/src/net/http/server.go:3059 +0x385\n\
main.main()\n\t/tmp/x/main.go:40 +0x1d\n\n\
goroutine 18 [semacquire, 3 minutes]:\n\
sync.runtime_SemacquireMutex(0xc000012345?, 0x0?, 0x0?)\n\t/usr/lib/go-1.19/src/runtime/sema.go:77 +0x25\n\
sync.(*Mutex).lockSlow(0xc00001c0b8)\n\t/usr/lib/go-1.19/src/sync/mutex.go:171 +0x165\n\
sync.(*Mutex).Lock(...)\n\t/usr/lib/go-1.19/src/sync/mutex.go:90\n\
main.transfer(0xc00001c0b0, 0xc00001c0b8)\n\t/tmp/x/main.go:17 +0x6a\n\
created by main.main\n\t/tmp/x/main.go:30 +0x8f\n\n\
goroutine 19 [sync.Mutex.Lock]:\n\
sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n\t/usr/lib/go-1.21/src/runtime/sema.go:77 +0x25\n\
main.transfer(0xc00001c0b8, 0xc00001c0b0)\n\t/tmp/x/main.go:17 +0x6a\n";

    #[test]
    fn goroutines_waiting_for_a_mutex() {
        let gs = parse_goroutines(DUMP);
        assert_eq!(gs.len(), 3);
        assert_eq!(gs[0].lock, None);
        assert_eq!(gs[0].state, "IO wait");
        assert_eq!(gs[1].id, 18);
        assert_eq!(gs[1].minutes, Some(3));
        assert_eq!(gs[1].lock.as_deref(), Some("sync.(*Mutex).Lock"));
        assert_eq!(gs[1].frames, ["main.transfer (/tmp/x/main.go:17)"]);
        assert_eq!(gs[2].state, "sync.Mutex.Lock");
        assert!(gs[2].lock.is_some());
        assert_eq!(
            gs[0].frames[0],
            "net/http.(*Server).Serve (/usr/lib/go-1.19/src/net/http/server.go:3059)"
        );
    }
}
