//! The traced command: started held before exec, released once every probe is
//! attached, run as the user who invoked sudo.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::creds::Creds;
use crate::escape;

/// Why the command could not be started.
#[derive(Debug)]
pub enum SpawnError {
    NotFound(OsString),
    NotExecutable(PathBuf),
    /// A directory, a FIFO, a device: something that exists but is no program file.
    NotAFile(PathBuf),
    /// `interpreter`: the bytes of its `#!` line, trimmed.
    Script {
        path: PathBuf,
        interpreter: Vec<u8>,
    },
    NotElf(PathBuf),
    Exec {
        path: PathBuf,
        err: io::Error,
    },
    Os(String, io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound(c) if !c.as_bytes().contains(&b'/') && Path::new(c).is_file() => {
                let c = escape::Shown(c.as_bytes());
                write!(
                    f,
                    "command `{c}` not found in $PATH; to trace the program in this directory, write ./{c}"
                )
            }
            SpawnError::NotFound(c) => {
                let c = escape::Shown(c.as_bytes());
                write!(f, "command `{c}` not found: no such file, and not in $PATH; check the spelling")
            }
            SpawnError::NotExecutable(p) => {
                write!(
                    f,
                    "{} is not executable; make it so with `chmod +x {}`",
                    escape::path(p),
                    escape::path(p)
                )
            }
            SpawnError::Script { path, interpreter } => {
                let interpreter = escape::Shown(interpreter);
                write!(
                    f,
                    "{} is a script run by `{interpreter}`, not a compiled program, so it has no functions \
                 to probe. Trace the interpreter instead: `trace -s open -- {interpreter} {}`",
                    escape::path(path),
                    escape::path(path)
                )
            }
            SpawnError::NotAFile(p) => write!(
                f,
                "{} is not a regular file (a directory, a FIFO or a device), so it is no program to run; \
                 give the path of the program",
                escape::path(p)
            ),
            SpawnError::NotElf(p) => {
                write!(f, "{} is not an ELF executable, so it cannot be traced", escape::path(p))
            }
            SpawnError::Exec { path, err } => write!(f, "could not run {}: {err}", escape::path(path)),
            SpawnError::Os(what, err) => write!(f, "{what}: {err}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Finds the program as execvp(3) would, and checks that it is something we can
/// trace: an executable ELF file. Its name is bytes, as a command line's are.
pub fn find_program(cmd: impl AsRef<OsStr>) -> Result<PathBuf, SpawnError> {
    let cmd = cmd.as_ref();
    let path = if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(SpawnError::NotAFile(p)),
            Err(_) => return Err(SpawnError::NotFound(cmd.to_os_string())),
        }
        p
    } else {
        let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&dirs)
            .map(|d| d.join(cmd))
            .find(|p| p.is_file())
            .ok_or_else(|| SpawnError::NotFound(cmd.to_os_string()))?
    };
    check_program(&path)?;
    Ok(path)
}

fn check_program(path: &Path) -> Result<(), SpawnError> {
    if nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(SpawnError::NotExecutable(path.to_path_buf()));
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .map_err(|e| SpawnError::Os(format!("reading {}", escape::path(path)), e))?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
        let interpreter = line.trim_ascii().to_vec();
        return Err(SpawnError::Script { path: path.to_path_buf(), interpreter });
    }
    if !head.starts_with(b"\x7fELF") {
        return Err(SpawnError::NotElf(path.to_path_buf()));
    }
    Ok(())
}

/// A child process stopped before exec, waiting for `release`.
#[derive(Debug)]
pub struct HeldChild {
    pid: Pid,
    go: Option<OwnedFd>,
    exec_err: OwnedFd,
    reaped: bool,
}

/// How the child ended, as a shell reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32, bool),
}

impl Exit {
    /// The exit status a shell would give: the code, or 128 + the signal number.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s, _) => 128 + s,
        }
    }
}

impl HeldChild {
    /// Forks; the child waits until [`HeldChild::release`], then execs `path`
    /// with `argv` (bytes, as the command line gave them) as `creds` (or as us
    /// when None).
    pub fn spawn(path: &Path, argv: &[OsString], creds: Option<&Creds>) -> Result<HeldChild, SpawnError> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| SpawnError::NotFound(path.as_os_str().to_os_string()))?;
        let c_argv: Vec<CString> =
            argv.iter().map(|a| CString::new(a.as_bytes()).unwrap_or_default()).collect();
        let os =
            |what: &'static str| move |e: nix::Error| SpawnError::Os(what.to_string(), io::Error::from(e));
        let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(os("pipe"))?;
        let (err_read, err_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(os("pipe"))?;
        let held = Held { go_read, go_write: go_write.as_raw_fd(), err_write, parent: nix::unistd::getpid() };
        let pid = fork_held(&c_path, &c_argv, creds, held).map_err(os("fork"))?;
        Ok(HeldChild { pid, go: Some(go_write), exec_err: err_read, reaped: false })
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Lets the child exec; reports an exec failure.
    pub fn release(&mut self, path: &Path) -> Result<(), SpawnError> {
        if let Some(go) = self.go.take() {
            let _ = nix::unistd::write(&go, &[1]);
        }
        let mut buf = [0u8; 4];
        let read = loop {
            match nix::unistd::read(self.exec_err.as_raw_fd(), &mut buf) {
                Err(nix::Error::EINTR) => continue,
                other => break other,
            }
        };
        match read {
            Ok(4) => {
                let errno = i32::from_ne_bytes(buf);
                let _ = self.wait();
                Err(SpawnError::Exec { path: path.to_path_buf(), err: io::Error::from_raw_os_error(errno) })
            }
            _ => Ok(()),
        }
    }

    /// Non-blocking: Some(exit) once the child has ended.
    pub fn try_wait(&mut self) -> Option<Exit> {
        if self.reaped {
            return None;
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                self.reaped = true;
                Some(Exit::Code(code))
            }
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                self.reaped = true;
                Some(Exit::Signal(sig as i32, core))
            }
            Err(nix::Error::ECHILD) => {
                self.reaped = true;
                Some(Exit::Code(0))
            }
            _ => None,
        }
    }

    /// Whether the child was let go to exec (see [`HeldChild::release`]).
    pub fn released(&self) -> bool {
        self.go.is_none()
    }

    /// Whether the child was reaped already.
    pub fn reaped(&self) -> bool {
        self.reaped
    }

    /// Blocks until the child ends.
    pub fn wait(&mut self) -> Option<Exit> {
        loop {
            if self.reaped {
                return None;
            }
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.reaped = true;
                    return Some(Exit::Code(code));
                }
                Ok(WaitStatus::Signaled(_, sig, core)) => {
                    self.reaped = true;
                    return Some(Exit::Signal(sig as i32, core));
                }
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(_) => {
                    self.reaped = true;
                    return None;
                }
            }
        }
    }

    /// Reaps every child that has ended (the command and, with a subreaper, any
    /// orphaned descendant). Returns the command's exit once it has ended, and
    /// whether any child is still running.
    pub fn reap_descendants(&mut self) -> (Option<Exit>, bool) {
        let mut exit = None;
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return (exit, true),
                Err(nix::Error::EINTR) => continue,
                Err(_) => return (exit, false), // ECHILD: nobody left
                Ok(status) => status,
            };
            let ended = match status {
                WaitStatus::Exited(pid, code) if pid == self.pid => Some(Exit::Code(code)),
                WaitStatus::Signaled(pid, sig, core) if pid == self.pid => {
                    Some(Exit::Signal(sig as i32, core))
                }
                _ => None, // a descendant, or a stop
            };
            if ended.is_some() {
                self.reaped = true;
                exit = ended;
            }
        }
    }

    pub fn signal(&self, sig: Signal) {
        if !self.reaped {
            let _ = signal::kill(self.pid, sig);
        }
    }
}

impl Drop for HeldChild {
    /// A child never released (an error before the trace began) is killed, not
    /// left waiting: dropping the go pipe makes it exit, and we reap it.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            self.signal(Signal::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// Makes orphaned descendants of the tracer its children (prctl
/// PR_SET_CHILD_SUBREAPER), so `-f` can wait for all of them.
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// The pipe ends the held child uses, and who its parent is.
struct Held {
    go_read: OwnedFd,
    /// The parent's end, which the child must close: while the child holds it,
    /// its read could never see the parent go away.
    go_write: std::os::fd::RawFd,
    err_write: OwnedFd,
    parent: Pid,
}

/// The one fork of the tracer. The child only makes async-signal-safe calls
/// (prctl, getppid, close, sigprocmask, signal, read, setgroups/setgid/setuid,
/// execv, write, _exit) on data prepared before the fork.
fn fork_held(path: &CString, argv: &[CString], creds: Option<&Creds>, held: Held) -> nix::Result<Pid> {
    let Held { go_read, go_write, err_write, parent } = held;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let groups: Vec<libc::gid_t> = creds.map(|c| c.groups.clone()).unwrap_or_default();
    // SAFETY: the tracer is single-threaded when it forks, and the child below
    // only calls async-signal-safe functions before execv or _exit.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(child),
        nix::unistd::ForkResult::Child => {
            // SAFETY: async-signal-safe libc calls on memory prepared before the fork.
            unsafe {
                // If the tracer dies before releasing us (killed mid-attach), die
                // too rather than run untraced or wait forever.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if libc::getppid() != parent.as_raw() {
                    libc::_exit(127); // it died before the prctl took effect
                }
                libc::close(go_write);
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                // Rust ignores SIGPIPE; the traced program must get the default back.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut b = 0u8;
                let n = libc::read(go_read.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
                if n != 1 {
                    libc::_exit(127); // the tracer gave up before releasing us
                }
                // Released, the command is an ordinary program that outlives us if
                // we die: clear the death signal before exec.
                libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
                if let Some(c) = creds {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(c.gid) != 0
                        || libc::setuid(c.uid) != 0
                    {
                        report_and_exit(&err_write);
                    }
                }
                libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
                report_and_exit(&err_write);
            }
        }
    }
}

/// In the child: sends errno to the parent and exits 127.
fn report_and_exit(err_write: &OwnedFd) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0).to_ne_bytes();
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is on our stack.
    unsafe {
        libc::write(err_write.as_raw_fd(), errno.as_ptr() as *const libc::c_void, errno.len());
        libc::_exit(127)
    }
}
