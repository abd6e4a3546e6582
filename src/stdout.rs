//! Where the trace's lines go: trace's stdout, written so that neither the
//! command's output nor the trace is lost, and so that a stalled reader never
//! holds trace once it was told to stop.
//!
//! - **A regular file the command writes too** (`trace cat f > out.txt`): the
//!   command inherits trace's stdout, one open file and one file position for
//!   both. write(2) takes the position's lock, but copy_file_range(2) and
//!   sendfile(2) (cat, cp, Python's shutil use them) read the position, copy,
//!   then store it back without that lock (fs/read_write.c), so a trace line
//!   written meanwhile is overwritten, or overwrites the command's. Such a trace
//!   is held in an unnamed file beside the output (O_TMPFILE; in memory where
//!   that cannot be) and written after the command's output,
//!   when the trace ends (also on Ctrl-C or an error). A pipe or a terminal has
//!   no position and is written at once, as is a file nobody else writes
//!   (`-p`, `--watch`).
//! - **A stalled reader** (a terminal stopped with Ctrl-S, a pipe nobody
//!   reads): a write waits, as any program's does, until a stop signal comes;
//!   from then on a write that takes nothing for a second ([`STALLED`]) is
//!   given up ([`crate::signals`] interrupts it), and its size is told on
//!   stderr, not waited on.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use crate::signals;

/// The trace's stdout.
pub struct TraceOut {
    held: Option<File>,
    /// Bytes not written because the reader stalled after a stop signal.
    given_up: u64,
}

impl TraceOut {
    /// Trace's stdout; `shared` when the traced command inherits it (then a
    /// regular file is held until the end).
    pub fn new(shared: bool) -> TraceOut {
        let held =
            (shared && stdout_is_regular_file()).then(|| file_beside_stdout().or_else(memory_file)).flatten();
        TraceOut { held, given_up: 0 }
    }

    /// Writes what was held, and tells what could not be written.
    fn finish(&mut self) -> io::Result<()> {
        if let Some(mut held) = self.held.take() {
            held.rewind()?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = held.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                write_all_fd1(&buf[..n], &mut self.given_up)?;
            }
        }
        if self.given_up > 0 {
            say(&format!(
                "trace: the trace's reader stopped reading and trace was told to stop: the last {} bytes of \
                 the trace were not written\n",
                self.given_up
            ));
        }
        Ok(())
    }
}

impl Write for TraceOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.held {
            Some(file) => file.write(buf),
            None => {
                write_all_fd1(buf, &mut self.given_up)?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TraceOut {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            if e.kind() != io::ErrorKind::BrokenPipe {
                say(&format!("trace: writing the trace: {e}\n"));
            }
        }
    }
}

/// How long a reader may take nothing, once a stop signal has come, before
/// the rest of the trace is given up: a slow reader (`| grep`, ssh) takes
/// something in that time, a stalled one (Ctrl-S, a pipe nobody reads) does not.
const STALLED: Duration = Duration::from_secs(1);

/// Writes all of `buf` to `fd`. Once a stop signal has come, a write that
/// blocks is interrupted every so often (see [`crate::signals`]), and after
/// [`STALLED`] without progress the rest is given up: None, or Some with what
/// was written.
fn write_all_or_give_up(fd: i32, mut buf: &[u8]) -> io::Result<Option<usize>> {
    let total = buf.len();
    let mut progress = Instant::now();
    while !buf.is_empty() {
        // SAFETY: fds 1 and 2 stay open for the life of the process; borrowed for one call.
        let out = unsafe { BorrowedFd::borrow_raw(fd) };
        match nix::unistd::write(out, buf) {
            Ok(n) => {
                buf = &buf[n..];
                progress = Instant::now();
            }
            Err(nix::Error::EINTR) if signals::stopping() && progress.elapsed() >= STALLED => {
                return Ok(Some(total - buf.len()));
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Writes all of `buf` to fd 1, or counts in `given_up` what a stalled reader
/// did not take (then, all that follows).
fn write_all_fd1(buf: &[u8], given_up: &mut u64) -> io::Result<()> {
    if *given_up > 0 {
        *given_up += buf.len() as u64;
        return Ok(());
    }
    if let Some(written) = write_all_or_give_up(1, buf)? {
        *given_up += (buf.len() - written) as u64;
    }
    Ok(())
}

/// `eprintln!` that never panics: [`say`] with a line end.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::stdout::say(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes a message to stderr. A message that cannot be written (`2>/dev/full`,
/// a terminal hung up) is dropped: eprint! would panic, and with panic=abort
/// kill trace with SIGABRT in the middle of its work, its command orphaned.
/// Once a stop signal has come, a stalled terminal is not waited on either.
pub fn say(msg: &str) {
    let _ = write_all_or_give_up(2, msg.as_bytes());
}

fn stdout_is_regular_file() -> bool {
    let out = io::stdout();
    nix::sys::stat::fstat(out.as_raw_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// An unnamed file (O_TMPFILE) in the directory of the file stdout is, on the
/// same disk, so that a long trace (`trace -f make > log`) does not fill
/// memory; None where that directory or its filesystem cannot have one.
fn file_beside_stdout() -> Option<File> {
    let path = std::fs::read_link("/proc/self/fd/1").ok()?;
    let dir = path.parent()?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .mode(0o600)
        .open(dir)
        .ok()
}

/// An unnamed file in memory (memfd), or None where the kernel has none (the
/// trace is then written at once).
fn memory_file() -> Option<File> {
    let fd =
        nix::sys::memfd::memfd_create(c"trace-output", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC).ok()?;
    // SAFETY: the descriptor is new and owned by nobody else.
    Some(unsafe { File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) })
}
