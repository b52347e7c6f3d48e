//! `hangscope replay FILE`: a saved snapshot (JSON, JSON.zst, or the HTML page), diagnosed
//! again. The file is input like any
//! other, so it is bounded: only a regular file, no larger than `--max-size`, read streaming.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::Path;

use hangscope_model::Document;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use crate::cli::{OutputArgs, exit};

pub fn run(file: &Path, max_size: u64, output: &OutputArgs) -> i32 {
    let mut doc = match read(file, max_size) {
        Ok(d) => d,
        Err(e) => {
            crate::say(&format!("{}: {e}", file.display()));
            return exit::NOTHING_READABLE;
        }
    };
    // Diagnose again: rules may have improved since the file was saved. The chain too, from
    // the processes' snapshots the file carries (none is read live), across the hosts it
    // reached.
    hangscope_diagnose::hosts::rediagnose(&mut doc);
    let code = crate::emit(&doc, output, Some(file));
    // As after a live run: freeing a large document piece by piece before exit only costs time.
    std::mem::forget(doc);
    code
}

/// zstd's frame magic, as the file starts (RFC 8878).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Opens, checks and parses the snapshot: the JSON document as `--save` writes it, the same
/// compressed with zstd, or the HTML page that embeds it. The error is a sentence for the
/// operator.
fn read(path: &Path, max_size: u64) -> Result<Document, String> {
    let mut file = open_regular(path, max_size)?;
    let mut head = [0u8; 16];
    let n = file.read(&mut head).map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    let head = &head[..n];
    if head.starts_with(&ZSTD_MAGIC) {
        // The limit is on what it expands to: that is what parsing costs.
        let dec = zstd::stream::read::Decoder::new(file)
            .map_err(|e| format!("cannot read as zstd: {e}"))?;
        let json = read_bounded(dec, max_size)?;
        return Document::from_reader(std::io::Cursor::new(json)).map_err(|e| e.to_string());
    }
    if head.trim_ascii_start().starts_with(b"<") {
        let page = read_bounded(file, max_size)?;
        let json =
            hangscope_render::html::embedded_document(&String::from_utf8_lossy(&page), max_size)
                .map_err(|e| e.to_string())?;
        return Document::from_json(&json).map_err(|e| e.to_string());
    }
    // The size was checked, but a file can grow while it is read: the reader stops at the
    // limit, which the parser then sees as a truncated document.
    let mut limited = Limited {
        inner: file,
        max: max_size,
        left: max_size,
        cut: false,
    };
    match Document::from_reader(&mut limited) {
        Ok(d) => Ok(d),
        Err(_) if limited.cut => Err(too_large(max_size, None)),
        Err(e) => Err(e.to_string()),
    }
}

/// All of `r`, refused past `max_size` bytes.
fn read_bounded(r: impl Read, max_size: u64) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    r.take(max_size.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > max_size {
        return Err(too_large(max_size, None));
    }
    Ok(buf)
}

/// Opens `path` without blocking (a FIFO's open waits for a writer; O_NONBLOCK returns at
/// once) and refuses anything but a regular file of at most `max_size` bytes.
fn open_regular(path: &Path, max_size: u64) -> Result<File, String> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open: {}", std::io::Error::from(e)))?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd.into_raw_fd()) };
    let st = nix::sys::stat::fstat(&file)
        .map_err(|e| format!("cannot stat: {}", std::io::Error::from(e)))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG {
        return Err(format!(
            "not a regular file ({}): replay reads a snapshot saved with --save",
            kind_name(kind)
        ));
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size > max_size {
        return Err(too_large(max_size, Some(size)));
    }
    // O_NONBLOCK means nothing for a regular file's reads; it is left as it is.
    Ok(file)
}

fn too_large(max_size: u64, size: Option<u64>) -> String {
    let size = size.map_or_else(
        || "more than that".to_string(),
        |s| format!("{} ({s} bytes)", hangscope_model::units::bytes_short(s)),
    );
    format!(
        "larger than --max-size {}: {size}; a snapshot of 19,000 fds is 15 MB, and reading one \
         takes a few times its size in memory; raise --max-size if this file is meant to be read",
        hangscope_model::units::bytes_short(max_size)
    )
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        _ => "not a file",
    }
}

/// A file read up to a limit, remembering whether there was more.
struct Limited {
    inner: File,
    max: u64,
    left: u64,
    cut: bool,
}

impl Read for Limited {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One more byte says whether the file is longer than the limit.
            let mut probe = [0u8; 1];
            self.cut |= self.inner.read(&mut probe)? > 0;
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl Seek for Limited {
    /// The document is read in two passes; the limit counts from the start of the file.
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(pos)?;
        self.left = self.max.saturating_sub(at);
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_that_grew_past_the_limit_is_cut_and_said_so() {
        // The size check happens at open; this is a file longer than the limit being read.
        let doc = Document::new(
            "hangscope test",
            hangscope_model::Snapshot::default(),
            vec![],
        );
        let text = doc.to_json_pretty();
        let mut limited = Limited {
            inner: tempfile_with(text.as_bytes()),
            max: text.len() as u64 - 10,
            left: text.len() as u64 - 10,
            cut: false,
        };
        assert!(Document::from_reader(&mut limited).is_err());
        assert!(limited.cut);

        let mut whole = Limited {
            inner: tempfile_with(text.as_bytes()),
            max: text.len() as u64,
            left: text.len() as u64,
            cut: false,
        };
        assert_eq!(Document::from_reader(&mut whole).unwrap(), doc);
        assert!(!whole.cut);
    }

    /// An unlinked temp file holding `bytes`, rewound.
    fn tempfile_with(bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "hangscope-replay-unit-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }
}
