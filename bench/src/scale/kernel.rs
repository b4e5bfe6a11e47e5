//! What the machine holds while a scale run holds its connections: the
//! kernel's memory and sockets (`/proc/meminfo`, `/proc/net/sockstat`) and
//! the servers' resident memory, sampled every second, and the kernel
//! settings that bound how many connections one machine can open.

use std::fs;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::proc_mem::{self, kib_field_bytes};

/// The kernel settings a run of hundreds of thousands of loopback
/// connections depends on, as `/proc/sys` paths: ephemeral ports per
/// (source, destination), files in all and per process, the accept
/// queue's bound, and the pages TCP buffers may take.
const SETTINGS: [&str; 6] = [
    "net/ipv4/ip_local_port_range",
    "fs/file-max",
    "fs/nr_open",
    "net/core/somaxconn",
    "net/ipv4/tcp_max_syn_backlog",
    "net/ipv4/tcp_mem",
];

/// Bytes in a page of `/proc/net/sockstat`'s `mem` (4 KiB on x86-64 and
/// the usual arm64 kernels).
const PAGE_BYTES: u64 = 4096;

/// The kernel settings of [`SETTINGS`], as `sysctl` names them, with their
/// values (or why they could not be read).
pub fn settings() -> Vec<(String, String)> {
    SETTINGS
        .iter()
        .map(|path| {
            let value = fs::read_to_string(format!("/proc/sys/{path}"))
                .map_or_else(|e| format!("unreadable ({e})"), |v| v.split_whitespace().collect::<Vec<_>>().join(" "));
            (path.replace('/', "."), value)
        })
        .collect()
}

/// One look at the machine.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// The 1-minute load average (`/proc/loadavg`).
    pub load1: f64,
    /// `MemAvailable`: what processes could still be given.
    pub available_bytes: u64,
    /// `Slab`: kernel objects, among them every socket, its inode and
    /// dentry, its epoll entry.
    pub slab_bytes: u64,
    /// TCP `mem` of `/proc/net/sockstat`: pages in TCP buffers.
    pub tcp_buffer_bytes: u64,
    /// TCP `inuse` of `/proc/net/sockstat` (both ends of a loopback
    /// connection count).
    pub tcp_sockets: u64,
    /// `VmRSS` of every edge, added up.
    pub edges_rss_bytes: u64,
    /// `VmRSS` of nats-server.
    pub nats_rss_bytes: u64,
    /// `VmRSS` of the load tool: this process and its workers (its children
    /// running this binary), added up.
    pub tool_rss_bytes: u64,
}

impl Sample {
    /// Reads the machine now; `edges` and `nats` are the servers' pids.
    pub fn read(edges: &[u32], nats: u32) -> Result<Sample> {
        let meminfo = fs::read_to_string("/proc/meminfo").context("cannot read /proc/meminfo")?;
        let sockstat = fs::read_to_string("/proc/net/sockstat").context("cannot read /proc/net/sockstat")?;
        let kib = |name: &str| -> Result<u64> {
            kib_field_bytes(&meminfo, name).with_context(|| format!("/proc/meminfo has no {name} in kB"))
        };
        let (tcp_sockets, tcp_pages) = tcp_line(&sockstat).context("/proc/net/sockstat has no TCP line")?;
        let mut edges_rss_bytes = 0;
        for &pid in edges {
            edges_rss_bytes += proc_mem::resident_bytes(pid)?;
        }
        let loadavg = fs::read_to_string("/proc/loadavg").context("cannot read /proc/loadavg")?;
        Ok(Sample {
            load1: load1(&loadavg).context("/proc/loadavg does not start with a number")?,
            available_bytes: kib("MemAvailable")?,
            slab_bytes: kib("Slab")?,
            tcp_buffer_bytes: tcp_pages * PAGE_BYTES,
            tcp_sockets,
            edges_rss_bytes,
            nats_rss_bytes: proc_mem::resident_bytes(nats)?,
            tool_rss_bytes: tool_rss_bytes()?,
        })
    }

    /// The worst of both, field by field: the least available memory, the
    /// most of everything else.
    pub fn worst(self, other: Sample) -> Sample {
        Sample {
            load1: self.load1.max(other.load1),
            available_bytes: self.available_bytes.min(other.available_bytes),
            slab_bytes: self.slab_bytes.max(other.slab_bytes),
            tcp_buffer_bytes: self.tcp_buffer_bytes.max(other.tcp_buffer_bytes),
            tcp_sockets: self.tcp_sockets.max(other.tcp_sockets),
            edges_rss_bytes: self.edges_rss_bytes.max(other.edges_rss_bytes),
            nats_rss_bytes: self.nats_rss_bytes.max(other.nats_rss_bytes),
            tool_rss_bytes: self.tool_rss_bytes.max(other.tool_rss_bytes),
        }
    }
}

/// `VmRSS` of this process and of its children that run the same
/// executable (the workers; the edges and nats-server are children too,
/// of other executables). A child that exits meanwhile is skipped.
fn tool_rss_bytes() -> Result<u64> {
    let me = std::process::id();
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut bytes = proc_mem::resident_bytes(me)?;
    for entry in fs::read_dir("/proc").context("cannot list /proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let is_worker = fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| parent(&stat) == Some(me))
            && fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|path| path == exe);
        if is_worker {
            bytes += proc_mem::resident_bytes(pid).unwrap_or(0);
        }
    }
    Ok(bytes)
}

/// The parent's pid in a `/proc/<pid>/stat` text: the second field after
/// the command name, which is in parentheses and may hold spaces.
fn parent(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The 1-minute load average of a `/proc/loadavg` text
/// (`157.20 120.33 80.02 3/2100 4242`).
fn load1(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// `inuse` and `mem` of the `TCP:` line of a `/proc/net/sockstat` text
/// (`TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 1`).
fn tcp_line(sockstat: &str) -> Option<(u64, u64)> {
    let line = sockstat.lines().find_map(|line| line.strip_prefix("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let value = |name: &str| words.chunks(2).find(|pair| pair[0] == name)?.get(1)?.parse().ok();
    Some((value("inuse")?, value("mem")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tcp_line_gives_sockets_and_pages() {
        let text = "sockets: used 1031\nTCP: inuse 200012 orphan 0 tw 3 alloc 200020 mem 1534\nUDP: inuse 2 mem 0\n";
        assert_eq!(tcp_line(text), Some((200_012, 1534)));
        assert_eq!(tcp_line("UDP: inuse 2 mem 0\n"), None);
    }

    #[test]
    fn the_load_average_is_its_first_figure() {
        assert_eq!(load1("157.20 120.33 80.02 3/2100 4242\n"), Some(157.2));
        assert_eq!(load1(""), None);
    }

    #[test]
    fn a_stat_line_gives_the_parent() {
        assert_eq!(parent("4242 (herald-bench) S 17 4242 17 0 -1"), Some(17));
        assert_eq!(parent("7 (a) b (c) R 1 7 7"), Some(1));
        assert_eq!(parent("7 (a"), None);
    }

    #[test]
    fn the_worst_of_two_samples_is_least_available_and_most_held() {
        let a = Sample { available_bytes: 10, slab_bytes: 5, edges_rss_bytes: 7, load1: 3.0, ..Sample::default() };
        let b = Sample { available_bytes: 8, slab_bytes: 6, edges_rss_bytes: 3, load1: 9.5, ..Sample::default() };
        let worst = a.worst(b);
        assert_eq!((worst.available_bytes, worst.slab_bytes, worst.edges_rss_bytes), (8, 6, 7));
        assert_eq!(worst.load1, 9.5);
    }

    #[test]
    fn this_machine_can_be_read() {
        let sample = Sample::read(&[std::process::id()], std::process::id()).unwrap();
        assert!(sample.available_bytes > 0 && sample.slab_bytes > 0 && sample.nats_rss_bytes > 0);
        assert!(sample.tool_rss_bytes >= sample.nats_rss_bytes, "this process at least");
        assert!(settings().iter().any(|(name, _)| name == "fs.nr_open"));
    }
}
