//! Lines of `/proc/PID/maps`: one mapping of a process' address space each.

/// One mapping: `start-end perms offset major:minor inode path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping<'a> {
    pub start: u64,
    pub end: u64,
    /// `rwxp`-style: read, write, execute, and `p` (private) or `s` (shared).
    pub perms: &'a str,
    pub offset: u64,
    pub device: (u32, u32),
    /// 0 for memory no file backs.
    pub inode: u64,
    /// The file, a name in brackets (`[heap]`, `[stack]`, `[anon:...]`), or empty.
    pub path: &'a str,
}

impl Mapping<'_> {
    /// Private memory no file backs, readable and writable: the heap's and `mmap`'s.
    pub fn is_private_anonymous(&self) -> bool {
        self.perms.starts_with("rw")
            && self.perms.ends_with('p')
            && self.inode == 0
            && (self.path.is_empty() || self.path == "[heap]" || self.path.starts_with("[anon:"))
    }
}

/// Parses one line; `None` for a line of another shape.
pub fn parse_line(line: &str) -> Option<Mapping<'_>> {
    let mut fields = line.splitn(6, char::is_whitespace);
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let device = (
        u32::from_str_radix(major, 16).ok()?,
        u32::from_str_radix(minor, 16).ok()?,
    );
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim();
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms,
        offset,
        device,
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_kind_are_read() {
        let file = parse_line(
            "7f12a0000000-7f12a0021000 r-xp 00002000 fe:01 247282                     /usr/lib/libc.so.6",
        )
        .unwrap();
        assert_eq!((file.start, file.end), (0x7f12a0000000, 0x7f12a0021000));
        assert_eq!(
            (file.offset, file.device, file.inode),
            (0x2000, (0xfe, 1), 247282)
        );
        assert_eq!(file.path, "/usr/lib/libc.so.6");
        assert!(!file.is_private_anonymous());
        let heap = parse_line("55aba66dd000-55aba671f000 rw-p 00000000 00:00 0   [heap]").unwrap();
        assert!(heap.is_private_anonymous());
        let anonymous = parse_line("7f12a0100000-7f12a0200000 rw-p 00000000 00:00 0 ").unwrap();
        assert!(anonymous.is_private_anonymous() && anonymous.path.is_empty());
        let shared =
            parse_line("7f12a0100000-7f12a0200000 rw-s 00000000 00:05 1234 /memfd:pool (deleted)")
                .unwrap();
        assert!(!shared.is_private_anonymous());
        assert_eq!(shared.path, "/memfd:pool (deleted)");
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("1000-zz rw-p 0 00:00 0"), None);
    }
}
