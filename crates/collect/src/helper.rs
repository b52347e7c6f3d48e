//! The isolated helper's main (`hangscope __read MODE MAX ...`): the reads that could block
//! (`isolate`'s files, the runtimes' attach sockets and executables) run in a child process,
//! which this dispatches to. Above both, so that neither needs the other.

use std::ffi::OsString;
use std::io::{self, Write};

/// Serves one read and returns the exit code: 2 for an unknown mode or arguments, 1 when the
/// answer could not be written.
pub fn serve(args: &[OsString]) -> i32 {
    let Some(mode) = args.first().and_then(|a| a.to_str()) else {
        return 2;
    };
    let rest = &args[1..];
    let mut out = io::stdout().lock();
    let written = match crate::isolate::serve(mode, rest, &mut out) {
        Some(r) => r,
        None => match crate::runtime::serve(mode, rest, &mut out) {
            Some(r) => r,
            None => return 2,
        },
    };
    if written.and_then(|_| out.flush()).is_err() {
        return 1;
    }
    0
}
