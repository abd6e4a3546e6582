//! CPU lists from sysfs (`0-1,3,5-7`), as written by the kernel's `%*pbl` format.

use std::path::Path;

use super::error::PerfError;

/// CPUs that may ever come online (Documentation/ABI/testing/sysfs-devices-system-cpu).
pub const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";
/// CPUs online now.
pub const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";

/// CPU ids above this are rejected: the largest NR_CPUS any architecture allows
/// is far below, and the bound keeps a garbage range from allocating gigabytes.
pub const MAX_CPU_ID: u32 = 65_535;

/// The ids of the possible CPUs; the size of a per-CPU BPF map is the last + 1.
pub fn possible_cpus() -> Result<Vec<u32>, PerfError> {
    read_cpu_list(Path::new(POSSIBLE_CPUS))
}

/// The ids of the online CPUs (one ring each).
pub fn online_cpus() -> Result<Vec<u32>, PerfError> {
    read_cpu_list(Path::new(ONLINE_CPUS))
}

fn read_cpu_list(path: &Path) -> Result<Vec<u32>, PerfError> {
    let read = std::fs::read_to_string(path);
    crate::explain::read_file(path, &read);
    let text = read.map_err(|err| PerfError::Io { path: path.into(), err })?;
    parse_cpu_list(&text)
}

/// Parses `0-1,3,5-7` (a trailing newline is fine) into sorted, distinct ids.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, PerfError> {
    let err = |reason: String| PerfError::CpuList { text: s.to_string(), reason };
    let body = s.trim();
    if body.is_empty() {
        return Err(err("the list is empty".into()));
    }
    let mut cpus = Vec::new();
    for item in body.split(',') {
        let (first, last) = parse_item(item.trim()).map_err(err)?;
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// One item: `N` or `N-M` with N <= M.
fn parse_item(item: &str) -> Result<(u32, u32), String> {
    let (a, b) = item.split_once('-').unwrap_or((item, item));
    let (first, last) = (parse_id(a)?, parse_id(b)?);
    match first <= last {
        true => Ok((first, last)),
        false => Err(format!("the range `{item}` runs backwards")),
    }
}

fn parse_id(s: &str) -> Result<u32, String> {
    let id: u32 = s.parse().map_err(|_| format!("`{s}` is not a CPU number"))?;
    match id <= MAX_CPU_ID {
        true => Ok(id),
        false => Err(format!("CPU {id} is beyond the largest supported id {MAX_CPU_ID}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_cpu_list("0-1,3,5-7\n").unwrap(), [0, 1, 3, 5, 6, 7]);
        assert_eq!(parse_cpu_list("0").unwrap(), [0]);
        assert_eq!(parse_cpu_list("2-2").unwrap(), [2]);
        assert_eq!(parse_cpu_list("4,0-1").unwrap(), [0, 1, 4]);
        assert_eq!(parse_cpu_list("0-2,1").unwrap(), [0, 1, 2]);
        assert_eq!(parse_cpu_list("65535").unwrap(), [65_535]);
    }

    #[test]
    fn bad_lists() {
        for bad in
            ["", "\n", "a", "1-", "-1", "3-1", "1,,2", "0-4294967295", "99999999999", "1 2", "1-2-3", "65536"]
        {
            match parse_cpu_list(bad) {
                Err(PerfError::CpuList { text, .. }) => assert_eq!(text, bad),
                other => panic!("{bad:?}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            parse_cpu_list("3-1").unwrap_err().to_string(),
            "cannot parse the CPU list \"3-1\": the range `3-1` runs backwards"
        );
    }

    #[test]
    fn this_machine() {
        let direct = |p: &str| std::fs::read_to_string(p).unwrap();
        assert_eq!(possible_cpus().unwrap(), parse_cpu_list(&direct(POSSIBLE_CPUS)).unwrap());
        let online = online_cpus().unwrap();
        let n = std::thread::available_parallelism().unwrap().get();
        assert!(online.len() >= n, "{online:?} vs {n} usable CPUs");
        assert!(online.iter().all(|c| possible_cpus().unwrap().contains(c)));
    }
}
