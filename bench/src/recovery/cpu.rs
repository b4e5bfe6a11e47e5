//! A process's CPU time from `/proc/<pid>/stat` (user + system), sampled
//! while something runs: the total over the window and the busiest
//! sample, in percent of one core.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

/// How often the CPU time is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// A process's CPU over a window.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub pid: u32,
    /// User + system seconds spent in the window.
    pub seconds: f64,
    /// The window's length.
    pub window_seconds: f64,
    /// `seconds` ÷ `window_seconds`, in percent of one core.
    pub mean_percent: f64,
    /// The busiest 250 ms sample, in percent of one core.
    pub peak_percent: f64,
}

/// User + system time of `pid` so far, in seconds.
#[allow(unsafe_code, reason = "sysconf(3) has no wrapper in std")]
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields count from its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// Samples `pid`'s CPU until [`Sampler::finish`].
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Cpu>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let first = cpu_seconds(pid).unwrap_or(0.0);
            let (mut last, mut last_at, mut peak) = (first, started, 0.0f64);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(SAMPLE_EVERY) => {
                        let now = cpu_seconds(pid).unwrap_or(last);
                        let elapsed = last_at.elapsed().as_secs_f64();
                        peak = peak.max(100.0 * (now - last) / elapsed);
                        (last, last_at) = (now, Instant::now());
                    }
                }
            }
            let seconds = cpu_seconds(pid).unwrap_or(last) - first;
            let window_seconds = started.elapsed().as_secs_f64();
            Cpu { pid, seconds, window_seconds, mean_percent: 100.0 * seconds / window_seconds, peak_percent: peak }
        });
        Sampler { stop, task }
    }

    pub async fn finish(self) -> Cpu {
        let _ = self.stop.send(true);
        self.task.await.expect("the sampler does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_spent_some_cpu() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_seconds(std::process::id()).unwrap() > 0.0);
    }
}
