//! Simulcast: which of a publisher's video layers each viewer gets.
//!
//! A publisher may send its video as several encodings at once (simulcast, each named by a
//! `rid`: say a quarter, a half and the full resolution). moim measures each layer's rate as
//! it arrives and gives every viewer the best layer that fits its bandwidth estimate (str0m's
//! send-side estimate from the viewer's transport-wide congestion feedback). A viewer moves to
//! another layer only at that layer's keyframe (asked for when the choice changes), and the
//! new layer's RTP timestamps are mapped to follow on from what the viewer was shown, so its
//! decoder sees one stream. A publisher without simulcast is one layer with no rid, and every
//! viewer gets it as before.
//!
//! Pure bookkeeping, no I/O and no clock of its own: `Core` calls it with `now`.

use std::time::{Duration, Instant};

use str0m::media::Rid;

/// Video layers of one publisher taken at most (browsers send up to three); frames of any
/// further rid are not forwarded.
pub const MAX_LAYERS: usize = 4;
/// The window a layer's rate is measured over.
pub const LAYER_WINDOW: Duration = Duration::from_secs(1);
/// Share of a viewer's estimate its video may take when moving up (the rest is for audio,
/// RTCP, retransmissions and the estimate being wrong).
const UP_PERCENT: u64 = 85;
/// After moving down, a viewer does not move up again for this long: an estimate that dips
/// and comes back does not make the picture flip back and forth.
pub const HOLD_AFTER_DOWN: Duration = Duration::from_secs(4);

/// A layer: `None` is a publisher's only video stream (no simulcast).
pub type LayerId = Option<Rid>;

/// One video layer of a publisher, as measured.
#[derive(Debug)]
pub struct Layer {
    pub rid: LayerId,
    /// Bytes in the current window.
    bytes: u64,
    /// The rates of the last two whole windows, kbit/s, newest first (None: not measured). A
    /// layer's rate is their mean: a publisher asked for a keyframe every two seconds has one
    /// in every other window, and one window alone would make the rate swing by it.
    windows: [Option<u64>; 2],
    first_frame: Instant,
    last_frame: Instant,
    /// Sent nothing for [`STOPPED`]: left out of the choice until it sends again.
    stopped: bool,
}

/// A layer that has sent nothing for this long is taken as stopped (a browser drops its top
/// layer when its own uplink or CPU is short); as long as str0m's own "paused" wait, and
/// longer than a still screen share's frame interval.
pub const STOPPED: Duration = Duration::from_millis(1500);

/// A publisher's video layers.
#[derive(Debug)]
pub struct Layers {
    list: Vec<Layer>,
    window_start: Option<Instant>,
    /// The top layer at the end of the last window, and for how many windows running it was.
    top: Option<LayerId>,
    top_windows: u32,
}

impl Default for Layers {
    fn default() -> Self {
        Layers::new()
    }
}

impl Layers {
    pub fn new() -> Layers {
        Layers {
            list: Vec::new(),
            window_start: None,
            top: None,
            top_windows: 0,
        }
    }

    /// Counts a frame of layer `rid`: true when the layers changed (one was seen for the first
    /// time, stopped or started again, or a window ended), so viewers' choices are looked at
    /// again; None when the layer is one too many.
    pub fn count(&mut self, now: Instant, rid: LayerId, bytes: usize) -> Option<bool> {
        let start = *self.window_start.get_or_insert(now);
        let mut changed = false;
        let elapsed = now.duration_since(start);
        if elapsed >= LAYER_WINDOW {
            // A window with a pause in it says nothing of the rates: it is dropped.
            if elapsed < 2 * LAYER_WINDOW {
                let ms = elapsed.as_millis().max(1) as u64;
                for l in &mut self.list {
                    l.windows = [Some(l.bytes * 8 / ms), l.windows[0]];
                }
                let top = self.top(now);
                if top == self.top {
                    self.top_windows += 1;
                } else {
                    self.top = top;
                    self.top_windows = 1;
                }
            }
            for l in &mut self.list {
                l.bytes = 0;
            }
            self.window_start = Some(now);
            changed = true;
        }
        for l in &mut self.list {
            if !l.stopped && now.duration_since(l.last_frame) >= STOPPED {
                l.stopped = true;
                changed = true;
            }
        }
        let i = match self.list.iter().position(|l| l.rid == rid) {
            Some(i) => i,
            None if self.list.len() < MAX_LAYERS => {
                self.list.push(Layer {
                    rid,
                    bytes: 0,
                    windows: [None, None],
                    first_frame: now,
                    last_frame: now,
                    stopped: false,
                });
                changed = true;
                self.list.len() - 1
            }
            None => return None,
        };
        let l = &mut self.list[i];
        l.bytes += bytes as u64;
        l.last_frame = now;
        if l.stopped {
            l.stopped = false;
            changed = true;
        }
        Some(changed)
    }

    /// Whether there is one layer and it has no rid (the publisher does not simulcast).
    pub fn single(&self) -> bool {
        self.list.len() == 1 && self.list[0].rid.is_none()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `rid` is one of the layers (sending or not).
    pub fn has(&self, rid: LayerId) -> bool {
        self.list.iter().any(|l| l.rid == rid)
    }

    /// Whether `rid` is a layer sending now.
    pub fn is_live(&self, rid: LayerId) -> bool {
        self.list.iter().any(|l| l.rid == rid && !l.stopped)
    }

    /// A layer's rate, kbit/s: the mean of its last two whole windows, or, before one has
    /// passed, what came since its first frame.
    fn kbps(&self, l: &Layer, now: Instant) -> u64 {
        match l.windows {
            [Some(a), Some(b)] => (a + b) / 2,
            [Some(a), None] => a,
            _ => {
                let since = self
                    .window_start
                    .map_or(l.first_frame, |s| s.max(l.first_frame));
                l.bytes * 8 / now.duration_since(since).as_millis().max(1) as u64
            }
        }
    }

    /// The layers sending, lowest rate first, with their rates.
    fn live(&self, now: Instant) -> Vec<(u64, LayerId)> {
        let mut live: Vec<(u64, LayerId)> = self
            .list
            .iter()
            .filter(|l| !l.stopped)
            .map(|l| (self.kbps(l, now), l.rid))
            .filter(|(k, _)| *k > 0)
            .collect();
        live.sort_by_key(|(k, _)| *k);
        live
    }

    /// The layers sending, lowest rate first.
    pub fn ranked(&self, now: Instant) -> Vec<LayerId> {
        self.live(now).into_iter().map(|(_, rid)| rid).collect()
    }

    /// The highest-rate layer sending.
    pub fn top(&self, now: Instant) -> Option<LayerId> {
        self.live(now).pop().map(|(_, rid)| rid)
    }

    /// The top layer once it has been the top at the end of `windows` windows running (the
    /// one stream of a publisher without simulcast at once).
    pub fn steady_top(&self, windows: u32) -> Option<LayerId> {
        if self.single() {
            return Some(None);
        }
        self.top.filter(|_| self.top_windows >= windows)
    }

    /// The highest layer's rate, kbit/s.
    pub fn top_kbps(&self, now: Instant) -> u64 {
        self.live(now).last().map_or(0, |(k, _)| *k)
    }

    /// The layer a viewer should get. With an estimate (kbit/s): it moves up to the highest
    /// layer within [`UP_PERCENT`] of it (not within [`HOLD_AFTER_DOWN`] of moving down), and
    /// moves down when its layer takes more than the estimate, to the highest that fits (the
    /// lowest if none does); in between it stays. Without one (a viewer with no estimator: it
    /// joined while the broadcast was not simulcast): the highest layer. A layer that stopped
    /// sending is left.
    pub fn choose(
        &self,
        now: Instant,
        estimate_kbps: Option<u64>,
        current: Option<LayerId>,
        last_down: Option<Instant>,
    ) -> Option<LayerId> {
        let live = self.live(now);
        let Some(estimate) = estimate_kbps else {
            return live.last().map(|(_, rid)| *rid);
        };
        let fits = |limit: u64| live.iter().rposition(|(k, _)| *k <= limit).unwrap_or(0);
        let up = fits(estimate * UP_PERCENT / 100);
        let Some(ci) = current.and_then(|c| live.iter().position(|(_, r)| *r == c)) else {
            return live.get(up).map(|(_, rid)| *rid);
        };
        let held = last_down.is_some_and(|t| now.duration_since(t) < HOLD_AFTER_DOWN);
        let target = if live[ci].0 > estimate {
            up.min(ci)
        } else if up > ci && !held {
            up
        } else {
            ci
        };
        Some(live[target].1)
    }
}

/// A viewer's place in a publisher's layers: the layer it is shown, the one it is to move to
/// at that layer's next keyframe, its bandwidth estimate and its video timestamp mapping.
#[derive(Debug, Default)]
pub struct View {
    /// The layer whose frames it gets (None: none yet, it waits for a keyframe).
    pub layer: Option<LayerId>,
    /// The layer chosen for it.
    pub want: Option<LayerId>,
    /// Its bandwidth estimate, kbit/s (None without congestion feedback).
    pub estimate_kbps: Option<u64>,
    /// Its layers are to be chosen again (its estimate or the layers changed).
    pub rechoose: bool,
    /// The desired bitrate last given to its estimator, kbit/s.
    pub desired_kbps: u64,
    /// When it last moved down.
    pub last_down: Option<Instant>,
    /// When a keyframe of the layer it waits for was last asked for.
    pub asked: Option<Instant>,
    /// Added to the video RTP time of its layer's frames.
    offset: i64,
    /// The RTP time of the last video frame it was given, and when.
    last_out: Option<(u64, Instant)>,
}

impl View {
    /// A viewer's view; with an estimator, `estimate_kbps` is its estimate until the first one
    /// measured.
    pub fn new(estimate_kbps: Option<u64>) -> View {
        View {
            estimate_kbps,
            ..View::default()
        }
    }

    /// Takes a new choice: true when it is not the layer shown (a keyframe of it is needed).
    pub fn set_want(
        &mut self,
        now: Instant,
        want: LayerId,
        rank: impl Fn(LayerId) -> Option<usize>,
    ) -> bool {
        if let (Some(cur), Some(to)) = (self.layer.and_then(&rank), rank(want)) {
            if to < cur && self.want != Some(want) {
                self.last_down = Some(now);
            }
        }
        self.want = Some(want);
        self.layer != self.want
    }

    /// Whether a video frame of layer `rid` goes to this viewer, and at what RTP time (at
    /// `hz`): frames of its layer do; the wanted layer's keyframe moves it there (so does any
    /// frame of the one stream of a publisher without simulcast, for a viewer shown nothing
    /// yet). On a move the timestamps are mapped to continue from the last frame shown, as
    /// far on as the time between them.
    pub fn admit(
        &mut self,
        now: Instant,
        rid: LayerId,
        keyframe: bool,
        time: u64,
        hz: u32,
    ) -> Option<u64> {
        if self.layer != Some(rid) {
            let wanted = self.want == Some(rid);
            let starts = keyframe || (rid.is_none() && self.layer.is_none());
            if !(wanted && starts) {
                return None;
            }
            self.offset = match self.last_out {
                Some((last, at)) => {
                    let ticks =
                        (now.duration_since(at).as_micros() as u64 * hz as u64 / 1_000_000).max(1);
                    (last + ticks) as i64 - time as i64
                }
                None => 0,
            };
            self.layer = Some(rid);
        }
        let out = (time as i64 + self.offset).max(0) as u64;
        self.last_out = Some((out, now));
        Some(out)
    }

    /// The publisher changed: it is shown the new one's layer once chosen (from that layer's
    /// keyframe, or at once for a single stream), its timestamps continuing from the last
    /// frame shown.
    pub fn restart(&mut self) {
        self.layer = None;
        self.want = None;
        self.rechoose = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(s: &str) -> LayerId {
        Some(Rid::from(s))
    }

    /// Three layers at about 100, 400 and 1,500 kbit/s, measured over one window.
    fn three(now: Instant) -> (Layers, Instant) {
        let mut layers = Layers::new();
        let mut t = now;
        for _ in 0..=30 {
            layers.count(t, rid("q"), 100_000 / 8 / 30).unwrap();
            layers.count(t, rid("h"), 400_000 / 8 / 30).unwrap();
            layers.count(t, rid("f"), 1_500_000 / 8 / 30).unwrap();
            t += Duration::from_millis(34);
        }
        assert_eq!(layers.steady_top(1), Some(rid("f")));
        (layers, t)
    }

    #[test]
    fn rates_are_measured_per_layer_and_ranked() {
        let (layers, t) = three(Instant::now());
        assert_eq!(layers.top(t), Some(rid("f")));
        let live = layers.live(t);
        let kbps: Vec<u64> = live.iter().map(|(k, _)| *k).collect();
        assert!((90..=110).contains(&kbps[0]), "{kbps:?}");
        assert!((360..=410).contains(&kbps[1]), "{kbps:?}");
        assert!((1350..=1550).contains(&kbps[2]), "{kbps:?}");
        assert!(!layers.single());
    }

    #[test]
    fn a_fifth_layer_is_not_taken() {
        let mut layers = Layers::new();
        let now = Instant::now();
        for r in ["a", "b", "c", "d"] {
            assert_eq!(layers.count(now, rid(r), 10), Some(true));
        }
        assert_eq!(layers.count(now, rid("e"), 10), None);
        assert_eq!(layers.count(now, rid("a"), 10), Some(false));
    }

    #[test]
    fn viewers_get_what_their_estimate_carries_and_move_up_only_with_headroom() {
        let (layers, t) = three(Instant::now());
        // New viewers: the highest that fits 85 % of the estimate, the lowest if none does.
        assert_eq!(layers.choose(t, Some(5_000), None, None), Some(rid("f")));
        assert_eq!(layers.choose(t, Some(1_000), None, None), Some(rid("h")));
        assert_eq!(layers.choose(t, Some(50), None, None), Some(rid("q")));
        // Without congestion feedback: the best there is.
        assert_eq!(layers.choose(t, None, None, None), Some(rid("f")));
        // On "h": 1,600 covers "f" but not with headroom, so it stays; 1,800 moves it up.
        assert_eq!(
            layers.choose(t, Some(1_600), Some(rid("h")), None),
            Some(rid("h"))
        );
        assert_eq!(
            layers.choose(t, Some(1_800), Some(rid("h")), None),
            Some(rid("f"))
        );
        // On "f": it stays while "f" fits the estimate at all, and moves down below it.
        assert_eq!(
            layers.choose(t, Some(1_500), Some(rid("f")), None),
            Some(rid("f"))
        );
        assert_eq!(
            layers.choose(t, Some(1_000), Some(rid("f")), None),
            Some(rid("h"))
        );
        assert_eq!(
            layers.choose(t, Some(200), Some(rid("f")), None),
            Some(rid("q"))
        );
        // Just after moving down it does not go up again.
        let down = Some(t - Duration::from_secs(1));
        assert_eq!(
            layers.choose(t, Some(5_000), Some(rid("h")), down),
            Some(rid("h"))
        );
        let long_ago = Some(t - HOLD_AFTER_DOWN);
        assert_eq!(
            layers.choose(t, Some(5_000), Some(rid("h")), long_ago),
            Some(rid("f"))
        );
    }

    #[test]
    fn a_layer_that_stops_sending_is_left() {
        let (mut layers, mut t) = three(Instant::now());
        // "f" stops (a browser drops its top layer when its own uplink or CPU is short): it is
        // left once it has sent nothing for 1.5 s.
        for _ in 0..=45 {
            layers.count(t, rid("q"), 100_000 / 8 / 30).unwrap();
            layers.count(t, rid("h"), 400_000 / 8 / 30).unwrap();
            t += Duration::from_millis(34);
        }
        assert_eq!(layers.top(t), Some(rid("h")));
        assert_eq!(
            layers.choose(t, Some(5_000), Some(rid("f")), None),
            Some(rid("h"))
        );
        assert_eq!(layers.choose(t, None, Some(rid("f")), None), Some(rid("h")));
    }

    #[test]
    fn rates_are_the_mean_of_two_windows_and_a_pause_is_not_one() {
        let mut layers = Layers::new();
        let mut t = Instant::now();
        // 400 kbit/s, with a keyframe of 25 KB (200 kbit) in every other second.
        for i in 0..=120u64 {
            let key = if i % 60 == 0 { 25_000 } else { 0 };
            layers.count(t, rid("h"), 400_000 / 8 / 30 + key).unwrap();
            t += Duration::from_millis(1000 / 30 + 1);
        }
        let k = layers.live(t)[0].0;
        assert!(
            (450..=560).contains(&k),
            "{k} kbit/s: the keyframe spread over two windows"
        );
        // Five seconds without a frame, then one: that window is not taken for a rate.
        t += Duration::from_secs(5);
        assert_eq!(
            layers.count(t, rid("h"), 100),
            Some(true),
            "a stopped layer starts again"
        );
        let after = layers.live(t)[0].0;
        assert_eq!(after, k);
    }

    #[test]
    fn the_top_is_steady_once_it_has_been_the_top_for_whole_windows() {
        let mut layers = Layers::new();
        let mut t = Instant::now();
        assert_eq!(layers.steady_top(1), None);
        // "h" alone for a window, then "f" joins above it.
        for i in 0..=62u64 {
            layers.count(t, rid("h"), 400_000 / 8 / 30).unwrap();
            if i >= 31 {
                layers.count(t, rid("f"), 1_500_000 / 8 / 30).unwrap();
            }
            t += Duration::from_millis(34);
        }
        assert_eq!(layers.top(t), Some(rid("f")));
        assert_eq!(layers.steady_top(1), Some(rid("f")));
        assert_eq!(layers.steady_top(2), None, "the top for one window only");
        for _ in 0..=30 {
            layers.count(t, rid("h"), 400_000 / 8 / 30).unwrap();
            layers.count(t, rid("f"), 1_500_000 / 8 / 30).unwrap();
            t += Duration::from_millis(34);
        }
        assert_eq!(layers.steady_top(2), Some(rid("f")));
        // Without simulcast, its one stream at once.
        let mut single = Layers::new();
        single.count(t, None, 1000).unwrap();
        assert_eq!(single.steady_top(2), Some(None));
    }

    #[test]
    fn a_viewer_moves_at_the_wanted_layers_keyframe_and_its_timestamps_continue() {
        let now = Instant::now();
        let mut v = View::default();
        let rank = |r: LayerId| ["q", "h", "f"].iter().position(|s| r == rid(s));
        assert!(v.set_want(now, rid("h"), rank));
        // Nothing before the wanted layer's keyframe; other layers never.
        assert_eq!(v.admit(now, rid("h"), false, 1_000, 90_000), None);
        assert_eq!(v.admit(now, rid("f"), true, 5_000_000, 90_000), None);
        assert_eq!(v.admit(now, rid("h"), true, 1_000, 90_000), Some(1_000));
        let t1 = now + Duration::from_millis(33);
        assert_eq!(v.admit(t1, rid("h"), false, 3_970, 90_000), Some(3_970));
        // Up to "f", whose clock starts elsewhere: its frames wait for its keyframe, which
        // then follows 100 ms (9,000 ticks) after the last frame shown.
        assert!(v.set_want(t1, rid("f"), rank));
        assert_eq!(v.last_down, None);
        let t2 = t1 + Duration::from_millis(50);
        assert_eq!(v.admit(t2, rid("f"), false, 7_000_000, 90_000), None);
        assert_eq!(v.admit(t2, rid("h"), false, 8_470, 90_000), Some(8_470));
        let t3 = t2 + Duration::from_millis(100);
        assert_eq!(
            v.admit(t3, rid("f"), true, 7_009_000, 90_000),
            Some(8_470 + 9_000)
        );
        assert_eq!(v.admit(t3, rid("h"), false, 8_470 + 9_000, 90_000), None);
        let t4 = t3 + Duration::from_millis(33);
        assert_eq!(
            v.admit(t4, rid("f"), false, 7_011_970, 90_000),
            Some(8_470 + 11_970)
        );
        // Down to "q": remembered as a move down.
        assert!(v.set_want(t4, rid("q"), rank));
        assert_eq!(v.last_down, Some(t4));
        // A new publisher: shown nothing until its keyframe, timestamps still continuing.
        v.restart();
        assert!(v.set_want(t4, None, |_| Some(0)));
        let t5 = t4 + Duration::from_millis(500);
        assert_eq!(
            v.admit(t5, None, false, 42, 90_000),
            Some(8_470 + 11_970 + 45_000)
        );
    }
}
