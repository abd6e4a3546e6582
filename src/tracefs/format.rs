//! Parser for tracefs `events/<category>/<name>/format` files.
//!
//! The text looks like this (fields are tab-indented; a blank line separates the
//! fields every event shares from the event's own):
//!
//! ```text
//! name: sys_enter_open
//! ID: 784
//! format:
//!     field:unsigned short common_type;   offset:0;   size:2; signed:0;
//!     ...
//!
//!     field:const char * filename;    offset:16;  size:8; signed:0;
//!
//! print fmt: "filename: 0x%08lx", ...
//! ```
//!
//! Everything here is pure: it takes text and returns values or an error naming the
//! line that could not be understood.

use super::TracefsError;

/// One field of a tracepoint record, as the format file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name (`filename`, `prev_comm`).
    pub name: String,
    /// The C type without the name: `const char *`, `char[16]` for arrays,
    /// `__data_loc char[]` for dynamic arrays.
    pub type_name: String,
    /// Byte offset from the start of the record (the start of `common_type`).
    pub offset: u32,
    /// Size in bytes (for `__data_loc` fields: 4, the size of the locator).
    pub size: u32,
    /// Whether the kernel declares the value signed.
    pub signed: bool,
    /// A `__data_loc` field: the 32-bit value is `len << 16 | offset` of the data
    /// inside the record (see [`Field::data_loc_parts`]).
    pub data_loc: bool,
    /// The element count of a fixed array (`char comm[16]` -> 16); None for
    /// scalars, dynamic arrays, and arrays whose length the kernel prints as an
    /// expression (`__u8 saddr[sizeof(struct sockaddr_in6)]`).
    pub array_len: Option<u32>,
}

/// C qualifiers that do not change what a pointer points to, for
/// [`Field::is_user_string`].
const QUALIFIERS: [&str; 3] = ["const", "volatile", "__user"];

impl Field {
    /// True for a pointer to characters: `char *`, `const char *` (exactly one star).
    /// `const char *const * argv` (a pointer to pointers) and `unsigned char *`
    /// (bytes) are not strings.
    pub fn is_user_string(&self) -> bool {
        if self.data_loc || self.array_len.is_some() || self.type_name.contains('[') {
            return false;
        }
        let spaced = self.type_name.replace('*', " * ");
        let words: Vec<&str> = spaced.split_whitespace().filter(|w| !QUALIFIERS.contains(w)).collect();
        words == ["char", "*"]
    }

    /// True for a `__rel_loc` field (kernel 5.19+): like `__data_loc`, but the
    /// offset in the value counts from the end of the field, not the record start.
    pub fn is_rel_loc(&self) -> bool {
        self.type_name.starts_with("__rel_loc")
    }

    /// Splits the 32-bit value of a `__data_loc` field into (offset, length):
    /// the kernel stores `length << 16 | offset`.
    pub fn data_loc_parts(value: u32) -> (u32, u32) {
        (value & 0xffff, value >> 16)
    }
}

/// A parsed format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// The event name (`sys_enter_open`).
    pub name: String,
    /// The id used as `config` of a `PERF_TYPE_TRACEPOINT` event.
    pub id: u32,
    /// The fields every event starts with (`common_type`, `common_pid`, ...).
    pub common_fields: Vec<Field>,
    /// The event's own fields, in record order.
    pub fields: Vec<Field>,
    /// The kernel's printf-like description of the event (`"filename: %s", ...`).
    pub print_fmt: String,
}

impl EventFormat {
    /// The field called `name`, looking at the event's own fields first, then the
    /// common ones.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().chain(&self.common_fields).find(|f| f.name == name)
    }
}

/// Where the parser is in the file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// `name:` and `ID:` lines, before `format:`.
    Header,
    /// Fields before the first blank line.
    Common,
    /// Fields after it.
    Own,
    /// After `print fmt:`: nothing more may follow.
    Done,
}

/// What has been read so far.
struct Partial {
    name: Option<String>,
    id: Option<u32>,
    common: Vec<Field>,
    own: Vec<Field>,
    print_fmt: Option<String>,
    section: Section,
}

/// Parses the text of a format file. Errors name the 1-based line that is wrong;
/// no input makes it panic.
pub fn parse_format(text: &str) -> Result<EventFormat, TracefsError> {
    let mut p = Partial {
        name: None,
        id: None,
        common: vec![],
        own: vec![],
        print_fmt: None,
        section: Section::Header,
    };
    for (i, line) in text.lines().enumerate() {
        parse_line(&mut p, line).map_err(|msg| TracefsError::Format { path: None, line: i + 1, msg })?;
    }
    finish(p)
}

/// Checks that every part was present.
fn finish(p: Partial) -> Result<EventFormat, TracefsError> {
    let missing = |what: &str| TracefsError::Format {
        path: None,
        line: 0,
        msg: format!("no `{what}` line (truncated?)"),
    };
    let name = p.name.ok_or_else(|| missing("name:"))?;
    let id = p.id.ok_or_else(|| missing("ID:"))?;
    if p.section == Section::Header {
        return Err(missing("format:"));
    }
    if p.common.is_empty() {
        return Err(missing("field:"));
    }
    let print_fmt = p.print_fmt.ok_or_else(|| missing("print fmt:"))?;
    Ok(EventFormat { name, id, common_fields: p.common, fields: p.own, print_fmt })
}

/// Reads one line into `p`; the error is a message without the line number.
fn parse_line(p: &mut Partial, line: &str) -> Result<(), String> {
    let trimmed = line.trim();
    if p.section == Section::Done {
        return match trimmed.is_empty() {
            true => Ok(()),
            false => Err(format!("unexpected text after `print fmt:`: `{}`", shorten(trimmed))),
        };
    }
    if let Some(rest) = trimmed.strip_prefix("field:") {
        return add_field(p, rest);
    }
    if trimmed.is_empty() {
        if p.section == Section::Common && !p.common.is_empty() {
            p.section = Section::Own;
        }
        return Ok(());
    }
    if let Some(rest) = trimmed.strip_prefix("print fmt:") {
        p.print_fmt = Some(rest.trim().to_string());
        p.section = Section::Done;
        return Ok(());
    }
    parse_header_line(p, trimmed)
}

/// `name:`, `ID:` and `format:`, which only appear before the fields.
fn parse_header_line(p: &mut Partial, trimmed: &str) -> Result<(), String> {
    if p.section != Section::Header {
        return Err(format!("expected `field:` or `print fmt:`, found `{}`", shorten(trimmed)));
    }
    if let Some(rest) = trimmed.strip_prefix("name:") {
        let name = rest.trim();
        if name.is_empty() {
            return Err("empty event name".into());
        }
        p.name = Some(name.to_string());
    } else if let Some(rest) = trimmed.strip_prefix("ID:") {
        p.id = Some(parse_u32("ID", rest)?);
    } else if trimmed == "format:" {
        p.section = Section::Common;
    } else {
        return Err(format!("unexpected line `{}`", shorten(trimmed)));
    }
    Ok(())
}

/// Adds the field described after `field:` to the current section.
fn add_field(p: &mut Partial, rest: &str) -> Result<(), String> {
    let field = parse_field(rest)?;
    match p.section {
        Section::Header => Err("`field:` before `format:`".into()),
        Section::Common => {
            p.common.push(field);
            Ok(())
        }
        _ => {
            p.own.push(field);
            Ok(())
        }
    }
}

/// Parses `TYPE NAME; offset:N; size:N; signed:N;` (the text after `field:`).
fn parse_field(rest: &str) -> Result<Field, String> {
    let mut parts = rest.split(';');
    let decl = parts.next().unwrap_or_default().trim();
    let (mut offset, mut size, mut signed) = (None, None, None);
    for part in parts.map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key, value)) = part.split_once(':') else {
            return Err(format!("expected `key:value`, found `{}`", shorten(part)));
        };
        match key.trim() {
            "offset" => offset = Some(parse_u32("offset", value)?),
            "size" => size = Some(parse_u32("size", value)?),
            "signed" => signed = Some(parse_bool("signed", value)?),
            _ => {} // a future attribute: ignore it
        }
    }
    let (offset, size) = match (offset, size) {
        (Some(o), Some(s)) => (o, s),
        _ => return Err(format!("field `{}` lacks `offset:` or `size:` (truncated line?)", shorten(decl))),
    };
    let signed =
        signed.ok_or_else(|| format!("field `{}` lacks `signed:` (truncated line?)", shorten(decl)))?;
    if offset.checked_add(size).is_none() {
        return Err(format!("field `{}` ends beyond 4 GiB (offset {offset} + size {size})", shorten(decl)));
    }
    let (type_name, name, array_len) = split_decl(decl)?;
    let data_loc = type_name.starts_with("__data_loc");
    Ok(Field { name, type_name, offset, size, signed, data_loc, array_len })
}

/// Splits a C declaration into (type, name, array length):
/// `const char * filename` -> (`const char *`, `filename`, None);
/// `char comm[16]` -> (`char[16]`, `comm`, Some(16));
/// `__data_loc char[] name` -> (`__data_loc char[]`, `name`, None).
fn split_decl(decl: &str) -> Result<(String, String, Option<u32>), String> {
    let (before, bracket) = match decl.strip_suffix(']') {
        Some(inner_and_before) => {
            let open = matching_open_bracket(inner_and_before)
                .ok_or_else(|| format!("unbalanced `]` in `{}`", shorten(decl)))?;
            (&inner_and_before[..open], Some(&inner_and_before[open + 1..]))
        }
        None => (decl, None),
    };
    let before = before.trim_end();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let name_start =
        before.char_indices().rev().find(|&(_, c)| !is_ident(c)).map_or(0, |(i, c)| i + c.len_utf8());
    let (ty, name) = (before[..name_start].trim(), &before[name_start..]);
    if ty.is_empty() || name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("cannot split `{}` into a type and a name", shorten(decl)));
    }
    Ok(match bracket {
        Some(inner) => (format!("{ty}[{inner}]"), name.to_string(), inner.trim().parse().ok()),
        None => (ty.to_string(), name.to_string(), None),
    })
}

/// The index of the `[` that the final (already removed) `]` closes.
fn matching_open_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' if depth == 0 => return Some(i),
            '[' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn parse_u32(what: &str, value: &str) -> Result<u32, String> {
    let value = value.trim();
    value
        .parse()
        .map_err(|_| format!("`{what}:` is not a number from 0 to {}: `{}`", u32::MAX, shorten(value)))
}

fn parse_bool(what: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("`{what}:` must be 0 or 1, not `{}`", shorten(other))),
    }
}

/// The first 60 characters of `s`, for error messages about arbitrary input.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> String {
        let full = format!("{}/tests/fixtures/tracefs/events/{path}/format", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    fn field(name: &str, ty: &str, offset: u32, size: u32, signed: bool) -> Field {
        Field {
            name: name.into(),
            type_name: ty.into(),
            offset,
            size,
            signed,
            data_loc: ty.starts_with("__data_loc"),
            array_len: None,
        }
    }

    fn common() -> Vec<Field> {
        vec![
            field("common_type", "unsigned short", 0, 2, false),
            field("common_flags", "unsigned char", 2, 1, false),
            field("common_preempt_count", "unsigned char", 3, 1, false),
            field("common_pid", "int", 4, 4, true),
        ]
    }

    #[test]
    fn sys_enter_open() {
        let f = parse_format(&fixture("syscalls/sys_enter_open")).unwrap();
        assert_eq!(f.name, "sys_enter_open");
        assert_eq!(f.id, 784);
        assert_eq!(f.common_fields, common());
        assert_eq!(
            f.fields,
            vec![
                field("__syscall_nr", "int", 8, 4, true),
                field("filename", "const char *", 16, 8, false),
                field("flags", "int", 24, 8, false),
                field("mode", "umode_t", 32, 8, false),
            ]
        );
        assert_eq!(
            f.print_fmt,
            r#""filename: 0x%08lx, flags: 0x%08lx, mode: 0x%08lx", ((unsigned long)(REC->filename)), ((unsigned long)(REC->flags)), ((unsigned long)(REC->mode))"#
        );
        assert!(f.field("filename").unwrap().is_user_string());
        assert!(!f.field("flags").unwrap().is_user_string());
        assert_eq!(f.field("common_pid").unwrap().offset, 4);
        assert_eq!(f.field("nope"), None);
    }

    #[test]
    fn sys_exit_open() {
        let f = parse_format(&fixture("syscalls/sys_exit_open")).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sys_exit_open", 783));
        assert_eq!(f.common_fields, common());
        assert_eq!(
            f.fields,
            vec![field("__syscall_nr", "int", 8, 4, true), field("ret", "long", 16, 8, true)]
        );
        assert_eq!(f.print_fmt, r#""0x%lx", REC->ret"#);
    }

    #[test]
    fn sys_enter_openat() {
        let f = parse_format(&fixture("syscalls/sys_enter_openat")).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sys_enter_openat", 782));
        assert_eq!(
            f.fields,
            vec![
                field("__syscall_nr", "int", 8, 4, true),
                field("dfd", "int", 16, 8, false),
                field("filename", "const char *", 24, 8, false),
                field("flags", "int", 32, 8, false),
                field("mode", "umode_t", 40, 8, false),
            ]
        );
        let strings: Vec<&str> =
            f.fields.iter().filter(|f| f.is_user_string()).map(|f| f.name.as_str()).collect();
        assert_eq!(strings, ["filename"]);
    }

    #[test]
    fn sys_enter_execve_argv_is_not_a_string() {
        let f = parse_format(&fixture("syscalls/sys_enter_execve")).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sys_enter_execve", 862));
        assert_eq!(
            f.fields,
            vec![
                field("__syscall_nr", "int", 8, 4, true),
                field("filename", "const char *", 16, 8, false),
                field("argv", "const char *const *", 24, 8, false),
                field("envp", "const char *const *", 32, 8, false),
            ]
        );
        assert!(f.field("filename").unwrap().is_user_string());
        assert!(!f.field("argv").unwrap().is_user_string());
        assert!(!f.field("envp").unwrap().is_user_string());
    }

    #[test]
    fn sched_process_exec_data_loc() {
        let f = parse_format(&fixture("sched/sched_process_exec")).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sched_process_exec", 365));
        assert_eq!(f.common_fields, common());
        assert_eq!(
            f.fields,
            vec![
                field("filename", "__data_loc char[]", 8, 4, false),
                field("pid", "pid_t", 12, 4, true),
                field("old_pid", "pid_t", 16, 4, true),
            ]
        );
        let filename = f.field("filename").unwrap();
        assert!(filename.data_loc);
        assert!(!filename.is_user_string());
        assert_eq!(filename.array_len, None);
        assert_eq!(
            f.print_fmt,
            r#""filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid"#
        );
    }

    #[test]
    fn sched_process_fork_two_data_locs() {
        let f = parse_format(&fixture("sched/sched_process_fork")).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sched_process_fork", 366));
        assert_eq!(
            f.fields,
            vec![
                field("parent_comm", "__data_loc char[]", 8, 4, false),
                field("parent_pid", "pid_t", 12, 4, true),
                field("child_comm", "__data_loc char[]", 16, 4, false),
                field("child_pid", "pid_t", 20, 4, true),
            ]
        );
        let locs: Vec<&str> = f.fields.iter().filter(|f| f.data_loc).map(|f| f.name.as_str()).collect();
        assert_eq!(locs, ["parent_comm", "child_comm"]);
    }

    #[test]
    fn sched_switch_arrays() {
        let f = parse_format(&fixture("sched/sched_switch")).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("sched_switch", 372));
        let comm =
            |name: &str, offset| Field { array_len: Some(16), ..field(name, "char[16]", offset, 16, false) };
        assert_eq!(
            f.fields,
            vec![
                comm("prev_comm", 8),
                field("prev_pid", "pid_t", 24, 4, true),
                field("prev_prio", "int", 28, 4, true),
                field("prev_state", "long", 32, 8, true),
                comm("next_comm", 40),
                field("next_pid", "pid_t", 56, 4, true),
                field("next_prio", "int", 60, 4, true),
            ]
        );
        assert!(!f.field("prev_comm").unwrap().is_user_string());
        assert!(f.print_fmt.starts_with(r#""prev_comm=%s prev_pid=%d"#));
        assert!(f.print_fmt.ends_with("REC->next_comm, REC->next_pid, REC->next_prio"));
    }

    #[test]
    fn event_without_own_fields() {
        let text = "name: e\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\nprint fmt: \"\"\n";
        let f = parse_format(text).unwrap();
        assert_eq!(f.common_fields, vec![field("common_type", "unsigned short", 0, 2, false)]);
        assert_eq!(f.fields, vec![]);
        assert_eq!(f.print_fmt, "\"\"");
    }

    #[test]
    fn declarations() {
        let ok = |d: &str| split_decl(d).unwrap();
        assert_eq!(ok("char * p"), ("char *".into(), "p".into(), None));
        assert_eq!(ok("char *p"), ("char *".into(), "p".into(), None));
        assert_eq!(ok("u8 buf[0]"), ("u8[0]".into(), "buf".into(), Some(0)));
        assert_eq!(
            ok("__u8 saddr[sizeof(struct sockaddr_in6)]"),
            ("__u8[sizeof(struct sockaddr_in6)]".into(), "saddr".into(), None)
        );
        assert_eq!(ok("__rel_loc char[] msg"), ("__rel_loc char[]".into(), "msg".into(), None));
        for bad in ["", "int", "x]", "int 9x", "int []", "* p["] {
            assert!(split_decl(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn user_strings() {
        let with = |ty: &str| field("x", ty, 0, 8, false).is_user_string();
        assert!(with("char *"));
        assert!(with("const char *"));
        assert!(with("const char*"));
        assert!(with("const char __user *"));
        assert!(!with("char **"));
        assert!(!with("char *const *"));
        assert!(!with("const unsigned char *"));
        assert!(!with("const void *"));
        assert!(!with("char"));
        assert!(!with("char[16]"));
        assert!(!with("__data_loc char[]"));
    }

    #[test]
    fn data_loc_and_rel_loc() {
        assert_eq!(Field::data_loc_parts(0x0012_0034), (0x34, 0x12));
        assert_eq!(Field::data_loc_parts(u32::MAX), (0xffff, 0xffff));
        let rel = parse_field("__rel_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;").unwrap();
        assert!(rel.is_rel_loc());
        assert!(!rel.data_loc);
        assert!(!field("x", "__data_loc char[]", 8, 4, false).is_rel_loc());
    }

    fn line_of(text: &str) -> Option<usize> {
        match parse_format(text) {
            Err(TracefsError::Format { line, .. }) => Some(line),
            _ => None,
        }
    }

    #[test]
    fn malformed_input_errors() {
        let good = fixture("syscalls/sys_enter_open");
        // Garbage of many shapes: each must be an error, never a panic.
        let cases: Vec<(String, Option<usize>)> = vec![
            (String::new(), Some(0)),
            ("\0\u{7f}\u{1b}[0m".into(), Some(1)),
            ("garbage\nmore garbage".into(), Some(1)),
            ("name: x\nID: 1\nformat:\n".into(), Some(0)),
            (good.replace("ID: 784", "ID: 99999999999999999999"), Some(2)),
            (good.replace("ID: 784", "ID: -1"), Some(2)),
            (good.replace("ID: 784", "ID:"), Some(2)),
            (good.replace("offset:16;", "offset:4294967296;"), Some(10)),
            (
                good.replace(
                    "size:8;\tsigned:0;\n\tfield:int flags",
                    "size:8;\tsigned:7;\n\tfield:int flags",
                ),
                Some(10),
            ),
            (good.replace("offset:16;\tsize:8;", "offset:4294967295;\tsize:8;"), Some(10)),
            (
                good.replace(
                    "\tfield:int flags;\toffset:24;\tsize:8;\tsigned:0;",
                    "\tfield:int flags;\toffset:24;",
                ),
                Some(11),
            ),
            (
                good.replace(
                    "\tfield:int flags;\toffset:24;\tsize:8;\tsigned:0;",
                    "\tfield:int flags;\toffset:24;\tsize:8;",
                ),
                Some(11),
            ),
            (good.replace("field:int flags;", "field:;"), Some(11)),
            (good.replace("field:int flags;", "field:flags;"), Some(11)),
            (good.replace("offset:24;", "offset 24;"), Some(11)),
            (good.replace("name: sys_enter_open", "name:"), Some(1)),
            (good.replace("format:\n", ""), Some(3)),
            (format!("{good}trailing words\n"), Some(15)),
            (good.replace("\tfield:int flags", "oops\n\tfield:int flags"), Some(11)),
        ];
        for (text, line) in &cases {
            assert_eq!(line_of(text), *line, "input: {text:?}");
        }
        // Truncated at every byte: each prefix before `print fmt:` must be an error.
        let cut = good.find("print fmt:").unwrap();
        for end in (0..cut).filter(|&i| good.is_char_boundary(i)) {
            assert!(parse_format(&good[..end]).is_err(), "prefix of {end} bytes parsed");
        }
        assert!(parse_format(&good).is_ok());
    }

    #[test]
    fn error_messages_name_the_line() {
        let good = fixture("syscalls/sys_enter_open");
        let err = parse_format(&good.replace("offset:16;", "offset:1e9;")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot parse a tracepoint format, line 10: `offset:` is not a number from 0 to 4294967295: `1e9`"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let good = fixture("syscalls/sys_enter_openat").into_bytes();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % bytes.len() as u64) as usize;
                bytes[at] = (seed >> 32) as u8;
            }
            let _ = parse_format(&String::from_utf8_lossy(&bytes));
        }
    }
}
