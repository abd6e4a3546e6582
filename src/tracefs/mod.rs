//! tracefs: finding (or mounting) it, tracepoint ids, and tracepoint format files.
//!
//! A tracepoint `category/name` lives in `<root>/events/<category>/<name>/`, whose
//! `id` file holds the number perf_event_open wants and whose `format` file
//! describes the record a BPF program sees (parsed by [`parse_format`]).

mod format;

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

pub use format::{parse_format, EventFormat, Field};

/// Where tracefs is mounted when we mount it ourselves (the kernel creates this
/// directory when it is built with tracefs; Documentation/trace/ftrace.rst).
pub const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";

/// The filesystem type name registered by kernel/trace/trace.c.
const TRACEFS_TYPE: &str = "tracefs";

/// Where the mount table is read.
const PROC_MOUNTS: &str = "/proc/mounts";

/// A tracefs mount.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
    mounted_by_us: bool,
}

/// Why a tracefs operation failed; each message says what to do next.
#[derive(Debug)]
pub enum TracefsError {
    /// tracefs was not mounted and mounting it at `target` failed.
    Mount { target: PathBuf, errno: Errno },
    /// tracefs is mounted but has no `events` directory.
    NoEvents { root: PathBuf },
    /// A tracefs file could not be read.
    Io { path: PathBuf, err: io::Error },
    /// No `events/<category>` directory.
    NoCategory { category: String, dir: PathBuf, close: Vec<String> },
    /// No `events/<category>/<name>` directory.
    NoEvent { category: String, name: String, dir: PathBuf, close: Vec<String> },
    /// An `id` file that does not hold a number.
    BadId { path: PathBuf, text: String },
    /// A format file that could not be parsed; `line` is 1-based (0: the whole
    /// text, e.g. a missing part).
    Format { path: Option<PathBuf>, line: usize, msg: String },
}

impl fmt::Display for TracefsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TracefsError::Mount { target, errno } => write_mount_error(f, target, *errno),
            TracefsError::NoEvents { root } => write!(
                f,
                "tracefs at {} has no events directory: the kernel was built without tracepoints \
                 (CONFIG_TRACEPOINTS / CONFIG_FTRACE_SYSCALLS), so system calls cannot be traced",
                root.display()
            ),
            TracefsError::Io { path, err } => write_io_error(f, path, err),
            TracefsError::NoCategory { category, dir, close } => {
                write!(f, "no tracepoint category `{category}` in {}", dir.display())?;
                write_close(f, close)
            }
            TracefsError::NoEvent { category, name, dir, close } => {
                write!(f, "no tracepoint `{category}/{name}` in {}", dir.display())?;
                write_close(f, close)
            }
            TracefsError::BadId { path, text } => {
                write!(f, "{} should hold a tracepoint id but holds {text:?}", path.display())
            }
            TracefsError::Format { path, line, msg } => {
                match path {
                    Some(p) => write!(f, "cannot parse {}", p.display())?,
                    None => write!(f, "cannot parse a tracepoint format")?,
                }
                match line {
                    0 => write!(f, ": {msg}"),
                    n => write!(f, ", line {n}: {msg}"),
                }
            }
        }
    }
}

impl std::error::Error for TracefsError {}

fn write_mount_error(f: &mut fmt::Formatter<'_>, target: &Path, errno: Errno) -> fmt::Result {
    write!(f, "tracefs is not mounted and mounting it at {} failed ({errno})", target.display())?;
    let hint = match errno {
        Errno::EPERM | Errno::EACCES => {
            "; run as root (mounting needs CAP_SYS_ADMIN), or ask an administrator to run \
             `mount -t tracefs nodev /sys/kernel/tracing`"
        }
        Errno::ENODEV => {
            "; this kernel has no tracefs (`grep tracefs /proc/filesystems` is empty): \
             it was built without CONFIG_TRACING, so tracepoints and system calls cannot be traced"
        }
        Errno::ENOENT => {
            "; the directory does not exist: is sysfs mounted at /sys? (`mount -t sysfs sysfs /sys`)"
        }
        _ => "; mount it yourself with `mount -t tracefs nodev /sys/kernel/tracing` and try again",
    };
    f.write_str(hint)
}

fn write_io_error(f: &mut fmt::Formatter<'_>, path: &Path, err: &io::Error) -> fmt::Result {
    write!(f, "cannot read {}: {err}", path.display())?;
    if err.kind() == io::ErrorKind::PermissionDenied {
        f.write_str("; tracefs is readable by root only: run as root")?;
    }
    Ok(())
}

fn write_close(f: &mut fmt::Formatter<'_>, close: &[String]) -> fmt::Result {
    match close {
        [] => Ok(()),
        [one] => write!(f, "; did you mean `{one}`?"),
        many => write!(f, "; did you mean one of: {}?", many.join(", ")),
    }
}

impl Tracefs {
    /// Finds tracefs: a tracefs mount in /proc/mounts, else the `tracing` directory
    /// of a debugfs mount; if there is none, mounts tracefs at
    /// [`DEFAULT_MOUNT`] (needs root). The mount is left in place afterwards, as
    /// other tracers do; [`Tracefs::mounted_by_us`] tells whether we made it.
    pub fn open() -> Result<Tracefs, TracefsError> {
        let mounts = std::fs::read_to_string(PROC_MOUNTS).unwrap_or_default();
        let candidates = mount_candidates(&mounts);
        if let Some(root) = candidates.iter().find(|p| p.join("events").is_dir()) {
            return Ok(Tracefs { root: root.clone(), mounted_by_us: false });
        }
        // Mounted, but closed to us (mode 0700, and we are not root): say so,
        // not "not mounted".
        for root in &candidates {
            let events = root.join("events");
            if let Err(err) = std::fs::metadata(&events) {
                if err.kind() == io::ErrorKind::PermissionDenied {
                    return Err(TracefsError::Io { path: events, err });
                }
            }
        }
        let target = Path::new(DEFAULT_MOUNT);
        mount_tracefs(target).map_err(|errno| TracefsError::Mount { target: target.into(), errno })?;
        let tfs = Tracefs { root: target.into(), mounted_by_us: true };
        match tfs.events_dir().is_dir() {
            true => Ok(tfs),
            false => Err(TracefsError::NoEvents { root: tfs.root }),
        }
    }

    /// A tracefs (or a copy of its tree) at `root`, without checking it; for tests.
    pub fn at(root: &Path) -> Tracefs {
        Tracefs { root: root.to_path_buf(), mounted_by_us: false }
    }

    /// The mount point (`/sys/kernel/tracing`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when [`Tracefs::open`] mounted tracefs itself.
    pub fn mounted_by_us(&self) -> bool {
        self.mounted_by_us
    }

    /// The id of tracepoint `category/name` (`events/<category>/<name>/id`).
    pub fn event_id(&self, category: &str, name: &str) -> Result<u32, TracefsError> {
        let path = self.event_dir(category, name)?.join("id");
        let text = self.read(&path)?;
        text.trim().parse().map_err(|_| TracefsError::BadId { path, text })
    }

    /// The parsed `events/<category>/<name>/format` of a tracepoint.
    pub fn event_format(&self, category: &str, name: &str) -> Result<EventFormat, TracefsError> {
        let path = self.event_dir(category, name)?.join("format");
        let text = self.read(&path)?;
        parse_format(&text).map_err(|e| match e {
            TracefsError::Format { line, msg, .. } => TracefsError::Format { path: Some(path), line, msg },
            other => other,
        })
    }

    /// The tracepoint categories (`sched`, `syscalls`, ...), sorted.
    pub fn categories(&self) -> Vec<String> {
        subdirectories(&self.events_dir())
    }

    /// The tracepoints of `category`, sorted; empty if there is no such category.
    pub fn events(&self, category: &str) -> Vec<String> {
        if !is_plain_name(category) {
            return Vec::new();
        }
        subdirectories(&self.events_dir().join(category))
    }

    /// The system calls that have tracepoints: `X` for every `syscalls/sys_enter_X`.
    pub fn syscalls(&self) -> Vec<String> {
        let enter = self.events("syscalls");
        enter.iter().filter_map(|e| e.strip_prefix("sys_enter_")).map(str::to_string).collect()
    }

    fn events_dir(&self) -> PathBuf {
        self.root.join("events")
    }

    /// The directory of `category/name`, or an error with close matches.
    fn event_dir(&self, category: &str, name: &str) -> Result<PathBuf, TracefsError> {
        let events = self.events_dir();
        if !is_plain_name(category) || !events.join(category).is_dir() {
            let close = close_matches(category, &self.categories());
            return Err(TracefsError::NoCategory { category: category.into(), dir: events, close });
        }
        let dir = events.join(category);
        if !is_plain_name(name) || !dir.join(name).is_dir() {
            let close = close_matches(name, &self.events(category));
            return Err(TracefsError::NoEvent { category: category.into(), name: name.into(), dir, close });
        }
        Ok(dir.join(name))
    }

    fn read(&self, path: &Path) -> Result<String, TracefsError> {
        let read = std::fs::read_to_string(path);
        crate::explain::read_file(path, &read);
        read.map_err(|err| TracefsError::Io { path: path.into(), err })
    }
}

/// A single path component: no `/`, not `.`/`..`, not empty. Keeps names typed by
/// the user from walking out of the events directory.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// Names of the directories in `dir`, sorted (empty if unreadable).
fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Where tracefs may be, best first, from the text of /proc/mounts: every tracefs
/// mount, then `tracing/` under every debugfs mount (which the kernel
/// auto-mounts tracefs on).
fn mount_candidates(mounts: &str) -> Vec<PathBuf> {
    let entries: Vec<(&str, PathBuf)> = mounts
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (_dev, dir, fstype) = (words.next()?, words.next()?, words.next()?);
            Some((fstype, PathBuf::from(unescape_mount_path(dir))))
        })
        .collect();
    let tracefs = entries.iter().filter(|(t, _)| *t == TRACEFS_TYPE).map(|(_, d)| d.clone());
    let debugfs = entries.iter().filter(|(t, _)| *t == "debugfs").map(|(_, d)| d.join("tracing"));
    tracefs.chain(debugfs).collect()
}

/// /proc/mounts writes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v =
                    (u32::from(d[0] - b'0') << 6) | (u32::from(d[1] - b'0') << 3) | u32::from(d[2] - b'0');
                out.push(v as u8); // \400..\777 never occur; truncation keeps this total
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// mount(2) of a fresh tracefs instance at `target`.
fn mount_tracefs(target: &Path) -> Result<(), Errno> {
    let target = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call
    // (c-string literals are static, `target` is alive until the end of the
    // function); data may be NULL for tracefs (no mount options).
    let rc =
        unsafe { libc::mount(c"nodev".as_ptr(), target.as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null()) };
    let result = if rc == 0 { Ok(()) } else { Err(Errno::last()) };
    crate::explain::syscall(
        || format!("mount(\"nodev\", {}, \"tracefs\", 0, NULL)", crate::explain::quote(target.to_bytes())),
        result.map(|()| "0".to_string()).map_err(|e| e as i32),
    );
    result
}

fn close_matches(wanted: &str, candidates: &[String]) -> Vec<String> {
    crate::util::close_matches(wanted, candidates.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Tracefs {
        Tracefs::at(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tracefs")))
    }

    #[test]
    fn fixture_tree_lookups() {
        let t = fixtures();
        assert_eq!(t.categories(), ["sched", "syscalls"]);
        assert_eq!(t.events("sched"), ["sched_process_exec", "sched_process_fork", "sched_switch"]);
        assert_eq!(t.syscalls(), ["execve", "getpid", "open", "openat"]);
        assert_eq!(t.events("nope"), Vec::<String>::new());
        assert_eq!(t.events(".."), Vec::<String>::new());
        assert_eq!(t.event_id("syscalls", "sys_enter_open").unwrap(), 784);
        assert_eq!(t.event_id("sched", "sched_switch").unwrap(), 372);
        let f = t.event_format("syscalls", "sys_exit_openat").unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sys_exit_openat", 781));
        assert_eq!(f.field("ret").map(|r| (r.offset, r.size, r.signed)), Some((16, 8, true)));
        assert!(!t.mounted_by_us());
    }

    #[test]
    fn unknown_event_suggests_close_names() {
        let t = fixtures();
        let err = t.event_id("syscalls", "sys_enter_opn").unwrap_err();
        match &err {
            TracefsError::NoEvent { category, name, close, .. } => {
                assert_eq!((category.as_str(), name.as_str()), ("syscalls", "sys_enter_opn"));
                assert_eq!(close, &["sys_enter_open"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let dir = t.root().join("events/syscalls");
        assert_eq!(
            err.to_string(),
            format!(
                "no tracepoint `syscalls/sys_enter_opn` in {}; did you mean `sys_enter_open`?",
                dir.display()
            )
        );
        let err = t.event_format("shed", "sched_switch").unwrap_err();
        match err {
            TracefsError::NoCategory { category, close, .. } => {
                assert_eq!(category, "shed");
                assert_eq!(close, ["sched"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(t.event_id("syscalls", "../sched"), Err(TracefsError::NoEvent { .. })));
        assert!(matches!(t.event_id("", "x"), Err(TracefsError::NoCategory { .. })));
    }

    #[test]
    fn bad_files_are_reported_with_their_path() {
        let dir = std::env::temp_dir().join(format!("tracefs-test-{}", std::process::id()));
        let ev = dir.join("events/cat/ev");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::write(ev.join("id"), "twelve\n").unwrap();
        std::fs::write(ev.join("format"), "name: ev\nID: 12\nformat:\n\tfield:int x;\toffset:0;\n").unwrap();
        let t = Tracefs::at(&dir);
        match t.event_id("cat", "ev") {
            Err(TracefsError::BadId { path, text }) => {
                assert_eq!(path, ev.join("id"));
                assert_eq!(text, "twelve\n");
            }
            other => panic!("unexpected {other:?}"),
        }
        match t.event_format("cat", "ev") {
            Err(TracefsError::Format { path, line, .. }) => {
                assert_eq!(path, Some(ev.join("format")));
                assert_eq!(line, 4);
            }
            other => panic!("unexpected {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn close_match_ranking() {
        let names: Vec<String> = ["sys_enter_open", "sys_enter_openat", "sys_enter_close", "sys_enter_read"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(close_matches("sys_enter_opn", &names), ["sys_enter_open"]);
        assert_eq!(close_matches("sys_enter_rea", &names), ["sys_enter_read"]);
        // Prefix matches only: shortest first, then in name order.
        assert_eq!(
            close_matches("sys_enter", &names),
            ["sys_enter_open", "sys_enter_read", "sys_enter_close", "sys_enter_openat"]
        );
        assert_eq!(close_matches("sys_entr_opn", &names), ["sys_enter_open"]);
        assert_eq!(close_matches("sys_enter_open", &names), ["sys_enter_openat"]);
        assert_eq!(close_matches("zzz", &names), Vec::<String>::new());
    }

    #[test]
    fn mounts_parsing() {
        let mounts = "sysfs /sys sysfs rw 0 0\n\
                      debugfs /sys/kernel/debug debugfs rw 0 0\n\
                      nodev /mnt/my\\040trace tracefs rw 0 0\n\
                      garbage\n\
                      nodev /sys/kernel/tracing tracefs rw,relatime 0 0\n";
        assert_eq!(
            mount_candidates(mounts),
            [
                PathBuf::from("/mnt/my trace"),
                PathBuf::from("/sys/kernel/tracing"),
                PathBuf::from("/sys/kernel/debug/tracing")
            ]
        );
        assert_eq!(mount_candidates(""), Vec::<PathBuf>::new());
        assert_eq!(unescape_mount_path(r"a\011b\134c\0"), "a\tb\\c\\0");
    }

    /// Keeps the temporary mount of one test out of the other's /proc/mounts.
    static MOUNT_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Needs root: finds tracefs, or mounts it at /sys/kernel/tracing.
    #[test]
    fn open_on_this_machine() {
        let _serial = MOUNT_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let before = std::fs::read_to_string(PROC_MOUNTS).unwrap();
        let was_mounted = mount_candidates(&before).iter().any(|p| p.join("events").is_dir());
        let t = Tracefs::open().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.mounted_by_us(), !was_mounted);
        let mounts = std::fs::read_to_string(PROC_MOUNTS).unwrap();
        let listed = mounts.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 2
                && (w[2] == "tracefs" && Path::new(&unescape_mount_path(w[1])) == t.root()
                    || w[2] == "debugfs" && Path::new(&unescape_mount_path(w[1])).join("tracing") == t.root())
        });
        assert!(listed, "{} is not a tracefs mount in /proc/mounts", t.root().display());
        let direct = std::fs::read_to_string(t.root().join("events/syscalls/sys_enter_open/id")).unwrap();
        assert_eq!(t.event_id("syscalls", "sys_enter_open").unwrap(), direct.trim().parse::<u32>().unwrap());
        let f = t.event_format("syscalls", "sys_enter_open").unwrap();
        assert_eq!(f.id.to_string(), direct.trim());
        assert!(t.syscalls().iter().any(|s| s == "openat"));
        assert!(t.categories().iter().any(|s| s == "sched"));
    }

    /// Needs root: mounts a second tracefs instance on a fresh directory.
    #[test]
    fn mount_on_a_fresh_directory() {
        let _serial = MOUNT_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("tracefs-mount-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        mount_tracefs(&dir).unwrap_or_else(|e| panic!("{e}"));
        let ours = Tracefs::at(&dir);
        let direct = std::fs::read_to_string(dir.join("events/syscalls/sys_enter_openat/id"));
        let id = ours.event_id("syscalls", "sys_enter_openat");
        let status = std::process::Command::new("umount").arg(&dir).status().unwrap();
        std::fs::remove_dir(&dir).unwrap();
        assert!(status.success());
        assert_eq!(id.unwrap(), direct.unwrap().trim().parse::<u32>().unwrap());
        let missing = dir.join("missing");
        assert_eq!(mount_tracefs(&missing), Err(Errno::ENOENT));
        let err = TracefsError::Mount { target: missing.clone(), errno: Errno::ENOENT };
        assert_eq!(
            err.to_string(),
            format!(
                "tracefs is not mounted and mounting it at {} failed (ENOENT: No such file or directory); \
                 the directory does not exist: is sysfs mounted at /sys? (`mount -t sysfs sysfs /sys`)",
                missing.display()
            )
        );
    }
}
