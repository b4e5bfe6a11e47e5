//! What a run ran on: the machine, and the version of every program and
//! package measured, read at the start so the report says exactly what was
//! compared.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::proc_mem::{field, kib_field_bytes};
use crate::procs;

/// The machine and the versions.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// Open files each process may have.
    pub open_files: u64,
    /// Program or package → version (or why it could not be read).
    pub versions: BTreeMap<String, String>,
}

impl Machine {
    pub fn read(herald: &Path, peers: &Path, sockudo: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = kib_field_bytes(&meminfo, "MemTotal").unwrap_or(0);
        let mut versions = BTreeMap::new();
        let herald = herald.to_string_lossy();
        let sockudo = sockudo.to_string_lossy();
        for (name, program, flag) in [
            ("herald", herald.as_ref(), "--version"),
            ("sockudo", sockudo.as_ref(), "--version"),
            ("rustc", "rustc", "--version"),
            ("nats-server", "nats-server", "--version"),
            ("redis-server", "redis-server", "--version"),
            ("node", "node", "--version"),
        ] {
            versions.insert(name.to_owned(), version_of(program, flag));
        }
        versions.extend(packages(peers));
        Machine {
            cpu: field(&cpuinfo, "model name").unwrap_or("unknown").to_owned(),
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: memory_bytes as f64 / (1024.0 * 1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            open_files: procs::open_file_limit().unwrap_or(0),
            versions,
        }
    }
}

/// The first line `program flag` prints.
fn version_of(program: &str, flag: &str) -> String {
    match Command::new(program).arg(flag).output() {
        Ok(output) => {
            let text = if output.stdout.is_empty() { output.stderr } else { output.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_owned()
        }
        Err(e) => format!("not found ({e})"),
    }
}

/// The installed version of every dependency of the peers' package; an
/// alias (`"uWebSockets.js": "npm:uwebsockets@..."`) with the package
/// it stands for.
fn packages(peers: &Path) -> Vec<(String, String)> {
    let read =
        |path: &Path| -> Option<serde_json::Value> { serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok() };
    let Some(manifest) = read(&peers.join("package.json")) else { return Vec::new() };
    let Some(dependencies) = manifest["dependencies"].as_object() else { return Vec::new() };
    dependencies
        .keys()
        .map(|name| {
            let installed = read(&peers.join("node_modules").join(name).join("package.json"));
            let version = installed.and_then(|p| {
                let version = p["version"].as_str()?;
                Some(match p["name"].as_str() {
                    Some(real) if real != name => format!("{version} ({real})"),
                    _ => version.to_owned(),
                })
            });
            (format!("npm {name}"), version.unwrap_or_else(|| "not installed".to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_not_fatal() {
        assert!(version_of("herald-bench-no-such-program", "--version").starts_with("not found"));
    }
}
