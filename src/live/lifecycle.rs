//! The broadcast lifecycle as a sans-IO state machine: which room has a broadcast, whether its
//! publisher is connected, away (and until when it may come back), or gone, and when an ended
//! broadcast is forgotten. It owns no socket, task or clock: the driver (`Live`) feeds
//! [`Lifecycle::handle`] an [`Input`] with the time, drains [`Lifecycle::poll_output`], and calls
//! again with [`Input::Tick`] at [`Lifecycle::poll_timeout`]. Media, recordings and the room's
//! sockets are the driver's business; this decides only *what* happens and *when*.
//!
//! ```text
//!   Publish ──▶ Connected(conn) ──Dropped──▶ Away{until} ──Publish──▶ Connected(conn')
//!                   │                           │ Tick ≥ until
//!                   └──End / Shutdown──▶ Ended{forget_at} ◀──┘ ──Tick ≥ forget_at──▶ (gone)
//! ```
//! Every decision and every state change happens in one `handle` call, so a publisher coming
//! back at the instant its grace runs out is either resumed or ends the broadcast, never both;
//! and each absence has its own deadline, so an earlier drop can never end a later one.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Identifies one broadcast (a room's broadcasts get new ids; a resumed one keeps its id).
pub type BroadcastId = u64;

/// Limits the lifecycle enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Broadcasts running at once (ended ones do not count).
    pub max_broadcasts: usize,
    /// How long a dropped publisher may take to come back to the same broadcast.
    pub grace: Duration,
    /// How long an ended broadcast stays (its playlist says ENDLIST) before it is forgotten.
    pub linger: Duration,
}

/// Something that happened to a publisher or a room.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A publisher on connection `conn` presented room `slug`'s key.
    Publish { slug: &'a str, conn: u64 },
    /// Connection `conn` ended without unpublishing (a network drop, a crashed encoder).
    Dropped { slug: &'a str, conn: u64 },
    /// End broadcast `id` now: the publisher unpublished, the key was rotated, the room deleted.
    End { slug: &'a str, id: BroadcastId },
    /// Refuse new publishers and end every broadcast.
    Shutdown,
    /// Time passed; handle deadlines up to now.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A new broadcast: set up its live window, tell the room.
    Started { slug: String, id: BroadcastId },
    /// The publisher is back on `conn`: the same window continues (after a discontinuity).
    Resumed {
        slug: String,
        id: BroadcastId,
        conn: u64,
    },
    /// The publisher is gone for now: break the stream, stop the transcoder.
    Away { slug: String, id: BroadcastId },
    /// The broadcast is over: close its playlist, finish its recording, tell the room.
    Ended { slug: String, id: BroadcastId },
    /// The ended broadcast's lingering is over: drop it.
    Forgotten { slug: String, id: BroadcastId },
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the room already has a publisher")]
    AlreadyLive,
    #[error("too many broadcasts at once (limit {0})")]
    TooMany(usize),
    #[error("the server is shutting down")]
    ShuttingDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    Connected(u64),
    Away { until: Instant },
    Ended { forget_at: Instant },
}

#[derive(Debug)]
struct Entry {
    id: BroadcastId,
    publisher: Publisher,
}

/// Every room's broadcast on this node.
#[derive(Debug)]
pub struct Lifecycle {
    limits: Limits,
    rooms: HashMap<String, Entry>,
    outputs: VecDeque<Output>,
    next_id: BroadcastId,
    shutting_down: bool,
}

impl Lifecycle {
    pub fn new(limits: Limits) -> Lifecycle {
        Lifecycle {
            limits,
            rooms: HashMap::new(),
            outputs: VecDeque::new(),
            next_id: 1,
            shutting_down: false,
        }
    }

    /// Applies one input at `now`. Only `Publish` can be refused.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) -> Result<(), Refusal> {
        match input {
            Input::Publish { slug, conn } => self.publish(slug, conn),
            Input::Dropped { slug, conn } => {
                if let Some(e) = self.rooms.get_mut(slug) {
                    if e.publisher == Publisher::Connected(conn) {
                        e.publisher = Publisher::Away {
                            until: now + self.limits.grace,
                        };
                        self.outputs.push_back(Output::Away {
                            slug: slug.to_string(),
                            id: e.id,
                        });
                    }
                }
                Ok(())
            }
            Input::End { slug, id } => {
                self.end(slug, Some(id), now);
                Ok(())
            }
            Input::Shutdown => {
                self.shutting_down = true;
                let mut slugs: Vec<String> = self.rooms.keys().cloned().collect();
                slugs.sort();
                for slug in slugs {
                    self.end(&slug, None, now);
                }
                Ok(())
            }
            Input::Tick => {
                let mut due: Vec<(String, Publisher)> = self
                    .rooms
                    .iter()
                    .filter(|(_, e)| match e.publisher {
                        Publisher::Away { until } => until <= now,
                        Publisher::Ended { forget_at } => forget_at <= now,
                        Publisher::Connected(_) => false,
                    })
                    .map(|(s, e)| (s.clone(), e.publisher))
                    .collect();
                due.sort_by(|a, b| a.0.cmp(&b.0));
                for (slug, p) in due {
                    match p {
                        Publisher::Away { .. } => self.end(&slug, None, now),
                        _ => {
                            let e = self.rooms.remove(&slug).expect("listed just now");
                            self.outputs.push_back(Output::Forgotten { slug, id: e.id });
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether `slug` has a publisher connected now (not away, not ended).
    pub fn connected(&self, slug: &str) -> bool {
        self.rooms
            .get(slug)
            .is_some_and(|e| matches!(e.publisher, Publisher::Connected(_)))
    }

    fn publish(&mut self, slug: &str, conn: u64) -> Result<(), Refusal> {
        if self.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        if let Some(e) = self.rooms.get_mut(slug) {
            match e.publisher {
                Publisher::Connected(_) => return Err(Refusal::AlreadyLive),
                Publisher::Away { .. } => {
                    e.publisher = Publisher::Connected(conn);
                    self.outputs.push_back(Output::Resumed {
                        slug: slug.to_string(),
                        id: e.id,
                        conn,
                    });
                    return Ok(());
                }
                Publisher::Ended { .. } => {} // replaced below
            }
        }
        if self.running() >= self.limits.max_broadcasts {
            return Err(Refusal::TooMany(self.limits.max_broadcasts));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.rooms.insert(
            slug.to_string(),
            Entry {
                id,
                publisher: Publisher::Connected(conn),
            },
        );
        self.outputs.push_back(Output::Started {
            slug: slug.to_string(),
            id,
        });
        Ok(())
    }

    /// Ends the room's broadcast (only if it is `id`, when given) unless it has ended already.
    fn end(&mut self, slug: &str, id: Option<BroadcastId>, now: Instant) {
        let Some(e) = self.rooms.get_mut(slug) else {
            return;
        };
        if id.is_some_and(|id| id != e.id) || matches!(e.publisher, Publisher::Ended { .. }) {
            return;
        }
        e.publisher = Publisher::Ended {
            forget_at: now + self.limits.linger,
        };
        self.outputs.push_back(Output::Ended {
            slug: slug.to_string(),
            id: e.id,
        });
    }

    /// The next thing the driver must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call again with [`Input::Tick`]: the earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rooms
            .values()
            .filter_map(|e| match e.publisher {
                Publisher::Away { until } => Some(until),
                Publisher::Ended { forget_at } => Some(forget_at),
                Publisher::Connected(_) => None,
            })
            .min()
    }

    /// Broadcasts not ended.
    pub fn running(&self) -> usize {
        self.rooms
            .values()
            .filter(|e| !matches!(e.publisher, Publisher::Ended { .. }))
            .count()
    }

    /// The room's current broadcast and whether it has ended.
    pub fn current(&self, slug: &str) -> Option<(BroadcastId, bool)> {
        let e = self.rooms.get(slug)?;
        Some((e.id, matches!(e.publisher, Publisher::Ended { .. })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(4);
    const LINGER: Duration = Duration::from_secs(30);

    /// A lifecycle and a simulated clock.
    struct Sim {
        l: Lifecycle,
        t0: Instant,
        now: Instant,
    }

    impl Sim {
        fn new(max_broadcasts: usize) -> Sim {
            let t0 = Instant::now();
            Sim {
                l: Lifecycle::new(Limits {
                    max_broadcasts,
                    grace: GRACE,
                    linger: LINGER,
                }),
                t0,
                now: t0,
            }
        }

        /// Moves the clock to `ms` after the start, ticking at every deadline on the way (as
        /// the driver's timer would), and returns what came out.
        fn at(&mut self, ms: u64) -> Vec<Output> {
            let target = self.t0 + Duration::from_millis(ms);
            while let Some(t) = self.l.poll_timeout().filter(|t| *t <= target) {
                self.now = t.max(self.now);
                self.l.handle(Input::Tick, self.now).unwrap();
            }
            self.now = target;
            self.drain()
        }

        fn drain(&mut self) -> Vec<Output> {
            std::iter::from_fn(|| self.l.poll_output()).collect()
        }

        fn go(&mut self, input: Input<'_>) -> Result<Vec<Output>, Refusal> {
            self.l.handle(input, self.now)?;
            Ok(self.drain())
        }
    }

    fn started(slug: &str, id: u64) -> Output {
        Output::Started {
            slug: slug.into(),
            id,
        }
    }
    fn ended(slug: &str, id: u64) -> Output {
        Output::Ended {
            slug: slug.into(),
            id,
        }
    }
    fn away(slug: &str, id: u64) -> Output {
        Output::Away {
            slug: slug.into(),
            id,
        }
    }

    #[test]
    fn a_publisher_that_comes_back_within_grace_continues_the_broadcast() {
        let mut s = Sim::new(10);
        let pub1 = Input::Publish {
            slug: "stage",
            conn: 1,
        };
        assert_eq!(s.go(pub1).unwrap(), [started("stage", 1)]);
        assert_eq!(
            s.go(pub1),
            Err(Refusal::AlreadyLive),
            "one publisher per room"
        );
        s.at(10_000);
        let drop1 = Input::Dropped {
            slug: "stage",
            conn: 1,
        };
        assert_eq!(s.go(drop1).unwrap(), [away("stage", 1)]);
        assert!(s.at(13_900).is_empty(), "still in its grace period");
        let back = Input::Publish {
            slug: "stage",
            conn: 2,
        };
        assert_eq!(
            s.go(back).unwrap(),
            [Output::Resumed {
                slug: "stage".into(),
                id: 1,
                conn: 2
            }]
        );
        assert!(s.at(60_000).is_empty(), "the old deadline does nothing");
        assert_eq!(s.l.current("stage"), Some((1, false)));
    }

    #[test]
    fn a_publisher_that_stays_away_ends_it_at_the_deadline_and_it_is_forgotten_later() {
        let mut s = Sim::new(10);
        s.go(Input::Publish {
            slug: "stage",
            conn: 1,
        })
        .unwrap();
        s.at(1_000);
        s.go(Input::Dropped {
            slug: "stage",
            conn: 1,
        })
        .unwrap();
        assert!(s.at(4_999).is_empty());
        assert_eq!(s.at(5_000), [ended("stage", 1)]);
        assert_eq!(s.l.current("stage"), Some((1, true)));
        assert_eq!(s.l.running(), 0);
        assert!(s.at(34_999).is_empty(), "the ended playlist lingers");
        assert_eq!(
            s.at(35_000),
            [Output::Forgotten {
                slug: "stage".into(),
                id: 1
            }]
        );
        assert_eq!(s.l.current("stage"), None);
        assert_eq!(s.l.poll_timeout(), None);
    }

    #[test]
    fn a_second_drop_gets_a_whole_grace_period_of_its_own() {
        let mut s = Sim::new(10);
        s.go(Input::Publish {
            slug: "stage",
            conn: 1,
        })
        .unwrap();
        s.go(Input::Dropped {
            slug: "stage",
            conn: 1,
        })
        .unwrap();
        s.at(800);
        s.go(Input::Publish {
            slug: "stage",
            conn: 2,
        })
        .unwrap();
        s.at(2_800);
        s.go(Input::Dropped {
            slug: "stage",
            conn: 2,
        })
        .unwrap();
        // Past the first drop's deadline (4 s), inside the second's (6.8 s).
        assert!(s.at(5_200).is_empty(), "the first drop's deadline ended it");
        assert_eq!(s.at(6_800), [ended("stage", 1)]);
    }

    #[test]
    fn drops_and_ends_from_other_connections_or_broadcasts_change_nothing() {
        let mut s = Sim::new(10);
        s.go(Input::Publish {
            slug: "stage",
            conn: 1,
        })
        .unwrap();
        // A connection that never published here (a refused second publisher, a rung).
        assert!(s
            .go(Input::Dropped {
                slug: "stage",
                conn: 9
            })
            .unwrap()
            .is_empty());
        assert!(s
            .go(Input::Dropped {
                slug: "other",
                conn: 1
            })
            .unwrap()
            .is_empty());
        s.go(Input::End {
            slug: "stage",
            id: 1,
        })
        .unwrap();
        assert_eq!(
            s.go(Input::Publish {
                slug: "stage",
                conn: 2
            })
            .unwrap(),
            [started("stage", 2)],
            "an ended broadcast is replaced by a new one"
        );
        // A slow end of the old broadcast must not end the new one.
        assert!(s
            .go(Input::End {
                slug: "stage",
                id: 1
            })
            .unwrap()
            .is_empty());
        // The old one's linger is over with it: nothing is forgotten that is still running.
        assert!(s.at(100_000).is_empty());
        assert_eq!(s.l.current("stage"), Some((2, false)));
        // Ending twice says so once.
        assert_eq!(
            s.go(Input::End {
                slug: "stage",
                id: 2
            })
            .unwrap(),
            [ended("stage", 2)]
        );
        assert!(s
            .go(Input::End {
                slug: "stage",
                id: 2
            })
            .unwrap()
            .is_empty());
    }

    #[test]
    fn at_most_max_broadcasts_run_and_ended_ones_do_not_count() {
        let mut s = Sim::new(2);
        s.go(Input::Publish { slug: "a", conn: 1 }).unwrap();
        s.go(Input::Publish { slug: "b", conn: 2 }).unwrap();
        assert_eq!(
            s.go(Input::Publish { slug: "c", conn: 3 }),
            Err(Refusal::TooMany(2))
        );
        // A publisher away still holds its place; coming back is not a new broadcast.
        s.go(Input::Dropped { slug: "a", conn: 1 }).unwrap();
        assert_eq!(
            s.go(Input::Publish { slug: "c", conn: 3 }),
            Err(Refusal::TooMany(2))
        );
        assert!(s.go(Input::Publish { slug: "a", conn: 4 }).is_ok());
        s.go(Input::End { slug: "b", id: 2 }).unwrap();
        assert_eq!(
            s.go(Input::Publish { slug: "c", conn: 3 }).unwrap(),
            [started("c", 3)]
        );
    }

    #[test]
    fn shutdown_ends_everything_and_refuses_newcomers() {
        let mut s = Sim::new(10);
        s.go(Input::Publish { slug: "a", conn: 1 }).unwrap();
        s.go(Input::Publish { slug: "b", conn: 2 }).unwrap();
        s.go(Input::Dropped { slug: "b", conn: 2 }).unwrap();
        s.go(Input::End { slug: "a", id: 1 }).unwrap();
        s.go(Input::Publish { slug: "c", conn: 3 }).unwrap();
        assert_eq!(
            s.go(Input::Shutdown).unwrap(),
            [ended("b", 2), ended("c", 3)],
            "each running broadcast ends once"
        );
        assert_eq!(
            s.go(Input::Publish { slug: "b", conn: 4 }),
            Err(Refusal::ShuttingDown)
        );
        assert_eq!(s.l.running(), 0);
    }

    #[test]
    fn the_timeout_is_the_earliest_deadline() {
        let mut s = Sim::new(10);
        assert_eq!(s.l.poll_timeout(), None);
        s.go(Input::Publish { slug: "a", conn: 1 }).unwrap();
        s.go(Input::Publish { slug: "b", conn: 2 }).unwrap();
        assert_eq!(
            s.l.poll_timeout(),
            None,
            "connected publishers have no deadline"
        );
        s.at(1_000);
        s.go(Input::Dropped { slug: "a", conn: 1 }).unwrap();
        s.at(2_000);
        s.go(Input::Dropped { slug: "b", conn: 2 }).unwrap();
        assert_eq!(
            s.l.poll_timeout(),
            Some(s.t0 + Duration::from_millis(5_000))
        );
        assert_eq!(s.at(5_000), [ended("a", 1)]);
        assert_eq!(
            s.l.poll_timeout(),
            Some(s.t0 + Duration::from_millis(6_000))
        );
    }
}
