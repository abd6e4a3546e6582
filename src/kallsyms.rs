//! Kernel functions from /proc/kallsyms: is `vfs_open` there, and at what address?
//! And from tracefs `available_filter_functions`: may it be traced?

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel lists its symbols (Documentation/filesystems/proc.rst).
pub const KALLSYMS: &str = "/proc/kallsyms";

/// The kernel's text symbols.
#[derive(Debug, Default)]
pub struct Kallsyms {
    functions: HashMap<String, u64>,
}

impl Kallsyms {
    /// Reads /proc/kallsyms.
    pub fn load() -> io::Result<Kallsyms> {
        let path = std::path::Path::new(KALLSYMS);
        let read = std::fs::read_to_string(path);
        crate::explain::read_file(path, &read);
        Ok(Self::parse(&read?))
    }

    /// Parses kallsyms text: `ffffffff8123 T vfs_open` or `... t ext4_file_open\t[ext4]`.
    /// Keeps text symbols (t/T/w/W); the first address of a name wins.
    pub fn parse(text: &str) -> Kallsyms {
        let mut functions = HashMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let addr = u64::from_str_radix(addr, 16).unwrap_or(0);
            functions.entry(name.to_string()).or_insert(addr);
        }
        Kallsyms { functions }
    }

    /// Functions known by name only (address 0), e.g. found in the kernel's BTF.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Kallsyms {
        Kallsyms { functions: names.iter().map(|n| (n.as_ref().to_string(), 0)).collect() }
    }

    /// The address of a kernel function (0 when kallsyms hides addresses).
    pub fn function(&self, name: &str) -> Option<u64> {
        self.functions.get(name).copied()
    }

    /// Functions close to a misspelled name.
    pub fn close_matches(&self, name: &str) -> Vec<String> {
        crate::util::close_matches(name, self.functions.keys().map(String::as_str))
    }

    /// All function names (for `trace -l`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }
}

/// The kernel's list of functions it lets tracers attach to: tracefs
/// `available_filter_functions` (kernel/trace/ftrace.c), one `name` or
/// `name [module]` per line. A function in /proc/kallsyms but not here is
/// marked notrace or noinstr, or is otherwise kept from tracing; a kprobe on it
/// fails or is refused. Reading the file needs root (and may be refused even
/// then, e.g. under lockdown or in some VMs): callers then rely on kallsyms alone.
#[derive(Debug, Default)]
pub struct FilterFunctions {
    names: HashSet<String>,
    path: PathBuf,
}

impl FilterFunctions {
    /// The file's name inside tracefs.
    pub const FILE: &'static str = "available_filter_functions";

    /// Reads `available_filter_functions` of the tracefs mounted at `tracefs_root`.
    pub fn load(tracefs_root: &Path) -> io::Result<FilterFunctions> {
        let path = tracefs_root.join(Self::FILE);
        let text = std::fs::read_to_string(&path)?;
        Ok(Self::parse(&text, path))
    }

    /// Parses the file's text; `path` is where it came from (for messages).
    pub fn parse(text: &str, path: PathBuf) -> FilterFunctions {
        let names = text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
        FilterFunctions { names, path }
    }

    /// Whether the kernel lets `name` be traced.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Traceable functions close to `name`.
    pub fn close_matches(&self, name: &str) -> Vec<String> {
        crate::util::close_matches(name, self.names.iter().map(String::as_str))
    }

    /// Where the list was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filter_functions_with_and_without_modules() {
        let f = FilterFunctions::parse(
            "vfs_open\ndo_int3\next4_file_open [ext4]\n\n",
            PathBuf::from("/t/available_filter_functions"),
        );
        assert!(f.contains("vfs_open"));
        assert!(f.contains("ext4_file_open"));
        assert!(!f.contains("[ext4]"));
        assert!(!f.contains("exc_int3"));
        assert_eq!(f.close_matches("vfs_opn"), vec!["vfs_open"]);
        assert_eq!(f.path(), Path::new("/t/available_filter_functions"));
    }

    #[test]
    fn filter_functions_of_this_machine_or_a_refusal() {
        // Readable where the kernel allows it; refused with EPERM on the project's VMs.
        match FilterFunctions::load(Path::new("/sys/kernel/tracing")) {
            Ok(f) => assert!(f.contains("vfs_open")),
            Err(e) => assert!(
                matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOENT)),
                "{e}"
            ),
        }
    }

    #[test]
    fn parses_text_symbols_only() {
        let k = Kallsyms::parse(
            "ffffffff81000000 T _stext\nffffffff81234560 T vfs_open\nffffffff82000000 D some_data\n\
             ffffffffc0001000 t ext4_file_open\t[ext4]\n",
        );
        assert_eq!(k.function("vfs_open"), Some(0xffffffff81234560));
        assert_eq!(k.function("ext4_file_open"), Some(0xffffffffc0001000));
        assert_eq!(k.function("some_data"), None);
        assert_eq!(k.close_matches("vfs_opn"), vec!["vfs_open"]);
    }

    #[test]
    fn names_alone_have_address_zero() {
        let k = Kallsyms::from_names(&["vfs_open"]);
        assert_eq!(k.function("vfs_open"), Some(0));
        assert_eq!(k.function("ext4_file_open"), None);
    }
}
