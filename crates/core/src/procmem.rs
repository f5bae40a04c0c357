//! Process memory as the operating system sees it: resident set size now and at its peak, and on
//! Linux the unique (USS) and proportional (PSS) set sizes.
//!
//! `peak_rss` is what `resource.getrusage(RUSAGE_SELF).ru_maxrss` reports, converted to bytes on
//! every OS (Linux reports KiB, macOS bytes). USS is the memory that would be freed if the process
//! exited (private pages); PSS adds a fair share of pages shared with other processes. Comparing
//! RSS with the bytes of Python objects tells a Python-level leak from a native one.

use crate::error::{Error, Result};

/// Memory figures of one process, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Resident set size now (`None` where the OS gives no cheap way to read it).
    pub rss: Option<u64>,
    /// Highest resident set size so far.
    pub peak_rss: u64,
    /// Unique set size: private pages (Linux only).
    pub uss: Option<u64>,
    /// Proportional set size (Linux only).
    pub pss: Option<u64>,
    /// Swapped-out bytes (Linux only).
    pub swap: Option<u64>,
}

/// The memory of the calling process.
pub fn current() -> Result<MemoryInfo> {
    let peak_rss = peak_rss_of_self()?;
    #[cfg(target_os = "linux")]
    {
        let status = read("/proc/self/status")?;
        let (rss, _) = parse_status(&status)?;
        let (pss, uss, swap) = match std::fs::read_to_string("/proc/self/smaps_rollup") {
            Ok(text) => {
                let r = parse_smaps_rollup(&text)?;
                (Some(r.0), Some(r.1), Some(r.2))
            }
            // Kernels before 4.14 have no smaps_rollup; RSS and peak are still right.
            Err(_) => (None, None, None),
        };
        Ok(MemoryInfo {
            rss: Some(rss),
            // getrusage and /proc are sampled at different moments; the peak is never below now.
            peak_rss: peak_rss.max(rss),
            uss,
            pss,
            swap,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(MemoryInfo {
            rss: None,
            peak_rss,
            uss: None,
            pss: None,
            swap: None,
        })
    }
}

/// The memory of another process, by PID (Linux only): RSS and peak from `/proc/PID/status`,
/// USS and PSS from `/proc/PID/smaps_rollup` when readable.
pub fn of_pid(pid: u32) -> Result<MemoryInfo> {
    if !cfg!(target_os = "linux") {
        return Err(Error::Unsupported(
            "reading another process's memory".into(),
        ));
    }
    let status = read(&format!("/proc/{pid}/status"))?;
    let (rss, hwm) = parse_status(&status)?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .map(|t| parse_smaps_rollup(&t))
        .transpose()?;
    Ok(MemoryInfo {
        rss: Some(rss),
        peak_rss: hwm,
        pss: rollup.map(|r| r.0),
        uss: rollup.map(|r| r.1),
        swap: rollup.map(|r| r.2),
    })
}

/// How many more bytes this process can allocate before the machine runs out or a limit set
/// on it refuses: the least of the memory the kernel says is available (`MemAvailable`), what
/// its cgroup (v2) allows beyond what the group uses, and what its address-space limit
/// (`RLIMIT_AS`, `ulimit -v`) leaves. `None` where none of these can be read (not Linux). What
/// reads a file uses it to refuse a file that asks for more than can be had, with an error,
/// before the allocation aborts the process or the kernel's OOM killer ends it.
pub fn available_to_self() -> Option<u64> {
    let mut least: Option<u64> = None;
    let mut consider = |bytes: Option<u64>| {
        if let Some(b) = bytes {
            least = Some(least.map_or(b, |l| l.min(b)));
        }
    };
    consider(
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| kb_field(&t, "MemAvailable")),
    );
    consider(cgroup_headroom());
    consider(address_space_headroom());
    least
}

/// What the process's cgroup v2 (`/proc/self/cgroup` names it) lets it allocate beyond what the
/// group already uses; `None` without a limit.
fn cgroup_headroom() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let number = |file: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // "max" (no limit) does not parse.
    let max = number("memory.max")?;
    Some(max.saturating_sub(number("memory.current").unwrap_or(0)))
}

/// What `RLIMIT_AS` leaves beyond the address space already mapped; `None` without a limit.
fn address_space_headroom() -> Option<u64> {
    // SAFETY: getrlimit writes into the zeroed struct we own.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let mapped = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| kb_field(&t, "VmSize"))
        .unwrap_or(0);
    Some((limit.rlim_cur as u64).saturating_sub(mapped))
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_string(),
        source,
    })
}

fn peak_rss_of_self() -> Result<u64> {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Err(Error::Io {
            path: "getrusage(RUSAGE_SELF)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let maxrss = usage.ru_maxrss.max(0) as u64;
    Ok(if cfg!(target_os = "macos") {
        maxrss
    } else {
        maxrss * 1024
    })
}

/// Reads a `kB` field of a `/proc` file (`VmRSS:     1234 kB`) in bytes.
fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(value * 1024),
            Some(_) => None,
        }
    })
}

/// (rss, peak rss) from the text of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Result<(u64, u64)> {
    let missing = |f: &str| Error::Parse {
        what: "/proc status".into(),
        detail: format!("no {f} line (is this a kernel thread or a zombie?)"),
    };
    let rss = kb_field(text, "VmRSS").ok_or_else(|| missing("VmRSS"))?;
    let hwm = kb_field(text, "VmHWM").unwrap_or(rss);
    Ok((rss, hwm))
}

/// (pss, uss, swap) from the text of `/proc/PID/smaps_rollup`.
pub fn parse_smaps_rollup(text: &str) -> Result<(u64, u64, u64)> {
    let pss = kb_field(text, "Pss").ok_or_else(|| Error::Parse {
        what: "smaps_rollup".into(),
        detail: "no Pss line".into(),
    })?;
    let private =
        kb_field(text, "Private_Clean").unwrap_or(0) + kb_field(text, "Private_Dirty").unwrap_or(0);
    let swap = kb_field(text, "Swap").unwrap_or(0);
    Ok((pss, private, swap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str =
        "Name:\tpython3\nVmPeak:\t  300000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
    const ROLLUP: &str = "55d0c000-7ffd [rollup]\nRss:               10240 kB\nPss:                8000 kB\nPss_Anon:           6000 kB\nShared_Clean:       2048 kB\nPrivate_Clean:      1024 kB\nPrivate_Dirty:      6144 kB\nSwap:                 12 kB\n";

    #[test]
    fn status_fields_are_read_in_bytes() {
        assert_eq!(parse_status(STATUS).unwrap(), (10240 * 1024, 20480 * 1024));
    }

    #[test]
    fn pss_uss_and_swap_come_from_smaps_rollup() {
        assert_eq!(
            parse_smaps_rollup(ROLLUP).unwrap(),
            (8000 * 1024, 7168 * 1024, 12 * 1024)
        );
    }

    #[test]
    fn a_status_without_rss_is_a_parse_error_not_a_panic() {
        assert!(matches!(
            parse_status("Name: kthreadd\n"),
            Err(Error::Parse { .. })
        ));
        assert!(parse_smaps_rollup("garbage").is_err());
    }

    #[test]
    fn pss_anon_does_not_shadow_pss() {
        let text = "Pss_Anon: 1 kB\nPss: 2 kB\n";
        assert_eq!(parse_smaps_rollup(text).unwrap().0, 2048);
    }

    #[test]
    fn the_current_process_has_a_plausible_memory() {
        let m = current().unwrap();
        assert!(m.peak_rss > 1 << 20, "{m:?}");
        if cfg!(target_os = "linux") {
            let rss = m.rss.unwrap();
            assert!(rss > 1 << 20 && rss <= m.peak_rss + (64 << 20), "{m:?}");
            assert!(m.uss.is_some(), "{m:?}");
            // USS and RSS of one instant: `VmRSS` (status) is read apart from smaps_rollup, and
            // lags it (the kernel batches its counters per thread) while other tests allocate.
            let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
            let (_, uss, _) = parse_smaps_rollup(&rollup).unwrap();
            assert!(uss <= kb_field(&rollup, "Rss").unwrap(), "{rollup}");
        }
    }

    #[test]
    fn memory_available_to_this_process_is_plausible() {
        if cfg!(target_os = "linux") {
            let available = available_to_self().expect("MemAvailable is read on Linux");
            assert!(available > 1 << 20, "{available}");
        }
    }

    #[test]
    fn a_dead_pid_is_a_clear_io_error() {
        let err = of_pid(u32::MAX - 7).unwrap_err();
        assert!(err.to_string().contains("/proc/"), "{err}");
    }
}
