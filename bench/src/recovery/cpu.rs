//! A process's CPU time from `/proc/<pid>/stat` (user + system), sampled
//! while something runs: the total over the window and the busiest
//! sample, in percent of one core.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::proc_cpu::cpu_seconds;

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
