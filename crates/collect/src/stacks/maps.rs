//! /proc/PID/maps (proc_pid_maps(5)): which file is mapped where, to find the module an
//! address belongs to and the stack mapping a stack pointer is in.

/// One line of maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub exec: bool,
    pub offset: u64,
    pub inode: u64,
    /// The path (or "[stack]", "[vdso]"...), exactly as written; `None` for anonymous memory.
    pub path: Option<Vec<u8>>,
}

impl Mapping {
    /// A file mapping (not anonymous, not a pseudo-name like "[vdso]").
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.as_deref().is_some_and(|p| p.starts_with(b"/"))
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// Parses the whole file; lines that do not parse are skipped (a truncated last line).
pub fn parse(text: &[u8]) -> Vec<Mapping> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<Mapping> {
    // "start-end perms offset dev inode   path": the path is the rest of the line after the
    // inode and its padding, and may hold spaces.
    let mut rest = line;
    let mut field = || -> Option<&[u8]> {
        let trimmed = rest.iter().position(|&b| b != b' ').map(|i| &rest[i..])?;
        let end = trimmed
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        Some(f)
    };
    let range = field()?;
    let perms = field()?;
    let offset = field()?;
    let _dev = field()?;
    let inode = field()?;
    let hex = |b: &[u8]| u64::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok();
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = hex(&range[..dash])?;
    let end = hex(&range[dash + 1..])?;
    let inode: u64 = std::str::from_utf8(inode).ok()?.parse().ok()?;
    let path = rest
        .iter()
        .position(|&b| b != b' ')
        .map(|i| rest[i..].to_vec());
    Some(Mapping {
        start,
        end,
        exec: perms.get(2) == Some(&b'x'),
        offset: hex(offset)?,
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let text = b"55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234   /usr/bin/my prog\n\
7f1e2a028000-7f1e2a1bd000 r-xp 00028000 fe:01 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6\n\
7ffd5a000000-7ffd5a021000 rw-p 00000000 00:00 0                          [stack]\n\
7f1e2a400000-7f1e2a600000 rw-p 00000000 00:00 0 \n";
        let m = parse(text);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].path.as_deref(), Some(&b"/usr/bin/my prog"[..]));
        assert!(!m[0].exec && m[0].is_file());
        assert!(m[1].exec && m[1].offset == 0x28000 && m[1].inode == 5678);
        assert_eq!(m[2].path.as_deref(), Some(&b"[stack]"[..]));
        assert!(!m[2].is_file());
        assert_eq!(m[3].path, None);
        assert!(m[1].contains(0x7f1e2a028000) && !m[1].contains(0x7f1e2a1bd000));
    }
}
