//! What a suite measures: the steps of a full run, of a quick one, and of
//! the regression guard.
//!
//! Every gateway gets the same steps for what they all do (hold idle
//! connections, broadcast to everyone and to a room); Herald also gets the
//! steps only it has a part for (many edges at once, users across edges,
//! client actions through routers). The Pusher servers (Herald's Pusher
//! path, soketi, sockudo) get the Pusher steps instead: subscribers of one
//! channel, idle and broadcast to, and Herald's native path the same
//! shapes, for the Pusher ÷ native ratio. Herald's Socket.IO path gets
//! the broadcast steps, for its ratio to the Node Socket.IO server.

use serde::Serialize;

use super::servers::Contender;
use crate::scenario::broadcast::{GROUP, Target};

/// One measurement of one gateway.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measure {
    /// `connections` idle connections on one fresh gateway process.
    Idle { connections: u64 },
    /// `connections` idle connections on one fresh gateway process, each
    /// in group `group` (on a Pusher server: subscribed to the channel).
    Subscribers { connections: u64, group: &'static str },
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

/// How much a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Extent {
    /// Every step at every size.
    Full,
    /// One size of each step: the smoke test that the whole suite runs.
    Quick,
    /// The side-by-side figures at their reference sizes, with a quick
    /// run's short steps: a change that makes one of them worse is seen
    /// in minutes (`just bench-quick`).
    Guard,
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
/// The subscribers the Pusher steps are run with, in a full run; a quick
/// run has the first only.
pub const PUSHER_SUBSCRIBERS: [u64; 2] = [REFERENCE_RECEIVERS, 10_000];

/// The offered deliveries a second of the broadcasts whose best without
/// loss is compared.
const OFFERED: [f64; 4] = [REFERENCE_DELIVERIES, 250_000.0, 500_000.0, 1_000_000.0];
/// The same for the Pusher servers, at both sizes: up to the native
/// path's top step, so that Herald's Pusher path and its native path are
/// compared at the same offered load.
const PUSHER_OFFERED: [f64; 3] = [REFERENCE_DELIVERIES, 500_000.0, 1_000_000.0];
/// A quick run's and the guard's steps: short.
const SHORT: Timing = Timing { hold: 2, duration: 2.0, drain: 5.0 };

/// The steps and timing of a run.
pub fn steps(contenders: &[Contender], extent: Extent) -> (Vec<Step>, Timing) {
    let quick = match extent {
        Extent::Guard => return (guard(contenders), SHORT),
        Extent::Quick => true,
        Extent::Full => false,
    };
    let (idle, receivers, offered, timing): (&[u64], &[u64], &[f64], _) = if quick {
        (&[1_000], &[REFERENCE_RECEIVERS], &[REFERENCE_DELIVERIES], SHORT)
    } else {
        (
            &[1_000, 5_000, REFERENCE_CONNECTIONS, 19_000],
            &[REFERENCE_RECEIVERS, 10_000],
            &OFFERED,
            Timing { hold: 5, duration: 3.0, drain: 10.0 },
        )
    };
    let mut steps = Vec::new();
    for &contender in contenders {
        if contender.speaks_pusher() {
            steps.extend(pusher_steps(contender, quick).into_iter().map(|measure| Step { contender, measure }));
            continue;
        }
        let mut add = |measure| steps.push(Step { contender, measure });
        // Herald's Socket.IO path is measured where it differs from the
        // native one, the deliveries, beside the Node Socket.IO server.
        if contender == Contender::HeraldSocketIo {
            broadcasts(receivers, offered, Target::All).for_each(&mut add);
            // The room broadcast too, where the run is not a quick one.
            if !quick {
                let rate = group_rate_at(REFERENCE_RECEIVERS);
                add(Measure::Broadcast { receivers: REFERENCE_RECEIVERS, rate, target: Target::Group });
            }
            continue;
        }
        for &connections in idle {
            add(Measure::Idle { connections });
        }
        broadcasts(receivers, offered, Target::All).for_each(&mut add);
        let group_rate = group_rate_at(REFERENCE_RECEIVERS);
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
            // The Pusher steps' shapes on the native path (its broadcast to
            // a group at 1k receivers is above).
            let subscribers = if quick { &PUSHER_SUBSCRIBERS[..1] } else { &PUSHER_SUBSCRIBERS[..] };
            for &connections in subscribers {
                add(Measure::Subscribers { connections, group: GROUP });
            }
            for &receivers in subscribers.iter().filter(|&&r| r != REFERENCE_RECEIVERS) {
                add(Measure::Broadcast { receivers, rate: group_rate_at(receivers), target: Target::Group });
            }
        }
    }
    (steps, timing)
}

/// The guard's steps: for each gateway of the side-by-side table, the
/// idle connections and the broadcasts its figures are read from, at their
/// reference sizes; and when Herald's Pusher path is asked for, what its
/// figures against the native path are read from. None of the other steps
/// (Herald's own, the other Pusher servers, the Socket.IO paths: the quick
/// run has those).
fn guard(contenders: &[Contender]) -> Vec<Step> {
    let side_by_side = contenders.iter().filter(|c| !c.speaks_pusher() && **c != Contender::HeraldSocketIo);
    let mut steps = Vec::new();
    for &contender in side_by_side {
        steps.push(Step { contender, measure: Measure::Idle { connections: REFERENCE_CONNECTIONS } });
        let measures = broadcasts(&[REFERENCE_RECEIVERS, 10_000], &OFFERED, Target::All);
        steps.extend(measures.map(|measure| Step { contender, measure }));
    }
    // Herald's Pusher path, beside the native path measured above: its
    // memory per subscriber and its broadcasts to a channel.
    if contenders.contains(&Contender::HeraldPusher) {
        let contender = Contender::HeraldPusher;
        steps.push(Step {
            contender,
            measure: Measure::Subscribers { connections: REFERENCE_CONNECTIONS, group: GROUP },
        });
        let measures = broadcasts(&PUSHER_SUBSCRIBERS, &PUSHER_OFFERED, Target::Group);
        steps.extend(measures.map(|measure| Step { contender, measure }));
    }
    steps
}

/// Broadcasts to `target` at each size of `receivers`, each offering each
/// of `offered` deliveries a second, sizes outermost.
fn broadcasts<'a>(receivers: &'a [u64], offered: &'a [f64], target: Target) -> impl Iterator<Item = Measure> + 'a {
    receivers.iter().flat_map(move |&receivers| {
        offered.iter().map(move |&deliveries| Measure::Broadcast {
            receivers,
            rate: deliveries / receivers as f64,
            target,
        })
    })
}

/// The rate of a broadcast to `receivers` that offers the reference
/// deliveries a second.
fn group_rate_at(receivers: u64) -> f64 {
    REFERENCE_DELIVERIES / receivers as f64
}

/// The steps of a Pusher server: subscribers of channel `bench` held idle,
/// then broadcast to, at rising offered rates; in a full run, one
/// broadcast to a private channel. Herald's Pusher path published through
/// a router measures only the broadcasts (its idle subscribers are those of
/// the NATS-published one).
fn pusher_steps(contender: Contender, quick: bool) -> Vec<Measure> {
    let (subscribers, offered): (&[u64], &[f64]) = if quick {
        (&PUSHER_SUBSCRIBERS[..1], &[REFERENCE_DELIVERIES])
    } else {
        (&PUSHER_SUBSCRIBERS, &PUSHER_OFFERED)
    };
    let mut steps = Vec::new();
    if contender != Contender::HeraldPusherRest {
        steps.extend(subscribers.iter().map(|&connections| Measure::Subscribers { connections, group: GROUP }));
    }
    steps.extend(broadcasts(subscribers, offered, Target::Group));
    if !quick {
        let rate = group_rate_at(REFERENCE_RECEIVERS);
        steps.push(Measure::Broadcast { receivers: REFERENCE_RECEIVERS, rate, target: Target::Private });
    }
    steps
}

impl Step {
    /// A one-line description for progress and tables.
    pub fn label(&self) -> String {
        let what = match &self.measure {
            Measure::Idle { connections } => format!("idle, {connections} connections"),
            Measure::Subscribers { connections, group } => {
                let of = if self.contender.speaks_pusher() { "channel" } else { "group" };
                format!("idle, {connections} subscribers of {of} {group}")
            }
            Measure::Broadcast { receivers, rate, target } => {
                let to = match (target, self.contender.speaks_pusher()) {
                    (Target::All, _) => "everyone",
                    (Target::Group, false) => "a group",
                    (Target::Group, true) => "a channel",
                    (Target::Private, false) => "a group (private-)",
                    (Target::Private, true) => "a private channel",
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
        let (full, _) = steps(&Contender::ALL, Extent::Full);
        let of = |c| full.iter().filter(|s| s.contender == c).count();
        assert_eq!(of(Contender::Uws), of(Contender::Ws));
        assert_eq!(of(Contender::Ws), of(Contender::SocketIo));
        // Many edges, cross-pod, actions; subscribers ×2 and a group
        // broadcast to 10k, the Pusher steps' native shapes.
        assert_eq!(of(Contender::Herald), of(Contender::Uws) + 6);
        assert!(full.iter().any(|s| matches!(s.measure, Measure::ManyEdges { connections: 100_000, .. })));
        let reference = |s: &&Step| {
            matches!(s.measure, Measure::Broadcast { receivers: REFERENCE_RECEIVERS, rate, target: Target::All }
                if rate * REFERENCE_RECEIVERS as f64 == REFERENCE_DELIVERIES)
        };
        assert_eq!(full.iter().filter(reference).count(), 5);
    }

    #[test]
    fn herald_socket_io_gets_the_broadcasts() {
        let (full, _) = steps(&[Contender::HeraldSocketIo], Extent::Full);
        assert_eq!(full.len(), 9, "to all at 2 sizes × 4 rates, and to a room");
        assert!(full.iter().all(|s| matches!(s.measure, Measure::Broadcast { .. })));
        let (quick, _) = steps(&[Contender::HeraldSocketIo], Extent::Quick);
        assert_eq!(quick.len(), 1);
    }

    #[test]
    fn every_pusher_server_gets_the_pusher_steps_only() {
        let (full, _) = steps(&Contender::ALL, Extent::Full);
        let of = |c| full.iter().filter(|s| s.contender == c).collect::<Vec<_>>();
        let soketi = of(Contender::Soketi);
        // Subscribers ×2, 2 sizes × 3 rates, a private channel.
        assert_eq!(soketi.len(), 9);
        assert_eq!(of(Contender::Sockudo).len(), 9);
        assert_eq!(of(Contender::HeraldPusher).len(), 9);
        // The REST-published Herald: the broadcasts only.
        assert_eq!(of(Contender::HeraldPusherRest).len(), 7);
        // At both sizes, up to the native path's top step.
        for receivers in PUSHER_SUBSCRIBERS {
            let top = |s: &&&Step| {
                matches!(s.measure, Measure::Broadcast { receivers: r, rate, .. }
                if r == receivers && rate * r as f64 == OFFERED[OFFERED.len() - 1])
            };
            assert_eq!(soketi.iter().filter(top).count(), 1, "{receivers}");
        }
        assert!(
            soketi
                .iter()
                .all(|s| !matches!(s.measure, Measure::Idle { .. } | Measure::Broadcast { target: Target::All, .. }))
        );
        let private = |s: &&&Step| matches!(s.measure, Measure::Broadcast { target: Target::Private, .. });
        assert_eq!(soketi.iter().filter(private).count(), 1);
        let subscribers = |s: &&&Step| matches!(s.measure, Measure::Subscribers { group: GROUP, .. });
        assert_eq!(soketi.iter().filter(subscribers).count(), 2);
        assert_eq!(of(Contender::Herald).iter().filter(subscribers).count(), 2);
    }

    #[test]
    fn a_quick_run_is_small() {
        let (quick, timing) = steps(&Contender::ALL, Extent::Quick);
        assert!(quick.len() < 24, "{} steps", quick.len());
        let of = |c| quick.iter().filter(|s| s.contender == c).count();
        assert_eq!((of(Contender::Soketi), of(Contender::HeraldPusherRest)), (2, 1));
        assert!(timing.duration <= 2.0);
        assert!(!quick.iter().any(|s| matches!(s.measure, Measure::ManyEdges { .. })));
    }

    #[test]
    fn the_guard_measures_the_side_by_side_figures_at_their_reference_sizes() {
        let (guard, timing) = steps(&Contender::ALL, Extent::Guard);
        let of = |c| guard.iter().filter(|s| s.contender == c).collect::<Vec<_>>();
        for contender in [Contender::Herald, Contender::Uws, Contender::Ws, Contender::SocketIo] {
            let steps = of(contender);
            assert_eq!(steps.len(), 9, "{contender:?}: idle, and 2 sizes × 4 rates");
            let idle = |s: &&Step| matches!(s.measure, Measure::Idle { connections: REFERENCE_CONNECTIONS });
            assert_eq!(steps.iter().copied().filter(idle).count(), 1);
            for receivers in [REFERENCE_RECEIVERS, 10_000] {
                let at = |s: &&Step| matches!(s.measure, Measure::Broadcast { receivers: r, target: Target::All, .. } if r == receivers);
                assert_eq!(steps.iter().copied().filter(at).count(), OFFERED.len());
            }
        }
        let pusher = of(Contender::HeraldPusher);
        assert_eq!(pusher.len(), 7, "subscribers, and 2 sizes × 3 rates to a channel");
        let top = |s: &&Step| {
            matches!(s.measure, Measure::Broadcast { receivers: 10_000, rate, target: Target::Group }
            if rate * 10_000.0 == OFFERED[OFFERED.len() - 1])
        };
        assert_eq!(pusher.iter().copied().filter(top).count(), 1, "the native path's top step");
        for contender in [Contender::HeraldPusherRest, Contender::Soketi, Contender::Sockudo, Contender::HeraldSocketIo]
        {
            assert!(of(contender).is_empty(), "{contender:?}");
        }
        assert!(timing.duration <= 2.0);
    }

    #[test]
    fn labels_say_who_and_what() {
        let step = Step {
            contender: Contender::SocketIo,
            measure: Measure::Broadcast { receivers: 10, rate: 5.0, target: Target::Group },
        };
        assert_eq!(step.label(), "Socket.IO: broadcast to a group, 10 receivers × 5 msg/s");
        let step =
            Step { contender: Contender::Soketi, measure: Measure::Subscribers { connections: 10, group: "bench" } };
        assert_eq!(step.label(), "soketi: idle, 10 subscribers of channel bench");
        let step = Step {
            contender: Contender::Sockudo,
            measure: Measure::Broadcast { receivers: 10, rate: 5.0, target: Target::Private },
        };
        assert_eq!(step.label(), "sockudo: broadcast to a private channel, 10 receivers × 5 msg/s");
    }
}
