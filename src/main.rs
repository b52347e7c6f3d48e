//! hangscope: collect → snapshot → diagnose → render. This file is only the orchestration.

mod cli;
mod common;
mod demo;
mod follow;
mod peer;
mod redact;
mod replay;
mod scan;
mod scenario;
mod terminal;
mod watch;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use hangscope_collect::{CollectError, Deadline, ProcRoot, resolve};
use hangscope_model::{Document, Severity};
use hangscope_render::{TextOptions, json::write_json, render_text};

use cli::{Cli, CollectArgs, Command, OutputArgs, exit};

fn main() {
    // The helper that opens and reads a target's file for a run (see collect's `isolate`):
    // before the command line is parsed, so it starts fast and needs no flags.
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == hangscope_collect::isolate::SUBCOMMAND)
    {
        std::process::exit(hangscope_collect::helper::serve(&args.collect::<Vec<_>>()));
    }
    std::process::exit(run());
}

fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Scenario { name, args }) => scenario::run(&name, &args),
        Some(Command::Generate { what }) => generate(&what),
        Some(Command::Scan(args)) => scan::run(&args),
        Some(Command::Watch(args)) => watch::run(&args),
        Some(Command::Demo { output, collect }) => demo::run(&output, &collect),
        Some(Command::Inspect {
            target,
            output,
            collect,
        }) => inspect_arg(&target, &output, &collect),
        Some(Command::Peer {
            local,
            remote,
            output,
            collect,
        }) => peer::run(local, remote, &output, &collect),
        Some(Command::Replay {
            file,
            max_size,
            output,
        }) => replay::run(&file, max_size, &output),
        None => match (cli.target, cli.name) {
            (Some(target), _) => inspect_arg(&target, &cli.output, &cli.collect),
            (None, Some(name)) => inspect_name(&name, &cli.output, &cli.collect),
            (None, None) => {
                eprintln!("hangscope: give a PID, thread id or process name; see --help");
                exit::USAGE
            }
        },
    }
}

/// `hangscope __generate bash|zsh|fish|elvish|powershell|man`: from the clap definition, so
/// they cannot drift from the flags.
fn generate(what: &str) -> i32 {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let written = if what == "man" {
        clap_mangen::Man::new(cmd).render(&mut out)
    } else {
        match what.parse::<clap_complete::Shell>() {
            Ok(shell) => {
                // Into memory first: clap_complete panics on a write error (`| head`).
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut cmd, "hangscope", &mut script);
                out.write_all(&script)
            }
            Err(_) => {
                eprintln!("hangscope: {what:?}: give bash, zsh, fish, elvish, powershell or man");
                return exit::USAGE;
            }
        }
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            say(&format!("cannot write: {e}"));
            exit::FAILURE
        }
    }
}

/// A positional target: numeric means PID or TID, anything else is a name.
fn inspect_arg(target: &str, output: &OutputArgs, collect: &CollectArgs) -> i32 {
    match target.parse::<i32>() {
        Ok(id) if id > 0 => match resolve::by_id(&ProcRoot::default(), id) {
            Ok(r) => inspect(r, output, collect),
            Err(e) => {
                say(&e);
                exit::NOTHING_READABLE
            }
        },
        Ok(_) => {
            eprintln!("hangscope: {target} is not a valid PID");
            exit::USAGE
        }
        Err(_) => inspect_name(target, output, collect),
    }
}

fn inspect_name(name: &str, output: &OutputArgs, collect: &CollectArgs) -> i32 {
    match resolve::by_name(&ProcRoot::default(), name) {
        Ok(r) => inspect(r, output, collect),
        Err(e @ resolve::ResolveError::Ambiguous { .. }) => {
            say(&e);
            exit::USAGE
        }
        Err(e) => {
            say(&e);
            exit::NOTHING_READABLE
        }
    }
}

pub(crate) fn inspect(
    target: resolve::Resolved,
    output: &OutputArgs,
    collect: &CollectArgs,
) -> i32 {
    match document_of(target, collect, None) {
        Ok(doc) => {
            let code = emit(&doc, output, None);
            // The process exits next: freeing a 20,000-fd document piece by piece only costs
            // time.
            std::mem::forget(doc);
            code
        }
        Err(code) => code,
    }
}

/// Collects and diagnoses the target, follows its chain (to other hosts with `--follow`), all
/// within the deadline; the error is the exit code, its reason already said.
pub(crate) fn document_of(
    target: resolve::Resolved,
    collect: &CollectArgs,
    served: Option<hangscope_model::Served>,
) -> Result<Document, i32> {
    // The window is part of the run, so it must leave time for the reading around it. Only a
    // --deadline given gets here too short: the default one grows with the window.
    let deadline = collect.deadline();
    if !collect.window.is_zero() && collect.window + Duration::from_millis(500) > deadline {
        // The flags' own syntax, so the operator can type the values back.
        eprintln!(
            "hangscope: --window {:.1}s does not fit in --deadline {:.1}s; raise --deadline \
             (e.g. --deadline {:.0}s) or shorten --window",
            collect.window.as_secs_f64(),
            deadline.as_secs_f64(),
            (collect.window.as_secs_f64() + 3.0).ceil()
        );
        return Err(exit::USAGE);
    }
    let opts = hangscope_collect::Options {
        deadline: Deadline::after(deadline),
        all_fdinfo: collect.all_fdinfo,
        window: collect.window,
        focus_tid: target.focus_tid,
        progress: true,
        log_paths: collect.log.clone(),
        // This very binary, whatever its path or whether it was replaced since it started.
        reader: Some("/proc/self/exe".into()),
        runtime_tools: hangscope_collect::runtime::Tools {
            enabled: !collect.no_runtime_tools,
            jvm_signal: collect.jvm_attach,
        },
        app_introspection: !collect.no_app_introspection,
        stacks: match collect.stacks.as_str() {
            "off" => hangscope_collect::stacks::StackMode::Off,
            "stop" => hangscope_collect::stacks::StackMode::Stop,
            _ => hangscope_collect::stacks::StackMode::Copy,
        },
    };
    let watchdog = start_watchdog(deadline);
    let collected = hangscope_collect::collect(&ProcRoot::default(), target.pid, &opts);
    let snap = match collected {
        Ok(s) => s,
        Err(e) => {
            say(&e);
            return Err(match e {
                CollectError::Other(_) => exit::FAILURE,
                _ => exit::NOTHING_READABLE,
            });
        }
    };
    let findings = hangscope_diagnose::diagnose(&snap);
    let chain = (!collect.no_chain).then(|| follow(&snap, &findings, &opts));
    let mut doc = Document::new(generator(), snap, findings);
    doc.served = served;
    if let Some((chain, others)) = chain {
        doc.set_chain(chain, others);
        if collect.follow.follow {
            follow::follow(&mut doc, &opts.deadline, &collect.follow);
        }
    }
    // Collection is what the deadline bounds; the report is written in full however slowly
    // it is read (`hangscope PID | less`).
    drop(watchdog);
    Ok(doc)
}

/// Follows the target's wait to the processes it waits on, each read in one look within what
/// is left of the run's deadline.
pub(crate) fn follow(
    snap: &hangscope_model::Snapshot,
    findings: &[hangscope_model::Finding],
    opts: &hangscope_collect::Options,
) -> (hangscope_model::Chain, Vec<hangscope_model::Snapshot>) {
    use hangscope_diagnose::chain::{Look, walk};
    // A look at a process takes tens of milliseconds, more with many fds.
    const LOOK_TIME: Duration = Duration::from_millis(150);
    // Two looks: what moved between them, and how long a thread has been in its wait, are
    // what most rules need; a single look tells neither.
    // Without them a process would look idle for want of time, so a hop that does not fit
    // before the deadline is not read at all.
    const HOP_WINDOW: Duration = Duration::from_millis(200);
    let root = ProcRoot::default();
    walk(snap, findings, &mut |pid| {
        if opts.deadline.remaining() < HOP_WINDOW + LOOK_TIME * 2 {
            return Look::Deadline;
        }
        let hop_opts = hangscope_collect::Options {
            window: HOP_WINDOW,
            focus_tid: None,
            progress: false,
            log_paths: Vec::new(),
            // The target's stacks say where its code waits; a hop is looked at briefly, and
            // its stacks would take the time the rest of the chain needs.
            stacks: hangscope_collect::stacks::StackMode::Off,
            ..opts.clone()
        };
        match hangscope_collect::collect(&root, pid, &hop_opts) {
            Ok(s) => Look::Read(Box::new(s)),
            Err(e) => Look::NotSeen(e.to_string()),
        }
    })
}

/// The last line of defence for "every run has a deadline": readers check the deadline between
/// reads, but a read the kernel blocks cannot be cancelled from inside. If collection is not
/// done a grace period after the deadline, say so and exit rather than hang. Dropping the
/// returned sender disarms it. The exit can complete: the reads that can block for good (a
/// target's files) run in helper processes that are abandoned, not in this process's threads.
pub(crate) fn start_watchdog(deadline: Duration) -> std::sync::mpsc::Sender<()> {
    const GRACE: Duration = Duration::from_secs(3);
    let limit = deadline + GRACE;
    let (disarm, disarmed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if disarmed.recv_timeout(limit) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        eprintln!(
            "hangscope: collection still not done {} after the {} deadline, while reading {}: a \
             read is blocked in the kernel; giving up without a report",
            hangscope_model::units::duration(GRACE),
            hangscope_model::units::duration(deadline),
            hangscope_collect::stage::current(),
        );
        std::process::exit(exit::FAILURE);
    });
    disarm
}

/// A message on stderr. Errors name processes, files and paths (a candidate's command line, a
/// `--log` path, a file in a snapshot): escaped by the text rule, so a name cannot reach the
/// terminal raw; the lines the message itself has are kept.
pub(crate) fn say(msg: &dyn std::fmt::Display) {
    eprintln!(
        "hangscope: {}",
        hangscope_model::text::escape_keep_lines(&msg.to_string())
    );
}

/// `--save FILE`: the JSON document, compressed with zstd when FILE ends in `.zst`
/// (a 6,000-fd snapshot is 6 MB of JSON and a few hundred KB compressed).
fn save(doc: &Document, path: &Path, pretty: bool) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    if path.extension().is_some_and(|e| e == "zst") {
        let mut enc = zstd::stream::write::Encoder::new(file, 3)?;
        write_json(doc, &mut enc, pretty)?;
        enc.finish()?.sync_all()
    } else {
        write_json(doc, file, pretty)
    }
}

pub(crate) fn generator() -> String {
    format!("hangscope {}", env!("CARGO_PKG_VERSION"))
}

/// Writes the outputs the flags ask for, and turns the findings into the exit code.
///
/// A file that cannot be written costs only that file: the report is still printed, with a
/// warning on stderr, and the exit code stays the diagnosis's (the report is what the operator
/// needs on a bad day; a typo in `--save` must not take it away).
pub(crate) fn emit(doc: &Document, output: &OutputArgs, replayed_from: Option<&Path>) -> i32 {
    // What leaves the machine is redacted; the operator's own screen is not.
    let redacted = if output.redact {
        match redact::redact(doc) {
            Ok(r) => Some(r),
            Err(e) => {
                say(&format!(
                    "cannot redact the document: {e}; nothing is saved"
                ));
                return exit::FAILURE;
            }
        }
    } else {
        None
    };
    let shared = redacted.as_ref().unwrap_or(doc);
    if let Some(path) = &output.save {
        if let Err(e) = save(shared, path, output.pretty) {
            say(&format!(
                "warning: cannot save to {}: {e}; the report is printed anyway",
                path.display()
            ));
        }
    }
    if let Some(path) = &output.html {
        if let Err(e) = std::fs::write(path, hangscope_render::html::render_html(shared)) {
            say(&format!(
                "warning: cannot write {}: {e}; the report is printed anyway",
                path.display()
            ));
        }
    }
    let written = if output.json {
        write_json(shared, std::io::stdout().lock(), output.pretty)
    } else {
        let text = render_text(
            doc,
            &TextOptions {
                color: terminal::color(output.no_color),
                verbose: output.verbose,
                width: terminal::width(),
                local_time: terminal::local_time(doc.snapshot.taken_at_ms),
                replayed_from: replayed_from.map(|p| p.display().to_string()),
            },
        );
        terminal::print(&text, output.no_pager)
    };
    match written {
        Ok(()) => {}
        // `hangscope PID | head` is a normal way to read a long report.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            say(&format!("cannot write the report: {e}"));
            return exit::FAILURE;
        }
    }
    if doc.findings.iter().any(|f| f.severity == Severity::Cause) {
        exit::CAUSE_FOUND
    } else if doc.verdict.not_seen {
        // Printed, but not a clean bill of health: what was needed could not be read.
        exit::NOTHING_READABLE
    } else {
        exit::OK
    }
}
