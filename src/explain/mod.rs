//! Teaching mode (`--explain`): an strace-like account of what trace asks of the
//! kernel to set up tracing, written on stderr before the trace.
//!
//! One mechanism: the functions that make the system calls record them, right
//! after the call, with the arguments they passed and the result the kernel gave
//! (`sys_bpf` in [`crate::bpf`], `perf_event_open` and the ioctls in
//! [`crate::perf`], the ring mmaps, and the reads of tracefs, sysfs and
//! /proc/kallsyms). Between those lines the session adds [`note`]s and program
//! [`listing`]s, built by [`story`] from the plan.
//!
//! Nothing is written unless [`enable`] (or [`record`]) was called on the current
//! thread: a session runs on one thread, and each test thread has its own
//! recorder. Lines are written as the calls happen, so their order is the order
//! of the calls.
//!
//! Line shapes:
//! - `bpf(BPF_MAP_CREATE, {...}) = 3`, `ioctl(7, PERF_EVENT_IOC_SET_BPF, 5) = 0`:
//!   a system call and its result (`= -1 ENOENT (No such file or directory)` on failure);
//! - `read("/sys/.../id") = "784\n"`: a file read whole, with its contents when short;
//! - `# text`: a note;
//! - four spaces, then a program listing line.

pub mod story;

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;

thread_local! {
    static SINK: RefCell<Option<Box<dyn Write>>> = const { RefCell::new(None) };
}

/// File contents up to this many bytes are quoted in a `read(...)` line; longer
/// ones are summarised by their size.
pub const QUOTE_MAX: usize = 64;

/// Starts recording on this thread into `sink`.
pub fn enable(sink: Box<dyn Write>) {
    SINK.with(|s| *s.borrow_mut() = Some(sink));
}

/// Starts recording on this thread to stderr.
pub fn enable_stderr() {
    enable(Box::new(io::stderr()));
}

/// Stops recording on this thread.
pub fn disable() {
    SINK.with(|s| *s.borrow_mut() = None);
}

/// Is this thread recording?
pub fn enabled() -> bool {
    SINK.with(|s| s.borrow().is_some())
}

/// An in-memory recording, for tests and for callers that want the text.
#[derive(Clone, Default)]
pub struct Recording(Rc<RefCell<Vec<u8>>>);

impl Recording {
    /// Everything recorded so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts recording on this thread into memory; the returned handle reads it.
pub fn record() -> Recording {
    let rec = Recording::default();
    enable(Box::new(rec.clone()));
    rec
}

/// Writes one line (a newline is added) if recording. A failing sink (a closed
/// stderr) is ignored: the explanation must never stop the trace.
fn write_line(line: &str) {
    SINK.with(|s| {
        if let Some(w) = s.borrow_mut().as_mut() {
            let _ = writeln!(w, "{line}");
            let _ = w.flush();
        }
    });
}

/// Records a system call: `call` is its text up to the closing parenthesis
/// (built only when recording), `result` its value or the errno it failed with.
pub fn syscall(call: impl FnOnce() -> String, result: Result<String, i32>) {
    if enabled() {
        write_line(&format!("{} = {}", call(), result_text(result)));
    }
}

/// `3`, `0x7f12...`, or `-1 ENOENT (No such file or directory)`.
pub fn result_text(result: Result<String, i32>) -> String {
    match result {
        Ok(v) => v,
        Err(errno) => errno_text(errno),
    }
}

/// How strace shows a failed call: `-1 EFAULT (Bad address)` (glibc's strerror
/// text, as strace prints it).
pub fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    let desc = crate::errno::description(i64::from(errno))
        .unwrap_or_else(|| text.split(" (os error").next().unwrap_or(&text));
    match crate::errno::name(i64::from(errno)) {
        Some(name) => format!("-1 {name} ({desc})"),
        None => format!("-1 errno {errno} ({desc})"),
    }
}

/// Records a note: each line of `text` becomes a `# ` line.
pub fn note(text: impl FnOnce() -> String) {
    if enabled() {
        for line in text().lines() {
            write_line(format!("# {line}").trim_end());
        }
    }
}

/// Records a program listing, each line indented by four spaces.
pub fn listing(text: impl FnOnce() -> String) {
    if enabled() {
        for line in text().lines() {
            write_line(&format!("    {line}"));
        }
    }
}

/// Records a whole-file read: `read("/path") = "784\n"` (short contents quoted),
/// `read("/path") = 1021 bytes`, or the errno it failed with.
pub fn read_file(path: &Path, result: &io::Result<String>) {
    if !enabled() {
        return;
    }
    let call = format!("read({})", quote(path.as_os_str().as_encoded_bytes()));
    let shown = match result {
        Ok(text) if text.len() <= QUOTE_MAX => Ok(quote(text.as_bytes())),
        Ok(text) => Ok(format!("{} bytes", text.len())),
        Err(e) => Err(e.raw_os_error().unwrap_or(0)),
    };
    syscall(|| call, shown);
}

/// A C string literal the way strace prints one: `"a\n"`, with `\"`, `\\`,
/// `\t`, `\n` and other control or non-ASCII bytes as octal escapes
/// ([`crate::escape`]).
pub fn quote(bytes: &[u8]) -> String {
    crate::escape::quote(bytes)
}

/// The bytes of a fixed-size, NUL-padded name field (`map_name`, `prog_name`),
/// up to the first NUL, quoted.
pub fn quote_name(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    quote(&field[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_unless_enabled() {
        disable();
        assert!(!enabled());
        let mut built = false;
        syscall(
            || {
                built = true;
                "bpf()".into()
            },
            Ok("0".into()),
        );
        assert!(!built, "the text is not even built");
        let rec = record();
        syscall(|| "ioctl(7, PERF_EVENT_IOC_SET_BPF, 5)".into(), Ok("0".into()));
        syscall(|| "bpf(BPF_PROG_LOAD, {})".into(), Err(libc::EACCES));
        note(|| "two\nlines".into());
        listing(|| "0: (b7) r0 = 0\n1: (95) exit\n".into());
        disable();
        note(|| "not recorded".into());
        assert_eq!(
            rec.text(),
            "ioctl(7, PERF_EVENT_IOC_SET_BPF, 5) = 0\n\
             bpf(BPF_PROG_LOAD, {}) = -1 EACCES (Permission denied)\n\
             # two\n# lines\n\
             \x20   0: (b7) r0 = 0\n\
             \x20   1: (95) exit\n"
        );
    }

    #[test]
    fn errno_texts() {
        assert_eq!(errno_text(libc::EFAULT), "-1 EFAULT (Bad address)");
        assert_eq!(errno_text(libc::ENOENT), "-1 ENOENT (No such file or directory)");
        assert_eq!(errno_text(libc::EINVAL), "-1 EINVAL (Invalid argument)");
        assert_eq!(errno_text(libc::ENOMEM), "-1 ENOMEM (Cannot allocate memory)");
        assert_eq!(result_text(Ok("0x7f00".into())), "0x7f00");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"784\n"), "\"784\\n\"");
        assert_eq!(quote(b"a\"b\\c\td"), "\"a\\\"b\\\\c\\td\"");
        assert_eq!(quote(&[0x01, 0xff]), "\"\\1\\377\"");
        assert_eq!(quote_name(b"events\0\0\0\0\0\0\0\0\0\0"), "\"events\"");
        assert_eq!(quote_name(b"0123456789abcdef"), "\"0123456789abcdef\"");
    }

    #[test]
    fn file_reads() {
        let rec = record();
        read_file(Path::new("/t/id"), &Ok("784\n".into()));
        read_file(Path::new("/t/format"), &Ok("x".repeat(QUOTE_MAX + 1)));
        read_file(Path::new("/t/none"), &Err(io::Error::from_raw_os_error(libc::ENOENT)));
        disable();
        assert_eq!(
            rec.text(),
            format!(
                "read(\"/t/id\") = \"784\\n\"\nread(\"/t/format\") = {} bytes\n\
                 read(\"/t/none\") = -1 ENOENT (No such file or directory)\n",
                QUOTE_MAX + 1
            )
        );
    }
}
