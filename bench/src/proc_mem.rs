//! Resident memory and open files of server processes, read from
//! `/proc/<pid>/status` and `/proc/<pid>/fd`, and the `name: value` lines
//! of /proc files they and the machine's memory are read from.
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
    kib_field_bytes(status, "VmRSS")
}

/// The value of the first `name: value` line of a /proc file.
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// A `name:   123456 kB` line of a /proc file (`/proc/meminfo`,
/// `/proc/<pid>/status`), in bytes.
pub fn kib_field_bytes(text: &str, name: &str) -> Option<u64> {
    let mut words = field(text, name)?.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    // The kernel always writes kB (KiB); refuse anything else rather than guess.
    match words.next()? {
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
    fn proc_fields_are_found_by_name() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nMemTotal:       24592904 kB\n";
        assert_eq!(field(text, "model name"), Some("AMD EPYC 7B13"));
        assert_eq!(field(text, "MemTotal"), Some("24592904 kB"));
        assert_eq!(field(text, "flags"), None);
        assert_eq!(kib_field_bytes(text, "MemTotal"), Some(24_592_904 * 1024));
        assert_eq!(kib_field_bytes(text, "model name"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(resident_bytes(std::process::id()).unwrap() > 0);
        // Other tests open files meanwhile, so only the order of magnitude.
        assert!(open_files(std::process::id()).unwrap() > 0);
        assert!(open_files(u32::MAX).is_err());
    }
}
