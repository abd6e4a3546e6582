//! Signals while tracing. SIGINT, SIGTERM and SIGHUP ask the trace to stop:
//! with a command, the command gets them and the trace ends when it does;
//! otherwise the trace ends at once. SIGCHLD says a child has changed.
//!
//! They are caught by handlers (not blocked and read from a signalfd) so that
//! they interrupt a write to a stalled stdout (a terminal stopped with Ctrl-S,
//! a pipe nobody reads): once a stop signal has come, trace never again waits on
//! its output (see [`crate::stdout`]). A handler only sets flags and writes a byte
//! to a pipe that the event loop polls.
//!
//! SIGHUP inherited as ignored stays ignored, for trace and the command:
//! `nohup trace ...` asks to survive the terminal's hangup. SIGINT and SIGTERM
//! always stop trace, also when inherited as ignored: a script's background job
//! (`trace --watch ./prog & ... kill -INT $!`) ignores SIGINT by the shell's
//! rule for jobs without job control, yet SIGINT is how a script stops it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

use nix::sys::signal::Signal;

/// The signals that ask the trace to stop.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Stop signals that came and were not taken yet: bit n is signal n.
static PENDING: AtomicU32 = AtomicU32::new(0);
/// A stop signal has come: from now on a write that blocks is given up.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// The write end of the wake-up pipe (-1: none).
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// How often a write blocked after a stop signal is interrupted, so that it
/// can be given up (SIGALRM from an interval timer).
const TICK_US: u32 = 250_000;

/// The installed handlers and the pipe they wake the event loop with.
pub struct Signals {
    wake_read: OwnedFd,
    _wake_write: OwnedFd,
}

impl Signals {
    /// Installs the handlers (sparing SIGHUP inherited as ignored).
    pub fn install() -> io::Result<Signals> {
        let (wake_read, wake_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        WAKE.store(wake_write.as_raw_fd(), Ordering::SeqCst);
        for sig in STOP_SIGNALS {
            if !(sig == Signal::SIGHUP && inherited_ignored(sig)) {
                set_handler(sig, on_stop, false)?;
            }
        }
        // Restarted: a child's end must not cut a write short.
        set_handler(Signal::SIGCHLD, on_child, true)?;
        // Not restarted: the tick exists to interrupt a blocked write.
        set_handler(Signal::SIGALRM, on_tick, false)?;
        Ok(Signals { wake_read, _wake_write: wake_write })
    }

    /// Readable when a signal has come.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake_read.as_fd()
    }

    /// The stop signals that came since the last call, in signal-number order.
    pub fn take(&self) -> Vec<Signal> {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.wake_read.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
        let bits = PENDING.swap(0, Ordering::SeqCst);
        STOP_SIGNALS.into_iter().filter(|&s| bits & (1 << s as u32) != 0).collect()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        WAKE.store(-1, Ordering::SeqCst);
    }
}

/// Whether a stop signal has come: a write that blocks is then given up.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Whether `sig` was ignored when trace started (it then stays ignored).
pub fn inherited_ignored(sig: Signal) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current one
    // into `old`, plain data that all-zero initialises.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig as libc::c_int, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

fn set_handler(sig: Signal, handler: extern "C" fn(libc::c_int), restart: bool) -> io::Result<()> {
    // SAFETY: the handlers below only touch atomics and make async-signal-safe
    // calls (write, setitimer), saving errno; the action is plain data.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        if sig == Signal::SIGCHLD {
            action.sa_flags |= libc::SA_NOCLDSTOP;
        }
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig as libc::c_int, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_stop(sig: libc::c_int) {
    PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    if !STOPPING.swap(true, Ordering::SeqCst) {
        let tick = libc::timeval { tv_sec: 0, tv_usec: TICK_US.into() };
        let timer = libc::itimerval { it_interval: tick, it_value: tick };
        let saved = errno();
        // SAFETY: setitimer(2) is a system call reading a value on our stack.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
        set_errno(saved);
    }
    wake();
}

extern "C" fn on_child(_: libc::c_int) {
    wake();
}

/// Only interrupts what the main thread was blocked in.
extern "C" fn on_tick(_: libc::c_int) {}

fn wake() {
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        let saved = errno();
        // SAFETY: write(2) is async-signal-safe; one byte from our stack to a
        // non-blocking pipe (a full pipe already wakes the reader).
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
        set_errno(saved);
    }
}

fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: libc::c_int) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = v }
}
