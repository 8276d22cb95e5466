//! The event loop: actors (the root and the bars) on open-drain lines, a
//! binary heap of wake-ups, and the random plugging.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use super::line::{Lines, Port};
use super::queue::WakeQueue;
use super::stats::{StreamStats, Unsettled};
use super::timing::*;
use super::wait::{Expect, Outcome, Step, Wait, FOREVER, FROM_START};
use super::waveform::{Time, Waveform, NEVER, NOMINAL_CYCLE, PRIME, REQUEST, RESPONSE};
use crate::model::{Connector, Gender, Interval};
use crate::wire::{StreamCheck, Word};

/// Where an actor is in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Unprimed, listening on every connector for a prime.
    Idle,
    /// Saw something that was not a prime; waiting for that line to go high.
    Recover,
    /// Primed; priming its other connectors one by one.
    Priming,
    /// Primed and done priming; waiting for its parent's request.
    AwaitRequest,
    /// Something on the parent line that was not a request: a new prime?
    CheckPrime,
    /// Requesting a word from a child.
    Fetching,
    /// The root priming its connector.
    RootPriming,
    /// The root requesting words.
    RootFetching,
}

/// One bar (or the root, actor 0).
#[derive(Clone, Debug)]
struct Actor {
    period: Time,
    wait: Wait,
    /// `wait` run to completion under the current lines (what `wake` will find).
    projected: Wait,
    wake_at: Time,
    state: State,
    interval: Interval,
    touched: bool,
    /// The connector its parent is on (while primed).
    parent: u8,
    /// Bit per connector: a child answered the prime there.
    children: u8,
    /// Which of the three other connectors is being primed / relayed.
    k: u8,
    /// The next word to send up.
    word: u16,
    first_request: bool,
    tries: u8,
    fetch_start: Time,
}

impl Actor {
    fn others(&self) -> [Connector; 3] {
        Connector::from_index(self.parent as usize).others_clockwise()
    }
}

const IDLE_STEPS: [Step; 6] = [
    Step::Level { low: true, poll: IDLE_POLL, deadline: FOREVER },
    Step::Sample { from: 0, offset: CLASSIFY_AT[0], expect: Expect::Low },
    Step::Sample { from: 0, offset: CLASSIFY_AT[1], expect: Expect::High },
    Step::Sample { from: 0, offset: CLASSIFY_AT[2], expect: Expect::High },
    Step::Sample { from: 0, offset: CLASSIFY_AT[3], expect: Expect::Low },
    Step::Level { low: false, poll: EDGE_POLL, deadline: PRIME_TAIL_DEADLINE },
];

const PRIME_CHECK_STEPS: [Step; 5] = [
    Step::Level { low: true, poll: EDGE_POLL, deadline: RESPONSE_DEADLINE },
    Step::Sample { from: 0, offset: RESPONSE_CHECK_AT[0], expect: Expect::Low },
    Step::Sample { from: 0, offset: RESPONSE_CHECK_AT[1], expect: Expect::High },
    Step::Sample { from: 0, offset: RESPONSE_CHECK_AT[2], expect: Expect::Low },
    Step::Level { low: false, poll: HOLD_POLL, deadline: HOLD_MAX },
];

const CHECK_PRIME_STEPS: [Step; 3] = [
    Step::Sample { from: FROM_START, offset: CLASSIFY_AT[2], expect: Expect::High },
    Step::Sample { from: FROM_START, offset: CLASSIFY_AT[3], expect: Expect::Low },
    Step::Level { low: false, poll: EDGE_POLL, deadline: PRIME_TAIL_DEADLINE },
];

const fn fetch_steps() -> [Step; 11] {
    let mut s = [Step::Level { low: true, poll: EDGE_POLL, deadline: ACK_DEADLINE }; 11];
    s[1] = Step::Level { low: false, poll: EDGE_POLL, deadline: SYNC_DEADLINE };
    let mut i = 0;
    while i < 9 {
        s[2 + i] = Step::Sample { from: 1, offset: FIRST_BIT_AT + 4 * i as u16, expect: Expect::Any };
        i += 1;
    }
    s
}
const FETCH_STEPS: [Step; 11] = fetch_steps();

const fn await_steps(timeout: u32) -> [Step; 4] {
    [
        Step::Level { low: true, poll: AWAIT_POLL, deadline: timeout },
        Step::Sample { from: 0, offset: REQUEST_CHECK_AT[0], expect: Expect::Low },
        Step::Sample { from: 0, offset: REQUEST_CHECK_AT[1], expect: Expect::Any },
        Step::Level { low: false, poll: EDGE_POLL, deadline: REQUEST_RELEASE_DEADLINE },
    ]
}
const AWAIT_FIRST_STEPS: [Step; 4] = await_steps(FIRST_REQUEST_TIMEOUT);
const AWAIT_NEXT_STEPS: [Step; 4] = await_steps(NEXT_REQUEST_TIMEOUT);
const RECOVER_STEPS: [Step; 1] = [Step::Level { low: false, poll: IDLE_POLL, deadline: RECOVER_DEADLINE }];

fn gender(p: Port) -> Gender {
    if p < 4 {
        crate::model::ROOT_CONNECTOR_GENDER
    } else {
        Connector::from_index(p % 4).gender()
    }
}

/// Why a link cannot be plugged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlugError {
    #[error("actor {actor} has no connector {connector}")]
    NoSuchConnector { actor: usize, connector: Connector },
    #[error("bar {actor} cannot be plugged into itself")]
    SameBar { actor: usize },
    #[error("male mates only with female")]
    SameGender,
    #[error("connector already plugged")]
    Taken,
}

/// What the random plugging does, and when a configuration gives up.
#[derive(Clone, Copy, Debug)]
pub struct Plugging {
    /// Mean wait after the tree settled before the next plug or unplug, in nominal cycles.
    pub mean_gap_cycles: f64,
    /// A configuration that has not settled after this long is reported.
    pub settle_limit_cycles: u64,
    /// Random changes made before the clock starts (to reach a typical tangle).
    pub warmup_changes: u32,
    /// Chance that a bar's switch is held (fixed for the run).
    pub touched_probability: f64,
}

impl Default for Plugging {
    fn default() -> Self {
        Plugging {
            mean_gap_cycles: 10_000.0,
            settle_limit_cycles: 1_000_000,
            warmup_changes: 2_000,
            touched_probability: 0.2,
        }
    }
}

/// One simulated network: the root, `n` bars, and one random stream.
pub struct Sim {
    seed: u64,
    lines: Lines,
    actors: Vec<Actor>,
    queue: WakeQueue,
    now: Time,
    rng: ChaCha8Rng,
    gap: Exp<f64>,
    plugging: Plugging,
    /// The root's words of the update in progress, and their check.
    received: Vec<u16>,
    check: StreamCheck,
    /// The root's current tree (its last complete stream).
    root_words: Vec<u16>,
    /// The spanning tree reachable from the root, as words.
    true_words: Vec<u16>,
    // Configuration bookkeeping.
    configs_done: u64,
    change_time: Time,
    settled: bool,
    /// The current configuration hit the settle limit.
    gave_up: bool,
    counting: bool,
    next_change_at: Time,
    give_up_at: Time,
    last_change: String,
    pub stats: StreamStats,
    // Scratch.
    visited: Vec<bool>,
    frames: Vec<(usize, u8, u8, usize)>,
    candidates: Vec<Port>,
    watchers: [(usize, bool); 2],
}

impl Sim {
    pub fn new(bars: usize, seed: u64, plugging: Plugging) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = bars + 1;
        let mut actors = Vec::with_capacity(n);
        for i in 0..n {
            let hz: f64 = rng.random_range(0.99e6..=1.01e6);
            actors.push(Actor {
                period: (1e12 / hz).round() as Time,
                wait: Wait::NOTHING,
                projected: Wait::NOTHING,
                wake_at: NEVER,
                state: if i == 0 { State::RootPriming } else { State::Idle },
                interval: Interval::from_code(rng.random_range(0..8)).unwrap_or(Interval::Fifth),
                touched: rng.random_bool(plugging.touched_probability.clamp(0.0, 1.0)),
                parent: 0,
                children: 0,
                k: 0,
                word: 0,
                first_request: false,
                tries: 0,
                fetch_start: 0,
            });
        }
        let gap =
            Exp::new(1.0 / plugging.mean_gap_cycles.max(1.0)).unwrap_or_else(|_| Exp::new(1e-4).expect("valid rate"));
        let mut sim = Sim {
            seed,
            lines: Lines::new(4 * n),
            actors,
            queue: WakeQueue::new(n),
            now: 0,
            rng,
            gap,
            plugging,
            received: Vec::with_capacity(256),
            check: StreamCheck::default(),
            root_words: Vec::with_capacity(256),
            true_words: Vec::with_capacity(256),
            configs_done: 0,
            change_time: 0,
            settled: false,
            gave_up: false,
            counting: false,
            next_change_at: NEVER,
            give_up_at: NEVER,
            last_change: String::new(),
            stats: StreamStats::new(seed, plugging.settle_limit_cycles),
            visited: vec![false; n],
            frames: Vec::with_capacity(n),
            candidates: Vec::with_capacity(4 * n),
            watchers: [(0, false); 2],
        };
        for _ in 0..plugging.warmup_changes {
            sim.random_change();
        }
        sim.compute_true_words();
        for a in 1..n {
            let offset = sim.rng.random_range(0..4 * NOMINAL_CYCLE);
            sim.go_idle(a, offset);
        }
        let first = sim.rng.random_range(0..100 * NOMINAL_CYCLE);
        sim.start_update(first);
        sim.give_up_at = plugging.settle_limit_cycles as Time * NOMINAL_CYCLE;
        sim
    }

    /// Runs until `configs` configurations (changes) have settled or given up.
    pub fn run(&mut self, configs: u64, progress: &dyn Fn(u64)) {
        let mut reported = 0;
        while self.configs_done < configs || !self.settled {
            let next = self.queue.peek();
            let event = next.map_or(NEVER, |(t, _)| t);
            let control = self.next_change_at.min(self.give_up_at);
            if control <= event {
                if control == NEVER {
                    break; // nothing left to happen (cannot occur: the root always runs)
                }
                self.now = control;
                if control == self.give_up_at {
                    self.give_up();
                }
                if self.next_change_at <= self.now {
                    if self.configs_done >= configs {
                        break;
                    }
                    self.change();
                }
            } else if let Some((t, actor)) = next {
                self.now = t;
                self.stats.events += 1;
                self.wake(actor);
            }
            if self.configs_done - reported >= 1000 {
                progress(self.configs_done - reported);
                reported = self.configs_done;
            }
        }
        progress(self.configs_done - reported);
        self.stats.simulated_ps = self.now;
    }

    /// Runs the network, random plugging included, up to simulated time
    /// `until` (ps): for watching it live, a slice at a time.
    pub fn run_for(&mut self, until: Time) {
        loop {
            let next = self.queue.peek();
            let event = next.map_or(NEVER, |(t, _)| t);
            let control = self.next_change_at.min(self.give_up_at);
            if event.min(control) > until {
                self.now = self.now.max(until);
                break;
            }
            if control <= event {
                self.now = control;
                if control == self.give_up_at {
                    self.give_up();
                }
                if self.next_change_at <= self.now {
                    self.change();
                }
            } else if let Some((t, actor)) = next {
                self.now = t;
                self.stats.events += 1;
                self.wake(actor);
            }
        }
    }

    // ---- driving it by hand (tests, examples) -----------------------------

    /// A network of `bars` bars with nothing plugged in and no random plugging:
    /// plug links with [`Sim::plug`], then [`Sim::run_until`].
    pub fn manual(bars: usize, seed: u64) -> Sim {
        let mut sim = Sim::new(bars, seed, Plugging { warmup_changes: 0, ..Plugging::default() });
        sim.give_up_at = NEVER;
        sim.next_change_at = NEVER;
        sim.settled = true;
        sim
    }

    /// Plugs `a`'s connector into `b`'s (actor 0 is the root, bar i is actor i;
    /// the root's only connector is `Connector::N` here) at the current time.
    pub fn plug(&mut self, a: (usize, Connector), b: (usize, Connector)) -> Result<(), PlugError> {
        let n = self.actors.len();
        let port = |(actor, c): (usize, Connector)| -> Result<Port, PlugError> {
            if actor >= n || (actor == 0 && c != Connector::N) {
                return Err(PlugError::NoSuchConnector { actor, connector: c });
            }
            Ok(actor * 4 + c.index())
        };
        let (p, q) = (port(a)?, port(b)?);
        if p / 4 == q / 4 {
            return Err(PlugError::SameBar { actor: a.0 });
        }
        if gender(p) == gender(q) {
            return Err(PlugError::SameGender);
        }
        if self.lines.peer(p).is_some() || self.lines.peer(q).is_some() {
            return Err(PlugError::Taken);
        }
        self.flush_pair(p, q);
        self.lines.peer[p] = q as u16;
        self.lines.peer[q] = p as u16;
        self.reproject_pair();
        self.compute_true_words();
        Ok(())
    }

    /// Runs every wake-up up to `t` (no random plugging).
    pub fn run_until(&mut self, t: Time) {
        while let Some((at, actor)) = self.queue.peek() {
            if at > t {
                break;
            }
            self.now = at;
            self.stats.events += 1;
            self.wake(actor);
        }
        self.now = self.now.max(t);
    }

    pub fn now(&self) -> Time {
        self.now
    }

    /// The root's current tree: the last complete stream it received.
    pub fn root_words(&self) -> Vec<Word> {
        self.root_words.iter().filter_map(|w| Word::from_bits(*w)).collect()
    }

    /// The spanning tree the protocol should find, as words.
    pub fn true_words(&self) -> Vec<Word> {
        self.true_words.iter().filter_map(|w| Word::from_bits(*w)).collect()
    }

    // ---- lines and waits -------------------------------------------------

    fn base(actor: usize) -> usize {
        actor * 4
    }

    /// Brings the waits of whoever watches port `p`'s line up to now, before it changes.
    fn flush(&mut self, p: Port) {
        let ends = [Some(p), self.lines.peer(p)];
        for (slot, end) in ends.into_iter().enumerate() {
            self.watchers[slot] = (usize::MAX, false);
            if let Some(e) = end {
                let a = e / 4;
                if self.actors[a].wait.watches((e % 4) as u8) {
                    let period = self.actors[a].period;
                    self.actors[a].wait.advance(&self.lines, Self::base(a), period, self.now);
                    self.watchers[slot] = (a, true);
                }
            }
        }
    }

    /// After the change: reschedule the watchers found by `flush`.
    fn reproject_watchers(&mut self) {
        for slot in 0..2 {
            let (a, yes) = self.watchers[slot];
            if yes {
                self.reproject(a);
            }
        }
    }

    fn reproject(&mut self, a: usize) {
        let actor = &mut self.actors[a];
        actor.projected = actor.wait;
        actor.projected.advance(&self.lines, a * 4, actor.period, NEVER);
        let t = actor.projected.outcome.time();
        debug_assert!(t >= self.now, "a wait would complete in the past");
        if t != actor.wake_at {
            actor.wake_at = t;
            self.queue.set(a, t);
        }
    }

    fn set_drive(&mut self, p: Port, w: Waveform) {
        if self.lines.drive[p] == w {
            return;
        }
        self.flush(p);
        self.lines.drive[p] = w;
        self.reproject_watchers();
    }

    fn install(&mut self, a: usize, wait: Wait) {
        self.actors[a].wait = wait;
        self.reproject(a);
    }

    fn cycles(&self, a: usize, n: i64) -> Time {
        n * self.actors[a].period
    }

    // ---- the protocol ---------------------------------------------------

    fn wake(&mut self, a: usize) {
        let now = self.now;
        // Any change to the lines since the projection would have re-projected it.
        // wake_at stays `now` in the queue: every handler installs a new wait,
        // whose projection replaces it (or keeps it, if it completes at once).
        self.actors[a].wait = self.actors[a].projected;
        let outcome = self.actors[a].wait.outcome;
        debug_assert!(outcome != Outcome::Pending, "woken with a pending wait");
        match self.actors[a].state {
            State::Idle => match outcome {
                Outcome::Done(h) => {
                    let c = self.actors[a].wait.connector;
                    self.begin_response(a, c, h);
                }
                _ => self.recover(a),
            },
            State::Recover => self.go_idle(a, now),
            State::Priming | State::RootPriming => self.primed_one(a, matches!(outcome, Outcome::Done(_))),
            State::AwaitRequest => match outcome {
                Outcome::Done(h) => {
                    if self.actors[a].wait.read_low(2) {
                        self.send_word(a, h);
                    } else {
                        let notice = self.actors[a].wait.time(0);
                        self.actors[a].state = State::CheckPrime;
                        let parent = self.actors[a].parent;
                        self.install(a, Wait::on(parent, notice, &CHECK_PRIME_STEPS));
                    }
                }
                Outcome::Failed { step: 1, .. } => self.await_request(a, now),
                _ => self.abort(a),
            },
            State::CheckPrime => match outcome {
                Outcome::Done(h) => {
                    let parent = self.actors[a].parent;
                    self.stats.restarts += 1;
                    self.begin_response(a, parent, h);
                }
                _ => self.await_request(a, now),
            },
            State::Fetching | State::RootFetching => match outcome {
                Outcome::Done(_) => {
                    let wait = &self.actors[a].wait;
                    let mut bits = 0u16;
                    for i in 0..9 {
                        if !wait.read_low(2 + i) {
                            bits |= 1 << i;
                        }
                    }
                    self.word_arrived(a, bits);
                }
                _ => {
                    let actor = &mut self.actors[a];
                    actor.tries += 1;
                    if actor.tries < FETCH_TRIES {
                        let s = actor.fetch_start + RETRY_PERIOD * actor.period;
                        self.stats.retries += 1;
                        self.fetch(a, s);
                    } else if a == 0 {
                        self.stats.aborted_updates += 1;
                        self.start_update(now + self.cycles(0, ROOT_GAP));
                    } else {
                        self.abort(a);
                    }
                }
            },
        }
    }

    fn go_idle(&mut self, a: usize, at: Time) {
        self.actors[a].state = State::Idle;
        self.install(a, Wait::on_any(0b1111, at, &IDLE_STEPS));
    }

    fn recover(&mut self, a: usize) {
        let c = self.actors[a].wait.connector;
        self.actors[a].state = State::Recover;
        let now = self.now;
        self.install(a, Wait::on(c, now, &RECOVER_STEPS));
    }

    /// Lets go of every line and listens for primes again.
    fn abort(&mut self, a: usize) {
        for c in 0..4 {
            if !self.lines.drive[Self::base(a) + c].is_released() {
                self.set_drive(Self::base(a) + c, Waveform::RELEASED);
            }
        }
        let now = self.now;
        self.go_idle(a, now);
    }

    /// Primed through connector `c` (the prime's last low ended at `h`).
    fn begin_response(&mut self, a: usize, c: u8, h: Time) {
        let actor = &mut self.actors[a];
        actor.state = State::Priming;
        actor.parent = c;
        actor.children = 0;
        actor.k = 0;
        let period = actor.period;
        // A restart can find other lines still driven from the last round.
        for j in 0..4 {
            if j != c as usize && !self.lines.drive[Self::base(a) + j].is_released() {
                self.set_drive(Self::base(a) + j, Waveform::RELEASED);
            }
        }
        self.set_drive(Self::base(a) + c as usize, Waveform::new(h, period, RESPONSE, true));
        self.prime_next(a, h + RESPONSE_SETUP * period);
    }

    /// Primes the next of the three other connectors at `s`, or finishes.
    fn prime_next(&mut self, a: usize, s: Time) {
        let actor = &self.actors[a];
        if actor.k >= 3 {
            self.finish_priming(a);
            return;
        }
        let c = actor.others()[actor.k as usize] as u8;
        self.prime_connector(a, c, s);
    }

    fn prime_connector(&mut self, a: usize, c: u8, s: Time) {
        let period = self.actors[a].period;
        self.set_drive(Self::base(a) + c as usize, Waveform::new(s, period, PRIME, false));
        self.install(a, Wait::on(c, s + PRIME_CYCLES * period, &PRIME_CHECK_STEPS));
    }

    /// One connector's prime is over: a child answered and finished, or not.
    fn primed_one(&mut self, a: usize, child: bool) {
        let next = self.now + self.cycles(a, NEXT_PORT_GAP);
        if a == 0 {
            if child {
                self.received.clear();
                self.check = StreamCheck::default();
                self.actors[0].state = State::RootFetching;
                self.actors[0].tries = 0;
                self.fetch(0, next);
            } else {
                self.received.clear();
                self.deliver();
                self.start_update(self.now + self.cycles(0, ROOT_GAP));
            }
            return;
        }
        let actor = &mut self.actors[a];
        if child {
            let c = actor.others()[actor.k as usize];
            actor.children |= 1 << c.index();
        }
        actor.k += 1;
        self.prime_next(a, next);
    }

    /// All connectors primed: the word is known; release the parent line.
    fn finish_priming(&mut self, a: usize) {
        let actor = &mut self.actors[a];
        let others = actor.others();
        let has = others.map(|c| actor.children >> c.index() & 1 == 1);
        let parent = Connector::from_index(actor.parent as usize);
        actor.word = Word::new(actor.interval, parent.axis(), actor.touched, has, actor.children != 0).bits();
        actor.k = has.iter().position(|h| *h).unwrap_or(3) as u8;
        actor.first_request = true;
        self.set_drive(Self::base(a) + parent.index(), Waveform::RELEASED);
        let now = self.now;
        self.await_request(a, now);
    }

    fn await_request(&mut self, a: usize, at: Time) {
        let actor = &mut self.actors[a];
        actor.state = State::AwaitRequest;
        let steps: &'static [Step] = if actor.first_request { &AWAIT_FIRST_STEPS } else { &AWAIT_NEXT_STEPS };
        let parent = actor.parent;
        self.install(a, Wait::on(parent, at, steps));
    }

    /// The requester has released: send the buffered word at `h`.
    fn send_word(&mut self, a: usize, h: Time) {
        let actor = &mut self.actors[a];
        actor.first_request = false;
        let (word, period, parent) = (actor.word, actor.period, actor.parent);
        self.set_drive(Self::base(a) + parent as usize, Waveform::burst(h, period, word));
        let end =
            h + (super::waveform::BURST_LEAD as i64 + 9 * super::waveform::BIT_CYCLES as i64 + AFTER_BURST) * period;
        if word >> 8 & 1 == 1 {
            self.actors[a].tries = 0;
            self.actors[a].state = State::Fetching;
            self.fetch(a, end);
        } else {
            self.go_idle(a, end);
        }
    }

    /// Requests a word at `s` from the child being relayed (the root: its connector).
    fn fetch(&mut self, a: usize, s: Time) {
        let actor = &mut self.actors[a];
        actor.fetch_start = s;
        let c = if a == 0 { 0 } else { actor.others()[actor.k as usize] as u8 };
        let period = actor.period;
        self.set_drive(Self::base(a) + c as usize, Waveform::new(s, period, REQUEST, false));
        self.install(a, Wait::on(c, s + REQUEST_CYCLES * period, &FETCH_STEPS));
    }

    fn word_arrived(&mut self, a: usize, bits: u16) {
        let now = self.now;
        if a == 0 {
            self.received.push(bits);
            let word = Word::from_bits(bits).expect("nine bits");
            match self.check.push(word) {
                Ok(true) => {
                    self.deliver();
                    self.start_update(now + self.cycles(0, ROOT_GAP));
                }
                Ok(false) => {
                    self.actors[0].tries = 0;
                    self.fetch(0, now + self.cycles(0, NEXT_PORT_GAP));
                }
                Err(_) => {
                    self.stats.malformed_streams += 1;
                    self.start_update(now + self.cycles(0, ROOT_GAP));
                }
            }
            return;
        }
        let actor = &mut self.actors[a];
        let mut word = bits;
        if bits >> 8 & 1 == 0 {
            // The child's subtree ends here; say "more" if another child follows.
            let has = |k: usize| actor.children >> actor.others()[k].index() & 1 == 1;
            if let Some(next) = (actor.k as usize + 1..3).find(|&k| has(k)) {
                actor.k = next as u8;
                word |= 1 << 8;
            }
        }
        actor.word = word;
        self.await_request(a, now);
    }

    fn start_update(&mut self, s: Time) {
        self.actors[0].state = State::RootPriming;
        self.prime_connector(0, 0, s);
    }

    // ---- what the root knows vs what is plugged ---------------------------

    fn deliver(&mut self) {
        self.stats.updates += 1;
        self.stats.bars_delivered += self.received.len() as u64;
        std::mem::swap(&mut self.root_words, &mut self.received);
        self.received.clear();
        let correct = self.root_words == self.true_words;
        if !self.settled && correct {
            self.settled = true;
            if self.counting {
                self.stats.record_settle(self.now - self.change_time);
            }
            self.give_up_at = NEVER;
            self.next_change_at = self.now + self.gap_time();
        } else if self.settled && !self.gave_up && !correct && self.counting {
            self.stats.regressions += 1;
            if self.stats.regression_examples.len() < 5 {
                self.stats.regression_examples.push(Unsettled {
                    seed: self.seed,
                    config: self.configs_done,
                    at_ps: self.now,
                    true_bars: self.true_words.len(),
                    change: self.last_change.clone(),
                    links: self.describe_links(),
                });
            }
        }
    }

    fn gap_time(&mut self) -> Time {
        (self.gap.sample(&mut self.rng) * NOMINAL_CYCLE as f64) as Time
    }

    fn give_up(&mut self) {
        self.gave_up = true;
        self.settled = true;
        self.give_up_at = NEVER;
        self.next_change_at = self.now + self.gap_time();
        if !self.counting {
            return;
        }
        self.stats.never_settled.push(Unsettled {
            seed: self.seed,
            config: self.configs_done,
            at_ps: self.change_time,
            true_bars: self.true_words.len(),
            change: self.last_change.clone(),
            links: self.describe_links(),
        });
    }

    fn change(&mut self) {
        self.configs_done += 1;
        self.counting = true;
        self.random_change();
        self.compute_true_words();
        self.stats.configs += 1;
        self.gave_up = false;
        if self.root_words == self.true_words {
            self.settled = true;
            self.stats.unaffected += 1;
            self.next_change_at = self.now + self.gap_time();
        } else {
            self.settled = false;
            self.change_time = self.now;
            self.next_change_at = NEVER;
            self.give_up_at = self.now + self.plugging.settle_limit_cycles as Time * NOMINAL_CYCLE;
        }
    }

    /// Plugs or unplugs one random connector (the root's included).
    fn random_change(&mut self) {
        let n = self.actors.len() - 1;
        let r = self.rng.random_range(0..1 + 4 * n);
        let p = if r == 0 { 0 } else { 4 + (r - 1) };
        if let Some(q) = self.lines.peer(p) {
            self.last_change = format!("unplugged {}-{}", port_name(p), port_name(q));
            self.flush_pair(p, q);
            self.lines.peer[p] = super::line::NO_PEER;
            self.lines.peer[q] = super::line::NO_PEER;
            self.reproject_pair();
        } else {
            self.candidates.clear();
            let want = gender(p).opposite();
            for q in std::iter::once(0).chain(4..4 + 4 * n) {
                if q / 4 != p / 4 && self.lines.peer[q] == super::line::NO_PEER && gender(q) == want {
                    self.candidates.push(q);
                }
            }
            if self.candidates.is_empty() {
                self.last_change = format!("nothing free to plug {} into", port_name(p));
                return;
            }
            let q = self.candidates[self.rng.random_range(0..self.candidates.len())];
            self.last_change = format!("plugged {}-{}", port_name(p), port_name(q));
            self.flush_pair(p, q);
            self.lines.peer[p] = q as u16;
            self.lines.peer[q] = p as u16;
            self.reproject_pair();
        }
    }

    fn flush_pair(&mut self, p: Port, q: Port) {
        let mut found = [(usize::MAX, false); 2];
        for (slot, e) in [p, q].into_iter().enumerate() {
            let a = e / 4;
            if self.actors[a].wait.watches((e % 4) as u8) {
                let period = self.actors[a].period;
                self.actors[a].wait.advance(&self.lines, Self::base(a), period, self.now);
                found[slot] = (a, true);
            }
        }
        self.watchers = found;
    }

    fn reproject_pair(&mut self) {
        self.reproject_watchers();
    }

    /// The spanning tree the protocol should find: depth first from the
    /// root, each bar's other connectors clockwise, visited bars skipped.
    fn compute_true_words(&mut self) {
        self.true_words.clear();
        self.visited.iter_mut().for_each(|v| *v = false);
        self.frames.clear();
        if let Some(e) = self.lines.peer(0) {
            self.visit(e);
        }
        while let Some(frame) = self.frames.last_mut() {
            let (a, parent, next, pos) = *frame;
            if next == 3 {
                self.frames.pop();
                continue;
            }
            frame.2 += 1;
            let c = Connector::from_index(parent as usize).others_clockwise()[next as usize];
            if let Some(e) = self.lines.peer(Self::base(a) + c.index()) {
                if !self.visited[e / 4] {
                    self.true_words[pos] &= !(1 << (5 + next));
                    self.visit(e);
                }
            }
        }
        let n = self.true_words.len();
        for (i, w) in self.true_words.iter_mut().enumerate() {
            if i + 1 < n {
                *w |= 1 << 8;
            }
        }
    }

    fn visit(&mut self, e: Port) {
        let a = e / 4;
        self.visited[a] = true;
        let by = Connector::from_index(e % 4);
        let actor = &self.actors[a];
        let word = Word::new(actor.interval, by.axis(), actor.touched, [false; 3], false).bits();
        self.frames.push((a, by.index() as u8, 0, self.true_words.len()));
        self.true_words.push(word);
    }

    fn describe_links(&self) -> String {
        let mut out = Vec::new();
        for p in 0..self.lines.peer.len() {
            if let Some(q) = self.lines.peer(p) {
                if p < q {
                    out.push(format!("{}-{}", port_name(p), port_name(q)));
                }
            }
        }
        out.join(" ")
    }
}

fn port_name(p: Port) -> String {
    if p < 4 {
        "root".to_string()
    } else {
        format!("b{}.{}", p / 4, Connector::from_index(p % 4))
    }
}
