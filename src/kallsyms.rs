//! Kernel functions from /proc/kallsyms: is `vfs_open` there, and at what address?

use std::collections::HashMap;
use std::io;

/// The kernel's text symbols.
#[derive(Debug, Default)]
pub struct Kallsyms {
    functions: HashMap<String, u64>,
}

impl Kallsyms {
    /// Reads /proc/kallsyms.
    pub fn load() -> io::Result<Kallsyms> {
        Ok(Self::parse(&std::fs::read_to_string("/proc/kallsyms")?))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
