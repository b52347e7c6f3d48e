//! The bounded tail of a log file: at most `max_bytes` from the end, at most `max_lines`
//! lines, read with pread on a file opened O_NONBLOCK (a FIFO or device named like a log never
//! blocks the run). Callers open only regular files on local mounts, through `open` and the
//! helper process of `crate::isolate`: opening through /proc/PID/fd/N opens the target's file,
//! which can break its lease or wait on a fanotify listener, and on NFS or FUSE even an open
//! can hang.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use hangscope_model::Text;

#[derive(Debug, Clone, Default)]
pub struct Tail {
    /// The text read, from the first whole line on.
    pub text: String,
    /// The raw bytes looked binary (NULs, control bytes): `text` is empty.
    pub binary: bool,
    /// The read started past the beginning of the file.
    pub truncated: bool,
    pub bytes_read: u64,
    pub size: u64,
    pub mtime_s: i64,
}

pub fn read(path: &Path, max_bytes: u64, max_lines: usize) -> io::Result<Tail> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    read_file(&file, max_bytes, max_lines)
}

pub fn read_file(file: &File, max_bytes: u64, max_lines: usize) -> io::Result<Tail> {
    Ok(Tail::from_raw(read_raw(file, max_bytes)?, max_lines))
}

/// The last bytes of a file as read, before they are cut into lines: what the reading helper
/// process hands back (see `crate::isolate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawTail {
    pub bytes: Vec<u8>,
    /// Offset of `bytes` in the file.
    pub start: u64,
    pub size: u64,
    pub mtime_s: i64,
}

pub fn read_raw(file: &File, max_bytes: u64) -> io::Result<RawTail> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let size = meta.len();
    let start = size.saturating_sub(max_bytes);
    let mut buf = vec![0u8; (size - start) as usize];
    let mut got = 0usize;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(RawTail {
        bytes: buf,
        start,
        size,
        mtime_s: meta.mtime(),
    })
}

impl Tail {
    /// Cuts raw bytes into at most `max_lines` whole lines of text.
    pub fn from_raw(raw: RawTail, max_lines: usize) -> Tail {
        let mut tail = Tail {
            truncated: raw.start > 0,
            bytes_read: raw.bytes.len() as u64,
            size: raw.size,
            mtime_s: raw.mtime_s,
            ..Tail::default()
        };
        let mut body: &[u8] = &raw.bytes;
        if raw.start > 0 {
            // The first line is cut; it starts after the first newline.
            body = match body.iter().position(|&b| b == b'\n') {
                Some(i) => &body[i + 1..],
                None => &[],
            };
        }
        if looks_binary(body) {
            tail.binary = true;
            return tail;
        }
        let text = decode(body);
        let lines: Vec<&str> = text.lines().collect();
        let skip = lines.len().saturating_sub(max_lines);
        if skip > 0 {
            tail.truncated = true;
        }
        tail.text = lines[skip..].join("\n");
        tail
    }
}

/// Where a byte that is not UTF-8 sits in decoded log text: U+10FF00 + the byte, in a private
/// use area no log writes. The parsers see one character per such byte, and [`exact`] turns a
/// message back into its bytes.
const MARK: u32 = 0x10_ff00;

/// The body as text for the parsers, each invalid byte marked. A body that already holds
/// characters of the marked range is decoded lossily instead, so a mark is never misread.
fn decode(body: &[u8]) -> String {
    let Err(_) = std::str::from_utf8(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    let mut out = String::with_capacity(body.len() + 16);
    for chunk in body.utf8_chunks() {
        if chunk.valid().chars().any(is_mark) {
            return String::from_utf8_lossy(body).into_owned();
        }
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.extend(char::from_u32(MARK + u32::from(b)));
        }
    }
    out
}

fn is_mark(c: char) -> bool {
    (MARK..=MARK + 0xff).contains(&(c as u32))
}

/// Decoded text back as the bytes it was read from.
pub fn exact(text: &str) -> Text {
    if !text.chars().any(is_mark) {
        return Text::from(text);
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        match (c as u32).checked_sub(MARK) {
            Some(b) if is_mark(c) => bytes.push(b as u8),
            _ => bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
    Text::from_bytes(bytes)
}

/// Decoded text as a plain string: each marked byte as U+FFFD, as a lossy read has it.
pub fn lossy(text: &mut String) {
    if text.chars().any(is_mark) {
        *text = text
            .chars()
            .map(|c| if is_mark(c) { '\u{fffd}' } else { c })
            .collect();
    }
}

/// Whether bytes rule out a text log: more than 1 in 10 are NULs or control bytes. A binary
/// file such as a database's write-ahead "000003.log" is named like a log but is not one,
/// while a text log with a few garbage lines is still read.
pub fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return false;
    }
    let sample = &bytes[..bytes.len().min(8192)];
    let bad = sample
        .iter()
        .filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b)))
        .count();
    bad * 10 > sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file in a directory of its own, removed with it when dropped.
    struct TempFile(std::path::PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp(name: &str, content: &[u8]) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("hangscope-tail-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        let mut f = File::create(&p).unwrap();
        f.write_all(content).unwrap();
        TempFile(p)
    }

    #[test]
    fn bounded_by_bytes_and_lines() {
        let mut content = String::new();
        for i in 0..1000 {
            content.push_str(&format!("line {i:04}\n"));
        }
        let p = temp("lines.log", content.as_bytes());
        let t = read(&p, 105, 1000).unwrap();
        assert!(t.truncated);
        assert_eq!(t.bytes_read, 105);
        // 105 bytes = a cut line, then 9 whole lines of 10 bytes... the cut one is dropped.
        let lines: Vec<&str> = t.text.lines().collect();
        assert_eq!(lines.last(), Some(&"line 0999"));
        assert!(lines.iter().all(|l| l.len() == 9), "{lines:?}");
        let t = read(&p, 1 << 20, 3).unwrap();
        assert_eq!(t.text, "line 0997\nline 0998\nline 0999");
        assert!(t.truncated);
        let t = read(&p, 1 << 20, 5000).unwrap();
        assert!(!t.truncated);
        assert_eq!(t.text.lines().count(), 1000);
    }

    #[test]
    fn binary_and_non_regular() {
        let p = temp("000003.log", b"\x00\x00\x01\x02\x03rocksdb wal");
        assert!(read(&p, 1024, 10).unwrap().binary);
        assert!(read(p.parent().unwrap(), 1024, 10).is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_survive_the_parsers() {
        let text = decode(b"a\xff\xfeb\n\xc3");
        assert_eq!(text.chars().count(), 6);
        assert_eq!(exact(&text).as_bytes(), b"a\xff\xfeb\n\xc3");
        let mut plain = text.clone();
        lossy(&mut plain);
        assert_eq!(plain, "a\u{fffd}\u{fffd}b\n\u{fffd}");
        // Text that already holds the marked range is read lossily: no mark is misread.
        let mut both = "\u{10ff41}".as_bytes().to_vec();
        both.push(0xff);
        assert_eq!(decode(&both), "\u{10ff41}\u{fffd}");
        assert_eq!(exact("plain").as_bytes(), b"plain");
    }
}
