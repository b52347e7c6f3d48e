//! CPython: recognised by libpython in its mappings, or an executable named like the
//! interpreter (Debian's python3.11 links libpython statically); asked with `py-spy dump
//! --nonblocking`, which reads the interpreter's memory without stopping it, when py-spy is
//! installed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hangscope_model::{
    Runtime, RuntimeKind, RuntimeThread, RuntimeView, Text, UnavailableReason, ViewUnavailable,
};

use super::{Answer, limit, mapped, no_time, unavailable};
use crate::Options;

const MAX_OUTPUT: usize = 4 << 20;
const MAX_THREADS: usize = 64;
const MAX_FRAMES: usize = 4;

/// "python3.11" → "3.11"; "python3" → "3"; "libpython3.11.so.1.0" → "3.11".
fn version_of_name(name: &str) -> Option<String> {
    let rest = name
        .strip_prefix("libpython")
        .or_else(|| name.strip_prefix("python"))?;
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    let ok = v.starts_with(|c: char| c.is_ascii_digit())
        && (rest.len() == v.len()
            || rest[v.len()..].starts_with(".so")
            || rest[v.len()..].starts_with('d')
            || rest[v.len()..].starts_with('m'));
    ok.then(|| v.to_string())
}

pub(crate) fn recognise(pid: i32, maps: &str, exe: Option<&Path>) -> Option<Runtime> {
    let by_lib = mapped(maps, |n| n.starts_with("libpython") && n.contains(".so"));
    let (version, by) = match by_lib {
        Some(path) => (
            path.rsplit('/').next().and_then(version_of_name),
            format!("/proc/{pid}/maps: {path}"),
        ),
        None => {
            let exe = exe?;
            let name = exe.file_name()?.to_str()?;
            let v = version_of_name(name)?;
            (Some(v), format!("/proc/{pid}/exe: {}", exe.display()))
        }
    };
    Some(Runtime {
        kind: RuntimeKind::Cpython,
        version: version.map(Text::from),
        recognised_by: Text::from(by),
        ..Runtime::default()
    })
}

/// py-spy on PATH.
fn py_spy() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("py-spy"))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Asks py-spy; the interpreter frames of each thread it names go to `threads[..].runtime`.
pub(crate) fn ask(
    pid: i32,
    opts: &Options,
    threads: &mut [hangscope_model::Thread],
) -> Result<Answer, ViewUnavailable> {
    let Some(bin) = py_spy() else {
        return Err(unavailable(
            UnavailableReason::ToolAbsent,
            "py-spy is not installed (pip install py-spy), so the interpreter's threads and \
             locks were not read",
        ));
    };
    let Some(limit) = limit(opts) else {
        return Err(no_time());
    };
    let started = Instant::now();
    // JSON (py-spy 0.3.4+) names each thread by its native tid; the text names it by its
    // pthread_t, which matches no thread here.
    let json = run(&bin, pid, limit, true);
    let json = match json {
        Ok(out) => parse_json(&out),
        Err(Ran::Failed(e)) if e.contains("--json") || e.contains("unexpected argument") => None,
        Err(e) => {
            return Err(ran_error(
                e,
                &format!("py-spy dump --nonblocking --json --pid {pid}"),
                limit,
            ));
        }
    };
    if let Some((mut view, frames)) = json {
        for t in threads.iter_mut() {
            if let Some((_, f)) = frames.iter().find(|(tid, _)| *tid == t.tid) {
                t.runtime.get_or_insert_with(Default::default).frames = f.clone();
            }
        }
        view.command = format!("py-spy dump --nonblocking --json --pid {pid}");
        view.tool = Text::from(view.command.as_str());
        view.took_ms = started.elapsed().as_millis() as u64;
        return Ok(Answer {
            view,
            version_from_dump: None,
        });
    }
    let tool = format!("py-spy dump --nonblocking --pid {pid}");
    let left = limit.saturating_sub(started.elapsed());
    let out = run(&bin, pid, left, false).map_err(|e| ran_error(e, &tool, left))?;
    let mut view = parse_dump(&out);
    view.command = tool.clone();
    view.tool = Text::from(tool);
    view.took_ms = started.elapsed().as_millis() as u64;
    Ok(Answer {
        view,
        version_from_dump: None,
    })
}

fn ran_error(e: Ran, tool: &str, limit: Duration) -> ViewUnavailable {
    match e {
        Ran::TimedOut => unavailable(
            UnavailableReason::TimedOut,
            format!(
                "{tool}: no answer within {}",
                hangscope_model::units::duration(limit)
            ),
        ),
        Ran::Failed(e) => unavailable(UnavailableReason::Failed, format!("{tool}: {e}")),
    }
}

/// The interpreter's frame as the text dump shows it: "acquire (threading.py:320)".
#[derive(serde::Deserialize)]
struct JsonFrame {
    #[serde(default)]
    name: String,
    #[serde(default)]
    short_filename: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    line: Option<i64>,
}

#[derive(serde::Deserialize)]
struct JsonThread {
    #[serde(default)]
    thread_name: Option<String>,
    #[serde(default)]
    os_thread_id: Option<i64>,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    owns_gil: bool,
    #[serde(default)]
    frames: Vec<JsonFrame>,
}

/// Each thread's interpreter frames, by native tid.
pub type ThreadFrames = Vec<(i32, Vec<Text>)>;

/// Per-thread frames kept for the THREADS lines.
const MAX_THREAD_FRAMES: usize = 16;

/// `py-spy dump --json`: the view (the threads waiting for a lock, as from the text), and each
/// thread's frames by native tid. `None` when it is not that JSON.
pub fn parse_json(text: &str) -> Option<(RuntimeView, ThreadFrames)> {
    let threads: Vec<JsonThread> = serde_json::from_str(text).ok()?;
    let mut view = RuntimeView::default();
    let mut frames_of = Vec::new();
    let mut all = Vec::new();
    for t in threads.into_iter().take(4096) {
        let frames: Vec<String> = t
            .frames
            .iter()
            .take(MAX_THREAD_FRAMES)
            .map(|f| {
                let file = f
                    .short_filename
                    .as_deref()
                    .or(f.filename.as_deref())
                    .unwrap_or("?");
                match f.line {
                    Some(l) => format!("{} ({file}:{l})", f.name),
                    None => format!("{} ({file})", f.name),
                }
            })
            .collect();
        let tid = t.os_thread_id.and_then(|i| i32::try_from(i).ok());
        let state = match (t.active, t.owns_gil) {
            (true, true) => "active+gil",
            (true, false) => "active",
            (false, true) => "idle+gil",
            (false, false) => "idle",
        };
        let waiting_for = frames
            .first()
            .filter(|f| {
                f.starts_with("acquire ") || f.starts_with("lock ") || f.starts_with("wait ")
            })
            .map(|f| Text::from(f.as_str()));
        if let Some(tid) = tid {
            frames_of.push((tid, frames.iter().map(|f| Text::from(f.as_str())).collect()));
        }
        all.push(RuntimeThread {
            name: Text::from(t.thread_name.unwrap_or_default()),
            tid,
            state: Text::from(state),
            waiting_for,
            frames: frames
                .iter()
                .take(MAX_FRAMES)
                .map(|f| Text::from(f.as_str()))
                .collect(),
            ..RuntimeThread::default()
        });
    }
    keep_waiting(&mut view, all);
    Some((view, frames_of))
}

/// The view keeps the count of every thread the dump listed, and the threads waiting for a
/// lock among them (the text and the JSON dump alike).
fn keep_waiting(view: &mut RuntimeView, all: Vec<RuntimeThread>) {
    view.threads_total = all.len() as u32;
    view.threads = all
        .into_iter()
        .filter(|t| t.waiting_for.is_some())
        .take(MAX_THREADS)
        .collect();
}

enum Ran {
    TimedOut,
    Failed(String),
}

/// Runs py-spy and reads its output within `limit`; killed, by its PID, when late.
fn run(bin: &Path, pid: i32, limit: Duration, json: bool) -> Result<String, Ran> {
    let mut cmd = Command::new(bin);
    cmd.args(["dump", "--nonblocking"]);
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .args(["--pid", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Ran::Failed(e.to_string()))?;
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = Vec::new();
                if let Some(o) = child.stdout.take() {
                    let _ = o.take(MAX_OUTPUT as u64).read_to_end(&mut out);
                }
                if !status.success() {
                    let mut err = Vec::new();
                    if let Some(e) = child.stderr.take() {
                        let _ = e.take(4096).read_to_end(&mut err);
                    }
                    return Err(Ran::Failed(format!(
                        "{status}: {}",
                        hangscope_model::text::escape_cut(
                            String::from_utf8_lossy(&err).trim(),
                            300
                        )
                    )));
                }
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.try_wait();
                return Err(Ran::TimedOut);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Ran::Failed(e.to_string())),
        }
    }
}

/// py-spy's dump: "Thread 0x7F.. (idle): \"MainThread\"" (or "Thread 1234 (active+gil)") then
/// frames "    acquire (threading.py:320)".
pub fn parse_dump(text: &str) -> RuntimeView {
    let mut view = RuntimeView::default();
    let mut all: Vec<RuntimeThread> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Thread ") {
            let (id, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let tid = match id.strip_prefix("0x") {
                Some(_) => None,
                None => id.parse().ok(),
            };
            let state = rest
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .map(|(s, _)| s)
                .unwrap_or("");
            let name = rest
                .split_once('"')
                .map(|(_, n)| n.trim_end_matches('"'))
                .unwrap_or("");
            all.push(RuntimeThread {
                name: Text::from(name),
                tid,
                state: Text::from(state),
                ..RuntimeThread::default()
            });
        } else if let Some(t) = all.last_mut() {
            let frame = line.trim();
            if frame.is_empty() {
                continue;
            }
            if t.frames.is_empty()
                && (frame.starts_with("acquire ")
                    || frame.starts_with("lock ")
                    || frame.starts_with("wait "))
            {
                t.waiting_for = Some(Text::from(frame));
            }
            if t.frames.len() < MAX_FRAMES {
                t.frames.push(Text::from(frame));
            }
        }
    }
    keep_waiting(&mut view, all);
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_libraries() {
        assert_eq!(version_of_name("python3.11").as_deref(), Some("3.11"));
        assert_eq!(version_of_name("python3").as_deref(), Some("3"));
        assert_eq!(
            version_of_name("libpython3.11.so.1.0").as_deref(),
            Some("3.11")
        );
        assert_eq!(version_of_name("pythonista"), None);
        assert_eq!(version_of_name("python-config"), None);
        let rt = recognise(7, "", Some(Path::new("/usr/bin/python3.11"))).unwrap();
        assert_eq!(rt.kind, RuntimeKind::Cpython);
        assert!(recognise(7, "", Some(Path::new("/usr/bin/perl"))).is_none());
    }

    #[test]
    fn a_py_spy_dump() {
        let v = parse_dump(
            "Process 4242: python3 deadlock.py\nPython v3.11.2 (/usr/bin/python3.11)\n\n\
Thread 4243 (idle): \"left\"\n    acquire (threading.py:1)\n    run (deadlock.py:9)\n\
Thread 4244 (active): \"worker\"\n    compute (deadlock.py:20)\n",
        );
        assert_eq!(v.threads_total, 2);
        assert_eq!(v.threads.len(), 1);
        assert_eq!(v.threads[0].name, "left");
        assert_eq!(v.threads[0].tid, Some(4243));
        assert_eq!(v.threads[0].state, "idle");
    }

    #[test]
    fn a_py_spy_json_dump() {
        let (v, frames) = parse_json(
            r#"[{"pid":1,"thread_id":140,"thread_name":"left","os_thread_id":4243,
                "active":false,"owns_gil":false,"frames":[
                {"name":"acquire","filename":"/usr/lib/python3.11/threading.py",
                 "short_filename":"threading.py","line":1},
                {"name":"run","filename":"/t/deadlock.py","short_filename":"deadlock.py","line":9}]},
               {"thread_name":"worker","os_thread_id":4244,"active":true,"owns_gil":true,
                "frames":[{"name":"compute","short_filename":"deadlock.py","line":20}]}]"#,
        )
        .expect("json");
        assert_eq!(v.threads_total, 2);
        assert_eq!(v.threads.len(), 1);
        assert_eq!(v.threads[0].tid, Some(4243));
        assert_eq!(
            v.threads[0].waiting_for.as_ref().map(|t| t.as_str()),
            Some("acquire (threading.py:1)")
        );
        assert_eq!(frames[1].0, 4244);
        assert_eq!(frames[1].1, [Text::from("compute (deadlock.py:20)")]);
        assert!(parse_json("Thread 1 (idle)").is_none());
    }
}
