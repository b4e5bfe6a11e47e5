//! Resident memory and open files of server processes, read from
//! `/proc/<pid>/status` and `/proc/<pid>/fd`.
//!
//! `VmRSS` is what the process holds in RAM right now; sampled before and
//! after connections are opened, the difference divided by the connections
//! is what one connection costs the server, allocator slack included, which
//! is the number capacity planning needs.

use std::fs;

use anyhow::{Context, Result, bail};

/// `VmRSS` of process `pid`, in bytes.
pub fn resident_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    match vm_rss_bytes(&status) {
        Some(bytes) => Ok(bytes),
        None => bail!("{path} has no VmRSS line (a kernel thread or a zombie?)"),
    }
}

/// Files (sockets included) process `pid` holds open: the entries of
/// `/proc/<pid>/fd`.
pub fn open_files(pid: u32) -> Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(fs::read_dir(&path).with_context(|| format!("cannot list {path}"))?.count())
}

/// The `VmRSS:   123456 kB` line of a `/proc/<pid>/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let mut fields = line.split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    // The kernel always writes kB (KiB); refuse anything else rather than guess.
    match fields.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\therald\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1062516 kB\nVmHWM:\t   40012 kB\nVmRSS:\t   38804 kB\nRssAnon:\t   30000 kB\nThreads:\t3\n";

    #[test]
    fn reads_vm_rss_in_bytes() {
        assert_eq!(vm_rss_bytes(STATUS), Some(38_804 * 1024));
    }

    #[test]
    fn a_status_without_vm_rss_has_none() {
        assert_eq!(vm_rss_bytes("Name:\tkthreadd\nState:\tS (sleeping)\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\t12 MB\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\n"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(resident_bytes(std::process::id()).unwrap() > 0);
        // Other tests open files meanwhile, so only the order of magnitude.
        assert!(open_files(std::process::id()).unwrap() > 0);
        assert!(open_files(u32::MAX).is_err());
    }
}
