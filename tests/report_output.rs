//! Where the report goes (issue 18): on a terminal it is wrapped to the terminal's width and
//! paged through $PAGER when longer than the screen, a pager that fails loses nothing, output
//! that is not a terminal is never paged and keeps the fixed width; colour follows NO_COLOR
//! and CLICOLOR_FORCE; snapshots saved as .zst, redacted, or as the HTML page replay.
//!
//! The terminal is a real pseudo-terminal of the size the test sets; the report is a recorded
//! snapshot of the demo's real client, replayed.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshots/recorded/demo-demo_explains_the_seed_and_cleans_up.json"
);

/// What hangscope wrote to a terminal of `cols` × `rows`, and its exit code.
fn on_terminal(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> (String, i32) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: both out-pointers are live locals; no name buffer is asked for.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two fds owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = Command::new(HANGSCOPE);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("LESS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // The command holds the only slave end now: the master reads EOF (EIO) once it exits.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hangscope on a terminal did not end in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap();
    // The terminal turns each \n into \r\n.
    (String::from_utf8_lossy(&out).replace("\r\n", "\n"), code)
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The lines of the report's prose (VERDICT, NEXT and their continuations), which are wrapped;
/// tables and command lines are not.
fn prose(text: &str) -> String {
    let text = strip_colour(text);
    let mut keep = false;
    let mut out = String::new();
    for l in text.lines() {
        if l.starts_with("VERDICT") || l.starts_with("NEXT") {
            keep = true;
        } else if !l.starts_with("         ") {
            keep = false;
        }
        if keep {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The text without hangscope's SGR sequences.
fn strip_colour(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = rest.find('m').map_or("", |m| &rest[m + 1..]);
    }
    out.push_str(rest);
    out
}

#[test]
fn on_a_terminal_the_report_fits_its_width_and_is_paged_verdict_first() {
    let dir = TempDir::new("pager");
    let paged = format!("{}/paged", dir.path());
    let pager = format!("cat > '{paged}'");
    let (screen, code) = on_terminal(&["replay", DEMO], &[("PAGER", &pager)], 60, 24);
    assert_eq!(code, 1, "a cause: {screen}");
    let text = std::fs::read_to_string(&paged).expect("the pager got the report");
    assert!(!screen.contains("VERDICT"), "printed besides: {screen}");
    let verdict = prose(&text);
    assert!(verdict.contains("NEXT"), "{text}");
    assert!(widest(&verdict) <= 60, "wrapped to 60:\n{verdict}");
    // The verdict and next step are on the first screen.
    let plain = strip_colour(&text);
    let first: Vec<&str> = plain.lines().take(24).collect();
    assert!(
        first.iter().any(|l| l.starts_with("VERDICT"))
            && first.iter().any(|l| l.starts_with("NEXT")),
        "{text}"
    );
    // On a wide terminal the lines use the width.
    let (_, _) = on_terminal(&["replay", DEMO], &[("PAGER", &pager)], 160, 24);
    let wide = prose(&std::fs::read_to_string(&paged).unwrap());
    assert!(widest(&wide) > 88, "wrapped to 160:\n{wide}");
    assert!(widest(&wide) <= 160, "{wide}");
    // Colour on a terminal, passed to the pager as it is (less -R).
    assert!(text.contains("\x1b[1;31mVERDICT"), "{text}");
}

#[test]
fn a_pager_that_fails_loses_nothing_and_no_pager_prints_straight() {
    let (screen, code) = on_terminal(&["replay", DEMO], &[("PAGER", "false")], 80, 24);
    assert_eq!(code, 1);
    assert!(
        screen.contains("VERDICT") && screen.contains("NOT READ"),
        "{screen}"
    );
    let (screen, _) = on_terminal(
        &["replay", DEMO],
        &[("PAGER", "/nonexistent/pager")],
        80,
        24,
    );
    assert!(
        screen.contains("VERDICT") && screen.contains("FINDINGS"),
        "{screen}"
    );
    let dir = TempDir::new("nopager");
    let touched = format!("{}/touched", dir.path());
    let (screen, _) = on_terminal(
        &["replay", DEMO, "--no-pager"],
        &[("PAGER", &format!("touch '{touched}'; cat"))],
        80,
        24,
    );
    assert!(screen.contains("VERDICT"), "{screen}");
    assert!(!std::path::Path::new(&touched).exists(), "--no-pager paged");
    // A report that fits the screen is not paged.
    let (screen, _) = on_terminal(
        &["replay", DEMO],
        &[("PAGER", &format!("touch '{touched}'; cat"))],
        80,
        1000,
    );
    assert!(screen.contains("VERDICT"), "{screen}");
    assert!(!std::path::Path::new(&touched).exists(), "paged what fits");
}

#[test]
fn not_a_terminal_is_never_paged_and_keeps_the_fixed_width() {
    let dir = TempDir::new("pipe");
    let touched = format!("{}/touched", dir.path());
    let out = Command::new(HANGSCOPE)
        .args(["replay", DEMO])
        .env("PAGER", format!("touch '{touched}'; cat"))
        .env("COLUMNS", "40")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !std::path::Path::new(&touched).exists(),
        "paged into a pipe"
    );
    let verdict = prose(&text);
    assert!(
        widest(&verdict) > 80 && widest(&verdict) <= 88,
        "88 columns:\n{verdict}"
    );
    assert!(!text.contains('\x1b'), "no colour into a pipe");
}

#[test]
fn colour_follows_no_color_and_clicolor_force() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(HANGSCOPE);
        cmd.args(["replay", DEMO])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    assert!(run(&[("CLICOLOR_FORCE", "1")]).contains("\x1b[1;31mVERDICT"));
    assert!(!run(&[("CLICOLOR_FORCE", "0")]).contains('\x1b'));
    assert!(!run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
    // On a terminal: NO_COLOR set and non-empty turns it off, set but empty does not.
    let (screen, _) = on_terminal(
        &["replay", DEMO, "--no-pager"],
        &[("NO_COLOR", "1")],
        80,
        24,
    );
    assert!(
        screen.contains("VERDICT") && !screen.contains('\x1b'),
        "{screen}"
    );
    let (screen, _) = on_terminal(&["replay", DEMO, "--no-pager"], &[("NO_COLOR", "")], 80, 24);
    assert!(screen.contains("\x1b[1;31mVERDICT"), "{screen}");
}

/// The header says when and where the snapshot was taken and, replayed, from which file.
#[test]
fn the_header_says_when_where_and_from_which_file() {
    let out = Command::new(HANGSCOPE)
        .args(["replay", DEMO])
        .env("TZ", "JST-9")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let head: Vec<&str> = text.lines().take(4).collect();
    let line = head
        .iter()
        .find(|l| l.starts_with("replayed from "))
        .unwrap_or_else(|| panic!("{text}"));
    // Recorded at 10:07:13 UTC, 19:07:13 in Tokyo.
    assert!(line.contains(DEMO), "{line}");
    assert!(
        line.contains("captured 2026-12-01 10:07:13 UTC (19:07:13 JST) by hangscope "),
        "{line}"
    );
    assert!(head.iter().any(|l| l.contains("host vm (6.18")), "{text}");
}

#[test]
fn saved_as_zst_redacted_or_as_the_page_it_replays() {
    let dir = TempDir::new("save-formats");
    let plain = format!("{}/s.json", dir.path());
    let zst = format!("{}/s.json.zst", dir.path());
    let red = format!("{}/r.json.zst", dir.path());
    let page = format!("{}/s.html", dir.path());
    let out = hangscope(&["replay", DEMO, "--save", &plain, "--html", &page]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        hangscope(&["replay", DEMO, "--save", &zst]).status.code(),
        Some(1)
    );
    let z = std::fs::read(&zst).unwrap();
    assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    assert!(
        z.len() * 3 < std::fs::metadata(&plain).unwrap().len() as usize,
        "compressed: {} bytes",
        z.len()
    );
    // The same report from each, but for the file it names.
    let same = |file: &str| {
        let out = hangscope(&["replay", file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        String::from_utf8(out.stdout).unwrap().replace(file, DEMO)
    };
    assert_eq!(same(&plain), report);
    assert_eq!(same(&zst), report);
    assert_eq!(same(&page), report);

    // Redacted: the addresses, host name, paths and log text of the real run are gone from
    // the file, and it still replays to the same verdict.
    let out = hangscope(&["replay", DEMO, "--save", &red, "--redact"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        report,
        "the screen is not redacted"
    );
    let json = String::from_utf8(zstd_decode(&red)).unwrap();
    let original = std::fs::read_to_string(DEMO).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    let log_path = doc["snapshot"]["logs"][0]["path"].as_str().unwrap();
    let message = doc["snapshot"]["logs"][0]["entries"][0]["message"]
        .as_str()
        .unwrap();
    for secret in [log_path, message, "\"vm\"", "/work/wt/fixtures"] {
        assert!(original.contains(secret), "{secret} is in the recording");
        assert!(!json.contains(secret), "{secret} left in: {json}");
    }
    assert!(json.contains("/path-1") && json.contains("host-1") && json.contains("log-1"));
    let replayed = hangscope(&["replay", &red]);
    assert_eq!(replayed.status.code(), Some(1));
    let text = String::from_utf8(replayed.stdout).unwrap();
    assert!(
        text.contains("VERDICT  Thread 5498 (dump_meta) has waited"),
        "{text}"
    );
}

fn zstd_decode(path: &str) -> Vec<u8> {
    zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap()
}

/// Completions and the man page come from the command line's definition: they name its flags.
#[test]
fn completions_and_man_page_are_generated_from_the_cli() {
    for (what, expect) in [
        ("bash", "complete -F _hangscope"),
        ("zsh", "#compdef hangscope"),
        ("fish", "complete -c hangscope"),
        ("man", ".TH hangscope 1"),
    ] {
        let out = hangscope(&["__generate", what]);
        assert_eq!(out.status.code(), Some(0), "{what}");
        // roff writes a hyphen as \-.
        let text = String::from_utf8(out.stdout).unwrap().replace("\\-", "-");
        assert!(text.contains(expect), "{what}: {text}");
        for flag in ["no-pager", "redact", "deadline"] {
            assert!(text.contains(flag), "{what} lacks --{flag}");
        }
    }
    assert_eq!(hangscope(&["__generate", "tcsh"]).status.code(), Some(2));
}

/// The page of a real run, loaded in headless Chromium: the DOM has the verdict, and a
/// timeline with one track per thread the document has looks for; a screenshot is saved in
/// the test's directory. Skipped when Chromium is not installed (Debian package `chromium`).
#[test]
fn the_page_of_a_real_run_renders_in_chromium_with_a_track_per_thread() {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        eprintln!("skipped: no chromium (Debian package chromium)");
        return;
    };
    let dir = TempDir::new("page");
    let page = format!("{}/page.html", dir.path());
    // The demo's client: real processes, stuck on a silent peer, watched for a second.
    let out = hangscope(&["demo", "--window", "1s", "--json", "--html", &page]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tracked: Vec<i64> = doc["snapshot"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["activity"]["looks"]
                .as_array()
                .is_some_and(|l| l.len() >= 2)
        })
        .filter_map(|t| t["tid"].as_i64())
        .collect();
    assert!(
        tracked.len() >= 3,
        "the client's threads have looks: {tracked:?}"
    );
    let stuck = doc["findings"][0]["subject"]["tid"].as_i64().unwrap();

    let run = |extra: &[&str]| {
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}/profile", dir.path()))
        .args(extra)
        .arg(format!("file://{page}"))
        .stdin(Stdio::null())
        .stderr(Stdio::null());
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish in 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reader.join().unwrap()
    };
    let dom = run(&["--dump-dom"]);
    let verdict = doc["verdict"]["summary"].as_str().unwrap();
    let first_words: String = verdict.chars().take(40).collect();
    assert!(dom.contains("id=\"verdict\""), "{dom}");
    assert!(
        dom.contains(&first_words),
        "the verdict in the DOM: {first_words}"
    );
    let threads_svg = dom
        .split("data-kind=\"threads\"")
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .unwrap_or_else(|| panic!("no thread timeline: {dom}"));
    for tid in &tracked {
        assert_eq!(
            threads_svg.matches(&format!("data-tid=\"{tid}\"")).count(),
            1,
            "one track for thread {tid}"
        );
    }
    assert_eq!(
        threads_svg.matches("<g class=\"track").count(),
        tracked.len()
    );
    assert!(
        threads_svg.contains(&format!("class=\"track stuck\" data-tid=\"{stuck}\"")),
        "the stuck thread is highlighted"
    );
    // A track per connection when each look dumped them (not when the first dump was too
    // slow, as on a loaded machine, and only the first and last were taken).
    let sampled = doc["snapshot"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["detail"]["window"]["samples"]
                .as_array()
                .is_some_and(|l| l.len() >= 2)
        })
        .count();
    let conns_svg = dom
        .split("data-kind=\"connections\"")
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .unwrap_or_default();
    assert_eq!(
        conns_svg.matches("<g class=\"track").count(),
        sampled,
        "a track per sampled connection"
    );
    // The script ran: the download link points at the embedded document.
    assert!(dom.contains("href=\"blob:"), "download link: {dom}");

    let shot = format!("{}/page.png", dir.path());
    run(&[&format!("--screenshot={shot}")]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
