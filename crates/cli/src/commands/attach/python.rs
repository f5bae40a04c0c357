//! The target's Python version, against the versions heaplens captures and the Python that runs
//! this command: which targets are refused before anything is touched, to which the command's
//! own heaplens may be lent, which way reaches them (`sys.remote_exec` from 3.14, else gdb), and
//! what to tell a user whose target cannot import heaplens. Pure functions: what they decide on
//! comes from [`super::target`] (`/proc`) and from the target's answer ([`super::protocol`]).
//!
//! The list of supported versions is not kept here: it is `heaplens_capture::SUPPORTED` (the
//! capture crate without its `python` feature: no pyo3), the one place that says which versions
//! the capture reads.

use super::Failure;

/// A Python version, `(major, minor)`.
pub type Version = (u32, u32);

/// The first version whose `sys.remote_exec` (PEP 768) runs a script in another process.
pub const REMOTE_EXEC_SINCE: Version = (3, 14);

/// `3.11, 3.12 and 3.13`: the versions as a sentence fragment.
pub fn version_list(supported: &[(u8, u8)]) -> String {
    let names: Vec<String> = supported.iter().map(|(a, b)| format!("{a}.{b}")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// The refusal of a process whose Python heaplens does not capture, or None when it does (or
/// when either side is unknown: the target's own heaplens then answers for its version).
pub fn fence(pid: u32, version: Option<Version>, supported: &[(u8, u8)]) -> Option<Failure> {
    let (major, minor) = version?;
    let known = |&(a, b): &(u8, u8)| (u32::from(a), u32::from(b));
    let oldest = supported.iter().map(known).min()?;
    let newest = supported.iter().map(known).max()?;
    if supported.iter().map(known).any(|v| v == (major, minor)) {
        return None;
    }
    let hint = if (major, minor) < oldest {
        format!(
            "heaplens cannot read the heap of an older Python: run the program on Python {}.{} \
             or newer to snapshot it",
            oldest.0, oldest.1
        )
    } else if (major, minor) > newest {
        format!(
            "a newer heaplens may capture Python {major}.{minor}: pip install --upgrade heaplens"
        )
    } else {
        "run the program on one of those versions to snapshot it".to_string()
    };
    Some(Failure::new(
        format!(
            "process {pid} runs Python {major}.{minor}; heaplens captures CPython {}",
            version_list(supported)
        ),
        hint,
    ))
}

/// Whether the heaplens package running this command (of Python `ours`) may be offered to a
/// process of Python `theirs`: only to the same minor version, since its extension module is
/// built for one. Unknown versions are given the benefit of the doubt (a wrong guess is an
/// import error in the target, reported with the versions it names).
pub fn lendable(ours: Option<(u8, u8)>, theirs: Option<Version>) -> bool {
    match (ours, theirs) {
        (Some((a, b)), Some(theirs)) => (u32::from(a), u32::from(b)) == theirs,
        _ => true,
    }
}

/// Whether the target's Python can be reached with `sys.remote_exec`, by version. (It may still
/// have remote debugging disabled: that is only known by trying.)
pub fn has_remote_exec(version: Option<Version>) -> bool {
    version.is_some_and(|v| v >= REMOTE_EXEC_SINCE)
}

/// `3.14.10`, `3.15.0a1`, `3.14` → (3, minor).
pub fn parse_release(text: &str) -> Option<Version> {
    let mut parts = text.trim().splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?;
    let digits = minor.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    Some((major, minor[..digits].parse().ok()?))
}

/// What is known when the target answered that it cannot import heaplens.
#[derive(Debug)]
pub struct NotImportable<'a> {
    pub pid: u32,
    /// The target's Python, as it reported it (`3.14.10`), if it did.
    pub release: Option<&'a str>,
    /// Its version as the checks read it, for when it did not say.
    pub version: Option<Version>,
    /// The interpreter to install heaplens with: the target's `sys.executable`, if it said, and
    /// its program (`/proc/PID/exe`, as it sees it).
    pub executable: Option<&'a str>,
    pub program: Option<&'a str>,
    /// The Python running this command.
    pub ours: Option<(u8, u8)>,
    /// Whether the user gave `--python-path`.
    pub python_path_given: bool,
    /// The target's error message.
    pub detail: &'a str,
}

impl NotImportable<'_> {
    /// The target's version.
    fn version(&self) -> Option<Version> {
        self.release.and_then(parse_release).or(self.version)
    }

    /// The command that installs heaplens for the target's Python, for a shell.
    pub fn install_command(&self) -> String {
        let is_python = |path: &&str| {
            let name = path.rsplit('/').next().unwrap_or(path);
            name.starts_with("python") && !path.ends_with(" (deleted)")
        };
        let interpreter = match (self.executable.filter(is_python), self.version()) {
            (Some(path), _) => shell_word(path),
            (None, version) => match (self.program.filter(is_python), version) {
                (Some(path), _) => shell_word(path),
                (None, Some((a, b))) => format!("python{a}.{b}"),
                (None, None) => "python3".to_string(),
            },
        };
        format!("{interpreter} -m pip install heaplens")
    }

    /// The failure to report: when this command's heaplens could not be lent (another
    /// version), what to install, where; otherwise the target's error, and the same remedy.
    pub fn failure(&self) -> Failure {
        let pid = self.pid;
        let detail = self.detail.trim();
        let release = self
            .release
            .map(str::to_string)
            .or_else(|| self.version().map(|(a, b)| format!("{a}.{b}")))
            .unwrap_or_else(|| "?".to_string());
        let version = self
            .version()
            .map(|(a, b)| format!("{a}.{b}"))
            .unwrap_or_else(|| "the process's version".to_string());
        let install = self.install_command();
        let other_version = match (self.ours, self.version()) {
            (Some(ours), Some(theirs)) => !lendable(Some(ours), Some(theirs)),
            _ => false,
        };
        match self.ours {
            Some((a, b)) if other_version && !self.python_path_given => {
                let mut message = format!(
                    "process {pid} runs Python {release} without heaplens, and the heaplens \
                     running this command is for Python {a}.{b}, so it cannot be lent to it"
                );
                // A broken install of its own says more than the usual `No module named`.
                if !detail.starts_with("No module named 'heaplens'") && !detail.is_empty() {
                    message.push_str(&format!(" ({detail})"));
                }
                Failure::new(
                    message,
                    format!(
                        "install heaplens for the process's Python: `{install}` (into its \
                         virtual environment, if it runs in one), or pass --python-path DIR, a \
                         directory holding heaplens built for Python {version}"
                    ),
                )
            }
            _ => Failure::new(
                format!("heaplens is not importable in process {pid} (Python {release}): {detail}"),
                if self.python_path_given {
                    format!(
                        "check that --python-path DIR holds heaplens built for Python {version} \
                         (as the process sees the path), or install it for the process's \
                         Python: `{install}`"
                    )
                } else {
                    format!(
                        "install heaplens for the process's Python: `{install}`, or pass \
                         --python-path DIR (a directory holding heaplens built for Python \
                         {version})"
                    )
                },
            ),
        }
    }
}

/// `path` as one shell word: as is when it holds only harmless characters, else single-quoted.
fn shell_word(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !path.is_empty() && path.chars().all(plain) {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use heaplens_capture::SUPPORTED;

    #[test]
    fn the_list_reads_as_a_sentence() {
        assert_eq!(version_list(SUPPORTED), heaplens_capture::supported_list());
        assert_eq!(version_list(&[(3, 11), (3, 12)]), "3.11 and 3.12");
        assert_eq!(version_list(&[(3, 11)]), "3.11");
        assert_eq!(version_list(&[]), "");
    }

    #[test]
    fn supported_versions_pass_the_fence() {
        for &(a, b) in SUPPORTED {
            assert!(fence(7, Some((a.into(), b.into())), SUPPORTED).is_none());
        }
        // Unknown on either side: the target's own heaplens answers.
        assert!(fence(7, None, SUPPORTED).is_none());
        assert!(fence(7, Some((3, 10)), &[]).is_none());
    }

    #[test]
    fn other_versions_are_refused_with_the_list() {
        let f = fence(42, Some((3, 10)), SUPPORTED).unwrap();
        assert_eq!(
            f.to_string(),
            "process 42 runs Python 3.10; heaplens captures CPython 3.11, 3.12, 3.13, 3.14 and 3.15"
        );
        assert!(f.hint.contains("Python 3.11 or newer"), "{}", f.hint);
        let f = fence(42, Some((3, 16)), SUPPORTED).unwrap();
        assert!(f.to_string().starts_with("process 42 runs Python 3.16;"));
        assert!(
            f.hint.contains("pip install --upgrade heaplens"),
            "{}",
            f.hint
        );
        let f = fence(42, Some((2, 7)), SUPPORTED).unwrap();
        assert!(f.to_string().contains("runs Python 2.7;"));
    }

    #[test]
    fn only_the_same_minor_version_is_lent_the_running_heaplens() {
        assert!(lendable(Some((3, 14)), Some((3, 14))));
        assert!(!lendable(Some((3, 14)), Some((3, 13))));
        assert!(!lendable(Some((3, 11)), Some((3, 12))));
        assert!(lendable(None, Some((3, 12))));
        assert!(lendable(Some((3, 12)), None));
    }

    #[test]
    fn remote_exec_is_tried_from_314_only() {
        assert!(!has_remote_exec(Some((3, 13))));
        assert!(has_remote_exec(Some((3, 14))));
        assert!(has_remote_exec(Some((3, 15))));
        assert!(has_remote_exec(Some((4, 0))));
        assert!(!has_remote_exec(None));
    }

    #[test]
    fn releases_parse_to_major_and_minor() {
        assert_eq!(parse_release("3.14.10"), Some((3, 14)));
        assert_eq!(parse_release("3.15.0a1"), Some((3, 15)));
        assert_eq!(parse_release("3.13"), Some((3, 13)));
        assert_eq!(parse_release("3.13t"), Some((3, 13)));
        assert_eq!(parse_release("?"), None);
        assert_eq!(parse_release("3."), None);
        assert_eq!(parse_release(""), None);
    }

    fn not_importable<'a>(
        ours: Option<(u8, u8)>,
        release: Option<&'a str>,
        executable: Option<&'a str>,
    ) -> NotImportable<'a> {
        NotImportable {
            pid: 42,
            release,
            version: Some((3, 14)),
            executable,
            program: Some("/usr/bin/python3.14"),
            ours,
            python_path_given: false,
            detail: "No module named 'heaplens' (sys.path: ['/usr/lib/python314.zip'])",
        }
    }

    #[test]
    fn another_version_is_told_what_to_install_with_its_own_interpreter() {
        let n = not_importable(
            Some((3, 11)),
            Some("3.14.10"),
            Some("/srv/app/.venv/bin/python"),
        );
        let f = n.failure();
        assert_eq!(
            f.to_string(),
            "process 42 runs Python 3.14.10 without heaplens, and the heaplens running this \
             command is for Python 3.11, so it cannot be lent to it"
        );
        assert!(
            f.hint
                .contains("`/srv/app/.venv/bin/python -m pip install heaplens`"),
            "{}",
            f.hint
        );
        assert!(f.hint.contains("--python-path DIR"), "{}", f.hint);
        assert!(f.hint.contains("built for Python 3.14"), "{}", f.hint);
    }

    #[test]
    fn without_its_sys_executable_the_program_is_named() {
        let n = not_importable(Some((3, 11)), None, None);
        assert_eq!(
            n.install_command(),
            "/usr/bin/python3.14 -m pip install heaplens"
        );
        // An embedding program (uWSGI) is no interpreter to run pip with.
        let mut n = not_importable(Some((3, 11)), Some("3.14.1"), Some("/usr/bin/uwsgi"));
        n.program = Some("/usr/bin/uwsgi");
        assert_eq!(n.install_command(), "python3.14 -m pip install heaplens");
        let n = not_importable(Some((3, 11)), None, Some("/opt/my app/bin/python3"));
        assert_eq!(
            n.install_command(),
            "'/opt/my app/bin/python3' -m pip install heaplens"
        );
    }

    #[test]
    fn the_same_version_or_an_explicit_path_reports_the_targets_error() {
        let n = not_importable(Some((3, 14)), Some("3.14.10"), Some("/usr/bin/python3.14"));
        let f = n.failure();
        assert!(
            f.to_string().starts_with(
                "heaplens is not importable in process 42 (Python 3.14.10): No module"
            ),
            "{f}"
        );
        assert!(f.hint.contains("--python-path"), "{}", f.hint);
        let mut n = not_importable(Some((3, 11)), Some("3.14.10"), None);
        n.python_path_given = true;
        let f = n.failure();
        assert!(
            f.to_string().starts_with("heaplens is not importable"),
            "{f}"
        );
        assert!(
            f.hint.starts_with("check that --python-path DIR"),
            "{}",
            f.hint
        );
        // Nothing known of the running Python (a Rust caller): the target's error.
        let f = not_importable(None, Some("3.14.10"), None).failure();
        assert!(
            f.to_string().starts_with("heaplens is not importable"),
            "{f}"
        );
    }

    #[test]
    fn a_broken_install_of_its_own_is_shown() {
        let mut n = not_importable(Some((3, 11)), Some("3.14.10"), None);
        n.detail = "ImportError: cannot import name '_native'";
        let f = n.failure();
        assert!(
            f.to_string()
                .ends_with("(ImportError: cannot import name '_native')"),
            "{f}"
        );
    }
}
