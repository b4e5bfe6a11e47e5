//! What a suite measures: the steps of a full run and of a quick one.
//!
//! Every gateway gets the same steps for what they all do (hold idle
//! connections, broadcast to everyone and to a room); Herald also gets the
//! steps only it has a part for (many edges at once, users across edges,
//! client actions through routers).

use serde::Serialize;

use super::servers::Contender;
use crate::scenario::broadcast::Target;

/// One measurement of one gateway.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measure {
    /// `connections` idle connections on one fresh gateway process.
    Idle { connections: u64 },
    /// `receivers` on one gateway, `rate` messages a second to `target`.
    Broadcast { receivers: u64, rate: f64, target: Target },
    /// `connections` idle connections over `edges` Herald edges.
    ManyEdges { edges: usize, connections: u64 },
    /// `users` with `tabs` tabs each over two Herald edges, `rate`
    /// messages a second to single users.
    CrossPod { users: u64, tabs: u64, rate: f64 },
    /// `connections` sending `rate` actions a second through a router to
    /// the echo handler.
    Actions { connections: u64, rate: f64 },
}

/// A measurement and the gateway it measures.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub contender: Contender,
    pub measure: Measure,
}

/// How long the steps run, by kind of run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Seconds idle connections are held before memory is sampled again.
    pub hold: u64,
    /// Seconds of publishing, or of sending actions.
    pub duration: f64,
    /// Longest wait for the last deliveries, in seconds.
    pub drain: f64,
}

/// The broadcast step whose latency distribution is compared: 1,000
/// receivers at 100 messages a second, 100,000 deliveries a second.
pub const REFERENCE_RECEIVERS: u64 = 1_000;
pub const REFERENCE_DELIVERIES: f64 = 100_000.0;
/// The idle step whose memory per connection is compared.
pub const REFERENCE_CONNECTIONS: u64 = 10_000;

/// The steps and timing of a run.
pub fn steps(contenders: &[Contender], quick: bool) -> (Vec<Step>, Timing) {
    let (idle, receivers, offered, timing): (&[u64], &[u64], &[f64], _) = if quick {
        (&[1_000], &[REFERENCE_RECEIVERS], &[REFERENCE_DELIVERIES], Timing { hold: 2, duration: 2.0, drain: 5.0 })
    } else {
        (
            &[1_000, 5_000, REFERENCE_CONNECTIONS, 19_000],
            &[REFERENCE_RECEIVERS, 10_000],
            &[REFERENCE_DELIVERIES, 250_000.0, 500_000.0, 1_000_000.0],
            Timing { hold: 5, duration: 3.0, drain: 10.0 },
        )
    };
    let mut steps = Vec::new();
    for &contender in contenders {
        let mut add = |measure| steps.push(Step { contender, measure });
        for &connections in idle {
            add(Measure::Idle { connections });
        }
        for &receivers in receivers {
            for &deliveries in offered {
                add(Measure::Broadcast { receivers, rate: deliveries / receivers as f64, target: Target::All });
            }
        }
        let group_rate = REFERENCE_DELIVERIES / REFERENCE_RECEIVERS as f64;
        add(Measure::Broadcast { receivers: REFERENCE_RECEIVERS, rate: group_rate, target: Target::Group });
        if contender == Contender::Herald {
            if quick {
                add(Measure::CrossPod { users: 500, tabs: 2, rate: 500.0 });
                add(Measure::Actions { connections: 100, rate: 1_000.0 });
            } else {
                add(Measure::ManyEdges { edges: 6, connections: 100_000 });
                add(Measure::CrossPod { users: 5_000, tabs: 2, rate: 1_000.0 });
                add(Measure::Actions { connections: 500, rate: 5_000.0 });
            }
        }
    }
    (steps, timing)
}

impl Step {
    /// A one-line description for progress and tables.
    pub fn label(&self) -> String {
        let what = match &self.measure {
            Measure::Idle { connections } => format!("idle, {connections} connections"),
            Measure::Broadcast { receivers, rate, target } => {
                let to = match target {
                    Target::All => "everyone",
                    Target::Group => "a group",
                };
                format!("broadcast to {to}, {receivers} receivers × {rate} msg/s")
            }
            Measure::ManyEdges { edges, connections } => format!("idle, {connections} connections on {edges} edges"),
            Measure::CrossPod { users, tabs, rate } => {
                format!("cross-pod, {users} users × {tabs} tabs on 2 edges, {rate} msg/s")
            }
            Measure::Actions { connections, rate } => format!("actions, {connections} connections, {rate}/s"),
        };
        format!("{}: {what}", self.contender.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_gets_the_shared_steps_and_herald_its_own() {
        let (full, _) = steps(&Contender::ALL, false);
        let of = |c| full.iter().filter(|s| s.contender == c).count();
        assert_eq!(of(Contender::Uws), of(Contender::Ws));
        assert_eq!(of(Contender::Ws), of(Contender::SocketIo));
        assert_eq!(of(Contender::Herald), of(Contender::Uws) + 3);
        assert!(full.iter().any(|s| matches!(s.measure, Measure::ManyEdges { connections: 100_000, .. })));
        let reference = |s: &&Step| {
            matches!(s.measure, Measure::Broadcast { receivers: REFERENCE_RECEIVERS, rate, target: Target::All }
                if rate * REFERENCE_RECEIVERS as f64 == REFERENCE_DELIVERIES)
        };
        assert_eq!(full.iter().filter(reference).count(), 4);
    }

    #[test]
    fn a_quick_run_is_small() {
        let (quick, timing) = steps(&Contender::ALL, true);
        assert!(quick.len() < 16, "{} steps", quick.len());
        assert!(timing.duration <= 2.0);
        assert!(!quick.iter().any(|s| matches!(s.measure, Measure::ManyEdges { .. })));
    }

    #[test]
    fn labels_say_who_and_what() {
        let step = Step {
            contender: Contender::SocketIo,
            measure: Measure::Broadcast { receivers: 10, rate: 5.0, target: Target::Group },
        };
        assert_eq!(step.label(), "Socket.IO: broadcast to a group, 10 receivers × 5 msg/s");
    }
}
