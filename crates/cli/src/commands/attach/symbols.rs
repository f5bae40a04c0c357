//! Where the functions gdb calls in the target are (`mmap`, `Py_AddPendingCall`,
//! `PyRun_SimpleString`), read from the ELF files the target has mapped before gdb attaches.
//!
//! Left to itself, gdb reads the symbol tables of every library of the target once it has
//! stopped it: for a shared libpython that was 30-50 ms of a stop of 55-80 ms (attach, read,
//! detach) on this project's machines. With the addresses known, gdb is told not to read the
//! libraries' symbols (`set auto-solib-add off`) and calls the functions through pointers of the
//! right type, and the target is stopped for 20-30 ms. A function's address is its symbol's
//! value in the file's dynamic symbol table plus where the file was loaded (`/proc/PID/maps`).
//!
//! Where any address cannot be found (a file that is not the one mapped any more, one this user
//! may not read, a symbol that is not a plain function: an IFUNC's value is its resolver), none
//! is used and gdb finds the functions by name, as before.
//!
//! Not here: gdb's command file ([`super::gdb`]).

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSegment, ObjectSymbol, SymbolFlags, SymbolKind};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The addresses of the functions gdb calls, in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Functions {
    pub mmap: u64,
    pub add_pending_call: u64,
    pub run_simple_string: u64,
}

/// Files bigger than this are not read (a libpython is 5-40 MB).
const MOST_BYTES: u64 = 1 << 30;

/// `STT_GNU_IFUNC`: the symbol's value is a resolver that returns the function.
const STT_GNU_IFUNC: u8 = 10;

/// A file mapped in the target: where it was loaded, and which file it is.
#[derive(Debug, PartialEq, Eq)]
struct Mapped {
    path: String,
    /// The start of its mapping at file offset 0.
    start: u64,
    device: (u32, u32),
    inode: u64,
}

/// The functions' addresses in process `pid`, whose `/` this process sees at `root`; None where
/// any of them cannot be found (gdb then looks them up itself).
pub fn find(pid: u32, root: &Path) -> Option<Functions> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mapped = mapped_files(&maps);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    // Python's functions are in its libpython when it has one, else in its program.
    let python = mapped
        .iter()
        .find(|m| m.file_name().starts_with("libpython"))
        .or_else(|| {
            let exe = exe.as_ref()?.to_str()?;
            mapped.iter().find(|m| m.path == exe)
        })?;
    let libc = mapped.iter().find(|m| is_libc(m))?;
    let [add_pending_call, run_simple_string] =
        addresses(python, root, ["Py_AddPendingCall", "PyRun_SimpleString"])?;
    let [mmap] = addresses(libc, root, ["mmap"])?;
    Some(Functions {
        mmap,
        add_pending_call,
        run_simple_string,
    })
}

impl Mapped {
    /// The file's name, without its directory.
    fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

/// Whether `file` is the C library (glibc's, or musl's, which is its own loader).
fn is_libc(file: &Mapped) -> bool {
    let name = file.file_name();
    name.starts_with("libc.so") || name.starts_with("libc-") || name.starts_with("ld-musl")
}

/// Every file mapped at offset 0, with its first such mapping (`/proc/PID/maps` lists them in
/// address order), but files deleted or replaced since.
fn mapped_files(maps: &str) -> Vec<Mapped> {
    let mut files: Vec<Mapped> = Vec::new();
    for mapping in maps.lines().filter_map(heaplens_core::maps::parse_line) {
        let path = mapping.path;
        if !path.starts_with('/') || path.ends_with(" (deleted)") || mapping.offset != 0 {
            continue;
        }
        let (start, device, inode) = (mapping.start, mapping.device, mapping.inode);
        if files.iter().any(|f| f.path == path) {
            continue;
        }
        files.push(Mapped {
            path: path.to_string(),
            start,
            device,
            inode,
        });
    }
    files
}

/// The addresses in the target of the functions `names` of file `file`, or None unless each is
/// a defined, plain function of its dynamic symbol table.
fn addresses<const N: usize>(file: &Mapped, root: &Path, names: [&str; N]) -> Option<[u64; N]> {
    let path: PathBuf = root.join(file.path.trim_start_matches('/'));
    let metadata = std::fs::metadata(&path).ok()?;
    // The file at that path now must be the one mapped (not a newer one installed since).
    let device = (libc::major(metadata.dev()), libc::minor(metadata.dev()));
    if metadata.ino() != file.inode || device != file.device || metadata.len() > MOST_BYTES {
        return None;
    }
    let data = std::fs::read(&path).ok()?;
    let elf = ElfFile64::<Endianness>::parse(&*data).ok()?;
    // Where the file was loaded: its mapping at offset 0 holds its first loadable segment.
    let first = elf.segments().map(|s| s.address()).min()?;
    let bias = file.start.checked_sub(first & !0xfff)?;
    let mut found = [None; N];
    for symbol in elf.dynamic_symbols() {
        let Ok(name) = symbol.name() else { continue };
        let Some(i) = names.iter().position(|&n| n == name) else {
            continue;
        };
        let ifunc = matches!(symbol.flags(), SymbolFlags::Elf { st_info, .. } if st_info & 0xf == STT_GNU_IFUNC);
        if symbol.is_undefined()
            || symbol.kind() != SymbolKind::Text
            || ifunc
            || symbol.address() == 0
        {
            return None;
        }
        found[i] = Some(bias.checked_add(symbol.address())?);
    }
    let mut out = [0; N];
    for (slot, address) in out.iter_mut().zip(found) {
        *slot = address?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maps_give_each_file_at_offset_zero_once() {
        let maps = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 1234 /usr/bin/python3.11
55d0c0a01000-55d0c0b00000 r-xp 00001000 fe:00 1234 /usr/bin/python3.11
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
7f1000000000-7f1000020000 r--p 00000000 fe:00 42 /lib/x86_64-linux-gnu/libc.so.6
7f2000000000-7f2000001000 r--p 00000000 fe:00 43 /tmp/a file with spaces.so
7f3000000000-7f3000001000 r--p 00000000 fe:00 44 /tmp/gone.so (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
";
        let files = mapped_files(maps);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/bin/python3.11",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/tmp/a file with spaces.so"
            ]
        );
        assert_eq!(files[0].start, 0x55d0c0a00000);
        assert_eq!(files[1].device, (0xfe, 0));
        assert_eq!(files[1].inode, 42);
    }

    /// This test process has a libc: its `mmap` found through the maps is the one it calls.
    #[test]
    fn the_address_found_for_mmap_is_the_one_this_process_calls() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let files = mapped_files(&maps);
        let Some(libc_file) = files.iter().find(|m| is_libc(m)) else {
            return; // a static build: nothing to compare with
        };
        let [mmap] = addresses(libc_file, Path::new("/"), ["mmap"]).expect("mmap in libc");
        assert_eq!(mmap, libc::mmap as *const () as usize as u64);
        // A name the file does not define is no address.
        assert_eq!(
            addresses(libc_file, Path::new("/"), ["heaplens_no_such_function"]),
            None
        );
    }
}
