//! The event loop: read the rings, order and print the records, pass signals
//! to the command, and finish (detach, report losses, the command's end).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::explain::{self, story};
use crate::output::{Formatter, Sink};
use crate::perf::ring::Record as RingRecord;
use crate::process::{Exit, HeldChild};
use crate::record::Record;
use crate::signals::Signals;
use crate::stdout::say;

use super::*;
/// Everything that must stay alive while tracing, in drop order: probes first.
pub(super) struct Live {
    pub(super) attached: Vec<Attached>,
    pub(super) rings: Rings,
    pub(super) maps: Maps,
}

impl Drop for Live {
    fn drop(&mut self) {
        detach_all(std::mem::take(&mut self.attached));
    }
}

/// What the trace phase works with: the attached probes and rings, the
/// signals, and the command (held until the trace begins).
pub(super) struct Tracing<'a> {
    pub(super) live: &'a mut Live,
    pub(super) signals: &'a Signals,
    pub(super) child: &'a mut Option<HeldChild>,
    /// The command's binary, to name it if its exec fails.
    pub(super) binary: Option<&'a std::path::Path>,
    pub(super) target: &'a Option<Target>,
    /// The process of `-p`, watched since its pid was known (see [`pidfd_open`]).
    pub(super) pidfd: Option<&'a OwnedFd>,
    pub(super) follow: bool,
}

impl Tracing<'_> {
    /// The probe flags' trace, in the lab's style.
    pub(super) fn flags<W: io::Write>(&mut self, mut fmt: Formatter<W>) -> Result<Summary, Error> {
        self.release()?;
        self.until_done(&mut fmt)
    }

    /// A script's trace: BEGIN, the probes, END. `exit()` in BEGIN ends it
    /// before the command runs: the command is killed held.
    pub(super) fn script<W: io::Write>(
        &mut self,
        mut printer: crate::lang::printer::Printer<'_, W>,
    ) -> Result<Summary, Error> {
        let begun = match printer.begin() {
            Ok(begun) => begun,
            Err(e) => {
                // The command never runs: killed held.
                drop(self.child.take());
                return Err(Error::Io("writing the trace".into(), e));
            }
        };
        let summary = if begun {
            self.release()?;
            self.until_done(&mut printer)
        } else {
            drop(self.child.take());
            Ok(Summary::default())
        };
        match printer.end() {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Io("writing the trace".into(), e)),
            _ => summary,
        }
    }

    /// Lets the held command run.
    pub(super) fn release(&mut self) -> Result<(), Error> {
        match (self.child.as_mut(), self.binary) {
            (Some(c), Some(b)) => c.release(b).map_err(Error::Spawn),
            _ => Ok(()),
        }
    }

    /// Reads and prints until the command ends, the process exits, Ctrl-C, or
    /// the output says stop (a script's `exit()`).
    pub(super) fn until_done<S: Sink>(&mut self, sink: &mut S) -> Result<Summary, Error> {
        let summary = event_loop(
            self.live,
            sink,
            self.signals,
            self.child.as_mut(),
            self.pidfd,
            self.target,
            self.follow,
        );
        explain::note(|| story::AFTER.into());
        summary
    }
}

/// Detaches everything, then reports losses and the command's end.
pub(super) fn finish(
    live: Live,
    summary: Result<Summary, Error>,
    child: Option<&mut HeldChild>,
    signals: &Signals,
    possible: usize,
) -> Result<i32, Error> {
    let dropped = live.maps.dropped(possible);
    let full = match live.rings {
        Rings::Perf(_) => "a CPU's ring was full",
        Rings::Buffer(_) => "the ring was full",
    };
    drop(live); // detach everything before reporting
    let mut summary = match summary {
        Ok(summary) => summary,
        // The trace could not be written (a full disk, /dev/full): as after a
        // closed pipe, the probes are gone and the command runs to its end,
        // waited for, not orphaned.
        Err(e @ Error::Io(..)) if child.as_ref().is_some_and(|c| c.released()) => {
            say(&format!("trace: {e}; the trace stopped, the command runs on\n"));
            if let Some(c) = child {
                wait_forwarding(c, signals);
            }
            return Ok(e.exit_code());
        }
        // Any other failure (the command's exec, or writing before it was
        // released): a held command is killed when the session ends.
        Err(e) => return Err(e),
    };
    summary.lost = summary.lost.max(dropped);
    if summary.exit.is_none() {
        // Our output was closed (`trace ... | head`) or the script called exit():
        // the probes are gone; let the command finish as it would have without us.
        summary.exit = child.and_then(|c| wait_forwarding(c, signals));
    }
    if summary.lost > 0 {
        say(&format!(
            "trace: {} events lost: {full} ({} events shown). \
             Use a bigger ring (--ring-pages) or trace fewer probes.\n",
            summary.lost, summary.events
        ));
    }
    Ok(match summary.exit {
        Some(exit) => {
            if let Exit::Signal(sig, core) = exit {
                say(&format!("{}\n", describe_signal(sig, core)));
            }
            exit.status()
        }
        None => 0,
    })
}

/// Waits for the command to end once the trace is over (a script's exit(),
/// a closed stdout), passing it the stop signals trace gets meanwhile.
pub(super) fn wait_forwarding(child: &mut HeldChild, signals: &Signals) -> Option<Exit> {
    loop {
        if let Some(exit) = child.try_wait() {
            return Some(exit);
        }
        if child.reaped() {
            return None;
        }
        for sig in signals.take() {
            child.signal(sig);
        }
        // SIGCHLD wakes the poll (its handler writes to the signals' pipe).
        let mut fds = [PollFd::new(signals.fd(), PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(1000u16));
    }
}

/// A descriptor of process `pid` that polls readable once it has exited, opened
/// as soon as `-p` names it: it stays bound to that process, so an exit at any
/// later moment (while the probes attach, before the event loop polls) is seen,
/// and so is nothing else if the pid is reused. (Opened only once the probes
/// were attached, a process that exited and was reaped meanwhile made
/// pidfd_open fail, and trace waited for ever.) `Ok(None)` on kernels before
/// 5.3, which have no pidfd_open: the trace then ends with Ctrl-C.
pub(super) fn pidfd_open(pid: u32) -> Result<Option<OwnedFd>, Error> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Err(Error::Process(format!(
                "no process with pid {pid} (it has exited); `pgrep NAME` finds pids"
            ))),
            _ => Ok(None),
        };
    }
    // SAFETY: a non-negative return is a new descriptor nobody else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// Records from per-CPU perf rings wait this long before printing, so a slower
/// CPU's ring can deliver earlier events first; everything is printed at the end
/// anyway. (The ring buffer's records are ordered by arrival: none waits.)
pub(super) const HOLD_NS: u64 = 20_000_000;
pub(super) const POLL_MS: u16 = 100;
/// The longest the ring buffer's records may gather before trace reads them.
pub(super) const GATHER_MS: u16 = 5;
/// The rate a gathering ring must survive: 400 MB/s, in bytes a millisecond
/// (the lab's workload sends about 30 MB/s here).
pub(super) const GATHER_RATE: u32 = 400_000;

/// How long to let records gather before reading the ring buffer again, in ms
/// (0: poll it now). Its poll(2) is readable as soon as one record waits, and
/// the kernel wakes the reader with the first record after it caught up (flags
/// 0 in the programs), unlike a perf ring, which its watermark wakes: after a
/// drain that found less than an eighth of the ring, records come slowly, and
/// reading them a few ms later in one batch is cheaper than coming back (and
/// being woken, an interrupt in the traced process) for each. As long as the ring
/// of `ring_bytes` takes at least that to fill at [`GATHER_RATE`]: the default
/// ring (2 MiB on 2 CPUs) gathers 5 ms, rings under 400 KB not at all.
/// `drained`: the bytes the last drain read.
pub(super) fn gather_ms(drained: u64, ring_bytes: u32) -> u16 {
    if drained == 0 || drained >= u64::from(ringbuf_wakeup(ring_bytes)) {
        return 0;
    }
    u16::try_from(ring_bytes / GATHER_RATE).unwrap_or(u16::MAX).min(GATHER_MS)
}

/// Records ordered by (time, arrival) across the per-CPU perf rings; from the
/// ring buffer, which has one order for all CPUs, by arrival alone (its records
/// carry no time unless `-T` shows it), with no hold. Records wait in slots,
/// which are reused: each sample is decoded into a free slot's record, keeping
/// its string's allocation. The heap holds small keys (time, arrival, slot), so
/// keeping it in order moves 24 bytes, not a record.
#[derive(Default)]
pub(super) struct Merger {
    pub(super) heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    pub(super) slots: Vec<Record>,
    pub(super) free: Vec<usize>,
    pub(super) seq: u64,
    /// Per-CPU rings: merge by the records' time.
    pub(super) by_time: bool,
}

impl Merger {
    /// Decodes a sample into a slot and queues it; malformed samples are dropped.
    /// The sink hears of each record as it arrives (`Sink::arrived`), before
    /// the hold that orders it.
    pub(super) fn push<S: Sink>(&mut self, sample: &[u8], sink: &mut S) {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Record::default());
                self.slots.len() - 1
            }
        };
        let record = &mut self.slots[slot];
        if record.decode_into(sample).is_err() {
            self.free.push(slot);
            return;
        }
        sink.arrived(record);
        self.seq += 1;
        let time = if self.by_time { record.ktime } else { 0 };
        self.heap.push(Reverse((time, self.seq, slot)));
    }

    /// Emits records older than `before` (all when None). Returns true when
    /// the sink asked to stop (the records after that one are left unshown).
    pub(super) fn emit<S: Sink>(
        &mut self,
        before: Option<u64>,
        sink: &mut S,
        n: &mut u64,
    ) -> io::Result<bool> {
        while let Some(&Reverse((ktime, _, slot))) = self.heap.peek() {
            if before.is_some_and(|b| ktime >= b) {
                break;
            }
            self.heap.pop();
            self.free.push(slot);
            *n += 1;
            if sink.event(&self.slots[slot])? {
                sink.flush()?;
                return Ok(true);
            }
        }
        sink.flush().map(|_| false)
    }
}

pub(super) fn drain<S: Sink>(rings: &mut Rings, merger: &mut Merger, lost: &mut u64, sink: &mut S) {
    match rings {
        Rings::Perf(rings) => {
            for ring in rings.iter_mut() {
                ring.drain(|rec| match rec {
                    RingRecord::Sample(bytes) => merger.push(bytes, sink),
                    RingRecord::Lost { lost: n, .. } => *lost += n,
                    RingRecord::Other { .. } => {}
                });
            }
        }
        // The ring buffer tells of no losses: the `dropped` counters do.
        Rings::Buffer(ring) => {
            ring.drain(|bytes| merger.push(bytes, sink));
        }
    }
}

/// The program `--watch` watches, by its file: a rebuild (`gcc -o file-io ...`
/// writes a new file, a new inode) is not what the probes were placed in, so
/// trace says so at once rather than show nothing for the new build.
struct Watched<'p> {
    path: &'p std::path::Path,
    /// The file's device and inode when the probes were placed.
    file: (u64, u64),
    checked: std::time::Instant,
    told: bool,
}

impl<'p> Watched<'p> {
    /// How often the path is looked at.
    const EVERY: std::time::Duration = std::time::Duration::from_millis(200);

    fn new(path: &'p std::path::Path) -> Option<Watched<'p>> {
        let file = file_id(path)?;
        Some(Watched { path, file, checked: std::time::Instant::now(), told: false })
    }

    fn check(&mut self) {
        if self.told || self.checked.elapsed() < Self::EVERY {
            return;
        }
        self.checked = std::time::Instant::now();
        if file_id(self.path).is_some_and(|now| now != self.file) {
            self.told = true;
            say(&format!(
                "trace: {} was rebuilt or replaced (a new file): its runs from now on are not traced; \
                 stop trace (Ctrl-C) and run `trace --watch {}` again\n",
                crate::escape::path(self.path),
                crate::escape::path(self.path)
            ));
        }
    }
}

/// A file's (device, inode), following symbolic links.
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub(super) fn event_loop<S: Sink>(
    live: &mut Live,
    fmt: &mut S,
    signals: &Signals,
    mut child: Option<&mut HeldChild>,
    pidfd: Option<&OwnedFd>,
    target: &Option<Target>,
    follow: bool,
) -> Result<Summary, Error> {
    let mut merger = Merger { by_time: matches!(live.rings, Rings::Perf(_)), ..Merger::default() };
    let mut summary = Summary::default();
    let mut asked_to_stop = false;
    let mut watched = match target {
        Some(Target::Watch(path)) => Watched::new(path),
        _ => None,
    };
    // A closed stdout (`trace ... | head`) ends the trace quietly; other write
    // errors are reported.
    let out_err = |e: io::Error| Error::Io("writing the trace".into(), e);
    let closed = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(out_err),
    };
    loop {
        let (mut fds, timeout): (Vec<PollFd>, u16) = match &live.rings {
            Rings::Perf(rings) => {
                (rings.iter().map(|r| PollFd::new(r.fd(), PollFlags::POLLIN)).collect(), POLL_MS)
            }
            Rings::Buffer(ring) => match gather_ms(ring.drained(), live.maps.events.max_entries) {
                0 => (vec![PollFd::new(live.maps.events.as_fd(), PollFlags::POLLIN)], POLL_MS),
                ms => (Vec::new(), ms),
            },
        };
        fds.push(PollFd::new(signals.fd(), PollFlags::POLLIN));
        if let Some(p) = pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(timeout));
        let pid_gone = pidfd.is_some() && fds.last().and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        drop(fds);
        if let Some(w) = watched.as_mut() {
            w.check();
        }
        let mut stop = pid_gone;
        for sig in signals.take() {
            asked_to_stop = true;
            match child.as_deref() {
                // The command gets the signal (a terminal's Ctrl-C already
                // reached it); we keep reading until it exits.
                Some(c) => c.signal(sig),
                None => stop = true,
            }
        }
        if let Some(c) = child.as_deref_mut() {
            if follow {
                // With -f the trace ends when the command and every descendant
                // (reparented to us) have exited; after a stop signal, when the
                // command has (a daemon it left may run for ever).
                let (exit, others_left) = c.reap_descendants();
                summary.exit = summary.exit.or(exit);
                stop = summary.exit.is_some() && (!others_left || asked_to_stop);
            } else if let Some(exit) = c.try_wait() {
                summary.exit = Some(exit);
                stop = true;
            }
        }
        let now = crate::util::monotonic_ns();
        drain(&mut live.rings, &mut merger, &mut summary.lost, fmt);
        if stop {
            drain(&mut live.rings, &mut merger, &mut summary.lost, fmt);
            closed(merger.emit(None, fmt, &mut summary.events).and_then(|_| fmt.finish()))?;
            if let (Some(Target::Pid(p)), true) = (target, pid_gone) {
                say(&format!("trace: process {p} exited\n"));
            }
            return Ok(summary);
        }
        match merger.emit(Some(now.saturating_sub(HOLD_NS)), fmt, &mut summary.events) {
            Ok(false) => {}
            Ok(true) => {
                // The script called exit(): what came after it is not shown.
                closed(fmt.finish())?;
                return Ok(summary);
            }
            // `trace ... | head`: the reader is gone; stop quietly and detach.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(summary),
            Err(e) => return Err(out_err(e)),
        }
    }
}

/// What a shell prints when a program dies of a signal.
pub(super) fn describe_signal(sig: i32, core: bool) -> String {
    let name = Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or(format!("signal {sig}"));
    let what = match sig {
        libc::SIGSEGV => "Segmentation fault",
        libc::SIGABRT => "Aborted",
        libc::SIGKILL => "Killed",
        libc::SIGTERM => "Terminated",
        libc::SIGINT => "Interrupt",
        libc::SIGHUP => "Hangup",
        libc::SIGQUIT => "Quit",
        libc::SIGPIPE => "Broken pipe",
        libc::SIGBUS => "Bus error",
        libc::SIGFPE => "Floating point exception",
        libc::SIGILL => "Illegal instruction",
        _ => "Killed by a signal",
    };
    format!("trace: the traced command ended: {what} ({name}){}", if core { " (core dumped)" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_buffer_gathers_only_slow_records_in_a_big_ring() {
        let mib = 1 << 20;
        // The default ring on 2 CPUs: 256 KiB wake the reader.
        assert_eq!(ringbuf_wakeup(2 * mib), 256 * 1024);
        assert_eq!(gather_ms(100, 2 * mib), 5);
        assert_eq!(gather_ms(256 * 1024 - 8, 2 * mib), 5);
        assert_eq!(gather_ms(256 * 1024, 2 * mib), 0, "a full wakeup's worth: read on");
        assert_eq!(gather_ms(0, 2 * mib), 0, "nothing read: wait in poll");
        assert_eq!(gather_ms(100, mib), 2);
        assert_eq!(gather_ms(100, 256 * 1024), 0, "a small ring fills too fast");
        assert_eq!(gather_ms(100, 1 << 31), 5);
    }
}
