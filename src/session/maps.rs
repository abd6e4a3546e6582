//! The maps every program refers to, the events ring (the BPF ring buffer, or
//! per-CPU perf rings) and a script's own maps: made before any probe fires.

use std::os::fd::{AsFd, AsRawFd};

use crate::bpf::{self, Map, MapType};
use crate::codegen::{MapFds, Output};
use crate::explain::{self, story};
use crate::kernel::KernelVersion;
use crate::knobs;
use crate::perf::ring::Ring;
use crate::perf::ringbuf::{self, RingBuf};

use super::*;
/// Threads whose depth `depth` keeps before the kernel evicts any (see [`depth_entries`]).
pub(super) const DEPTH_THREADS: u32 = 16384;
/// `LOCAL_FREE_TARGET` (kernel/bpf/bpf_lru_list.c, internal, not UAPI): an LRU map
/// moves free entries to a CPU's own list this many at a time, and evicts to
/// fill that list when the shared free list runs short, so up to this many per
/// CPU can sit free while others are evicted.
pub(super) const LRU_LOCAL_FREE_TARGET: u32 = 128;

/// Entries of the `depth` map: an LRU hash, so that a thread's entry stays (at
/// depth 0) when it leaves its last traced function and the next call only
/// looks it up and counts, cheaper than a plain hash entry inserted at every
/// outermost call and deleted at its return. Entries of threads that have exited are never
/// looked up again, so they are the ones the kernel evicts when the map is full;
/// sized so that DEPTH_THREADS threads fit before it evicts any, whatever the
/// CPUs hold back.
pub(super) fn depth_entries(possible_cpus: u32) -> u32 {
    DEPTH_THREADS + LRU_LOCAL_FREE_TARGET * possible_cpus
}

/// The maps every program refers to.
pub(super) struct Maps {
    pub(super) events: Map,
    pub(super) tgids: Map,
    pub(super) depth: Map,
    pub(super) pending: Map,
    pub(super) dropped: Map,
}

impl Maps {
    /// `events` is made already (see [`events_map`]); `possible`: how many CPUs
    /// there can be (sizes `depth`).
    pub(super) fn create(events: Map, possible: u32) -> Result<Maps, Error> {
        let m = |t, k, v, n, name: &str| Map::create(t, k, v, n, name).map_err(Error::Bpf);
        Ok(Maps {
            events,
            tgids: m(MapType::Hash, 4, 4, 4096, "tgids")?,
            depth: m(MapType::LruHash, 4, 4, depth_entries(possible), "depth")?,
            pending: m(MapType::Hash, 8, 8, 16384, "pending")?,
            dropped: m(MapType::PercpuArray, 4, 8, 1, "dropped")?,
        })
    }

    pub(super) fn fds(&self, stacks: Option<&Map>, user: &[Map]) -> MapFds {
        let output = match self.events.map_type {
            MapType::Ringbuf => Output::Ringbuf,
            _ => Output::PerfRings,
        };
        MapFds {
            events: self.events.raw_fd(),
            output,
            tgids: self.tgids.raw_fd(),
            depth: self.depth.raw_fd(),
            pending: self.pending.raw_fd(),
            dropped: self.dropped.raw_fd(),
            stacks: stacks.map_or(-1, |m| m.raw_fd()),
            user: user.iter().map(|m| m.raw_fd()).collect(),
        }
    }

    /// Records the programs could not write because a ring was full, summed
    /// over the CPUs. Exact, unlike PERF_RECORD_LOST, which the kernel writes only
    /// at the next successful output.
    pub(super) fn dropped(&self, possible_cpus: usize) -> u64 {
        let Ok(Some(bytes)) = self.dropped.lookup_percpu(&0u32.to_ne_bytes(), possible_cpus) else {
            return 0;
        };
        bytes.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))).sum()
    }

    pub(super) fn add_tgid(&self, pid: u32) -> Result<(), Error> {
        self.tgids.update(&pid.to_ne_bytes(), &1u32.to_ne_bytes(), bpf::BPF_ANY).map_err(Error::Bpf)
    }
}

/// The `events` map: the BPF ring buffer of `pages` pages per online CPU (their
/// product rounded up to a power of two) where the kernel has one, else a
/// PERF_EVENT_ARRAY for the per-CPU perf rings (`possible`: the highest possible CPU + 1).
pub(super) fn events_map(
    kernel: KernelVersion,
    pages: usize,
    online: usize,
    possible: u32,
) -> Result<Map, Error> {
    let perf = || Map::create(MapType::PerfEventArray, 4, 4, possible, "events").map_err(Error::Bpf);
    if knobs::perf_rings_forced() || !kernel.has_ringbuf() {
        return perf();
    }
    let bytes = ringbuf::ring_bytes(pages, online).ok_or_else(|| Error::Perf {
        probe: "the ring buffer".into(),
        err: crate::perf::PerfError::InvalidArgument(format!(
            "--ring-pages {pages} on {online} CPUs makes a ring buffer over 2 GiB, the most a BPF ring \
                 buffer holds: use fewer pages"
        )),
    })?;
    match Map::create(MapType::Ringbuf, 0, 0, bytes, "events") {
        Ok(map) => Ok(map),
        // A kernel without the map type (a version string that misleads, or a
        // backport without it) refuses it with EINVAL: use the perf rings.
        Err(bpf::BpfError::Syscall { err, .. }) if err.raw_os_error() == Some(libc::EINVAL) => perf(),
        Err(e) => Err(Error::Bpf(e)),
    }
}

/// A drain of less than an eighth of the ring buffer (the perf rings'
/// watermark) means records come slowly: the reader lets them gather.
pub(super) fn ringbuf_wakeup(ring_bytes: u32) -> u32 {
    (ring_bytes / 8).max(1)
}

/// What the programs write to and trace reads.
pub(super) enum Rings {
    /// One perf ring per online CPU.
    Perf(Vec<Ring>),
    /// The BPF ring buffer of the `events` map.
    Buffer(RingBuf),
}

/// The maps and the rings, ready for the programs; the traced pid in `tgids`.
/// All are in place before any probe fires.
#[allow(clippy::type_complexity)]
pub(super) fn prepare(setup: &Setup) -> Result<(Maps, Option<Map>, Vec<Map>, Rings), Error> {
    let (cfg, kernel, show, pid) = (setup.cfg, setup.kernel, setup.show, setup.pid);
    explain::note(|| story::STEP_MAPS.into());
    let possible = setup.cpus.possible.iter().max().map_or(1, |m| m + 1);
    let events = events_map(kernel, cfg.ring_pages, setup.cpus.online.len(), possible)?;
    let maps = Maps::create(events, possible)?;
    let stacks = match show {
        Show::Script { lowered, .. } if lowered.stacks => Some(
            Map::create(MapType::StackTrace, 4, STACK_VALUE_SIZE, STACK_ENTRIES, "stacks")
                .map_err(Error::Bpf)?,
        ),
        _ => None,
    };
    let user_maps = match show {
        Show::Script { program, .. } => script_maps(&program.checked.maps)?,
        Show::Flags(_) => Vec::new(),
    };
    let mut all_maps = vec![&maps.events, &maps.tgids, &maps.depth, &maps.pending, &maps.dropped];
    all_maps.extend(stacks.as_ref());
    all_maps.extend(user_maps.iter());
    story::maps(&all_maps);
    let rings = match maps.events.map_type {
        MapType::Ringbuf => {
            explain::note(|| story::STEP_RINGBUF.into());
            let ring = RingBuf::map(maps.events.as_fd(), maps.events.max_entries)
                .map_err(|err| Error::Perf { probe: "the ring buffer".into(), err })?;
            Rings::Buffer(ring)
        }
        _ => {
            explain::note(|| story::STEP_RINGS.into());
            Rings::Perf(open_rings(&setup.cpus.online, cfg.ring_pages, &maps)?)
        }
    };
    if let Some(pid) = pid {
        explain::note(|| story::traced_process(pid, setup.held));
        maps.add_tgid(pid)?;
    }
    Ok((maps, stacks, user_maps, rings))
}

/// Elements a script's map holds (bpftrace's default too).
pub(super) const SCRIPT_MAP_ENTRIES: u32 = 4096;

/// One HASH map (u64 key -> i64 value) per `@name` of a script; the kernel's
/// name is the script's after `AT_` (as bpftrace names them), cut to what
/// BPF_OBJ_NAME_LEN allows.
pub(super) fn script_maps(decls: &[crate::lang::ir::MapDecl]) -> Result<Vec<Map>, Error> {
    decls
        .iter()
        .map(|d| {
            let safe = d.name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_');
            let name: String = "AT_".chars().chain(safe).take(15).collect();
            Map::create(MapType::Hash, 8, 8, SCRIPT_MAP_ENTRIES, &name).map_err(Error::Bpf)
        })
        .collect()
}

/// PERF_MAX_STACK_DEPTH (include/uapi/linux/perf_event.h): frames a stack map value holds.
pub(super) const PERF_MAX_STACK_DEPTH: u32 = 127;
pub(super) const STACK_VALUE_SIZE: u32 = 8 * PERF_MAX_STACK_DEPTH;
/// Distinct stacks kept at once (ids are reused when two stacks hash alike).
pub(super) const STACK_ENTRIES: u32 = 4096;

pub(super) fn open_rings(cpus: &[u32], pages: usize, maps: &Maps) -> Result<Vec<Ring>, Error> {
    let page =
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as usize;
    // Wake the reader when an eighth of the ring is full: early enough to leave
    // room while it works; the poll timeout bounds the latency when events are few.
    let watermark = (pages * page / 8).max(1) as u32;
    cpus.iter()
        .map(|&cpu| {
            let ring = Ring::open(cpu, pages, watermark)
                .map_err(|err| Error::Perf { probe: format!("the ring of CPU {cpu}"), err })?;
            maps.events
                .update(&cpu.to_ne_bytes(), &(ring.fd().as_raw_fd() as u32).to_ne_bytes(), bpf::BPF_ANY)
                .map_err(Error::Bpf)?;
            Ok(ring)
        })
        .collect()
}
