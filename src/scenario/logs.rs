//! Log scenarios: a multi-threaded process writing a log the way services do, so the tests can
//! check that entries land on the TIDs that wrote them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{announce, flag, glog, tid};

/// `log-writer --dir DIR [--format glog|json|plain] [--threads N] [--rotate] [--garbage]`
///
/// Opens DIR/app.log.YYYYMMDD-HHMMSS.PID (glog's naming) for appending, starts N threads named
/// worker-1..N that each write an info line and a warning with continuation lines naming
/// 127.0.0.1:PORT, announces "log PATH", "tid worker-I TID" per thread, then "ready", and
/// waits. With --rotate, an older sibling with 150 lines is written first, so the open file is
/// young; with --garbage, garbage lines are mixed in.
pub(super) fn log_writer(args: &[String]) -> Result<(), String> {
    let dir = flag(args, "--dir").ok_or("give --dir DIR")?;
    let format = flag(args, "--format").unwrap_or("glog").to_string();
    let threads: usize = flag(args, "--threads")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rotate = args.iter().any(|a| a == "--rotate");
    let garbage = args.iter().any(|a| a == "--garbage");
    let pid = std::process::id();
    let err = |what: &str, e: std::io::Error| format!("{what}: {e}");

    if rotate {
        let old = format!("{dir}/app.log.{}.{pid}", stamp(-3600));
        let mut f = File::create(&old).map_err(|e| err("rotated", e))?;
        for i in 0..150 {
            line(&mut f, &format, 'I', &format!("old line {i}"));
        }
        line(
            &mut f,
            &format,
            'W',
            "Fail to dump meta from 127.0.0.1:1 st:\nTraceback:\n[ETimedOut]: old timeout",
        );
        announce(&format!("rotated {old}"));
    }
    let path = format!("{dir}/app.log.{}.{pid}", stamp(0));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| err("log", e))?;
    let file = Arc::new(Mutex::new(file));
    announce(&format!("log {path}"));
    if garbage {
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(b"\x01\x02 garbage before the first entry\n");
        }
    }
    {
        let mut f = file.lock().map_err(|_| "log lock poisoned")?;
        line(&mut *f, &format, 'I', "main starting");
    }

    let written = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for i in 1..=threads {
        let file = Arc::clone(&file);
        let written = Arc::clone(&written);
        let format = format.clone();
        handles.push(std::thread::spawn(move || {
            let name = format!("worker-{i}");
            if let Ok(c) = std::ffi::CString::new(name.clone()) {
                // SAFETY: PR_SET_NAME with a NUL-terminated string of at most 16 bytes.
                unsafe {
                    libc::prctl(libc::PR_SET_NAME, c.as_ptr());
                }
            }
            if let Ok(mut f) = file.lock() {
                line(&mut *f, &format, 'I', &format!("hello from {name}"));
                line(
                    &mut *f,
                    &format,
                    'W',
                    &format!(
                        "Fail to call 127.0.0.1:{} st:\nTraceback:\n[ETimedOut]: {name} waited too long",
                        10100 + i
                    ),
                );
                if garbage {
                    let _ = f.write_all(b"\x00\x07\x1b garbage\n");
                }
            }
            announce(&format!("tid {name} {}", tid()));
            written.wait();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3600) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
    }
    written.wait();
    announce("ready");
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// "20230918-075346" for now + `shift_s`, local time.
fn stamp(shift_s: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + shift_s;
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes into the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        libc::localtime_r(&t, &mut tm);
    }
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// One entry in `format`, written by the calling thread.
fn line(w: &mut dyn Write, format: &str, level: char, msg: &str) {
    match format {
        "json" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let level = match level {
                'W' => "warn",
                'E' => "error",
                _ => "info",
            };
            let obj = serde_json::json!({"ts": now, "level": level, "msg": msg, "tid": tid()});
            let _ = writeln!(w, "{obj}");
            let _ = w.flush();
        }
        "plain" => {
            let level = match level {
                'W' => "WARN",
                'E' => "ERROR",
                _ => "INFO",
            };
            let _ = writeln!(w, "{} [{}] {level} {msg}", iso_now(), tid());
            let _ = w.flush();
        }
        _ => glog(w, level, "worker.cc:42", msg),
    }
}

fn iso_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let s = stamp(0);
    format!(
        "{}-{}-{}T{}:{}:{}.{:03}",
        &s[..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15],
        now.subsec_millis()
    )
}
