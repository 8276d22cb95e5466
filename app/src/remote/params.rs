//! Live parameter inputs: `clavm param`, OSC over UDP on localhost, and MIDI
//! (control change, and notes, bend and sustain for the voices) from JACK
//! MIDI and the ALSA sequencer. All of them send on
//! the engine's shared-memory channel `ENGINE.param` (a flood overflows it
//! into counted drops, never into a queue that grows); one thread applies
//! what arrives to the engine's lock-free parameter table, which the audio
//! thread reads at the start of every block.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use clavm_audio::clock::Bpm;
use clavm_audio::engine::Param;
use clavm_audio::params::ParamTable;
use clavm_audio::voices::NoteEvent;
use clavm_channel::{Receiver, RecvError, Sender, Wait};
use clavm_submit::protocol::{param_config, ParamKind, ParamMsg, PARAM_CHANNEL};

use super::osc::{self, Shown};

const IDLE: Duration = Duration::from_millis(200);

/// What the inputs took and refused (for the meter line and tests).
#[derive(Default)]
pub struct InputStats {
    pub applied: AtomicU64,
    /// Messages that were malformed, of the wrong type, or out of range.
    pub refused: AtomicU64,
    pub midi_events: AtomicU64,
}

/// A parameter change from any input, checked.
fn param(kind: ParamKind, index: i64, value: f64) -> Option<Param> {
    if kind == ParamKind::Note {
        let (k, a) = (u8::try_from(index >> 8).ok()?, (index & 0xff) as u8);
        let b = (value.fract() == 0.0 && (-8192.0..=8191.0).contains(&value)).then_some(value as i16)?;
        return NoteEvent::unpack(k, a, b).map(Param::Note);
    }
    if kind == ParamKind::Tempo {
        return (index == 0).then(|| Bpm::new(value).ok().map(Param::Tempo)).flatten();
    }
    let n = u8::try_from(index).ok().filter(|n| (*n as usize) < clavm_audio::builtins::api::PARAMS)?;
    if !value.is_finite() {
        return None;
    }
    Some(match kind {
        ParamKind::P => Param::P(n, value as f32),
        ParamKind::I => Param::I(n, value.round().clamp(i32::MIN as f64, i32::MAX as f64) as i32),
        ParamKind::Cc => Param::Cc(n, value as f32),
        ParamKind::Tempo | ParamKind::Note => return None,
    })
}

/// The channel message for a checked change.
fn message(p: Param) -> ParamMsg {
    match p {
        Param::P(n, v) => ParamMsg::new(ParamKind::P, n as u32, v as f64),
        Param::I(n, v) => ParamMsg::new(ParamKind::I, n as u32, v as f64),
        Param::Cc(n, v) => ParamMsg::new(ParamKind::Cc, n as u32, v as f64),
        Param::Tempo(bpm) => ParamMsg::new(ParamKind::Tempo, 0, bpm.get()),
        Param::Note(e) => note_message(e),
    }
}

/// The channel message for a note event.
fn note_message(e: NoteEvent) -> ParamMsg {
    let (kind, a, b) = e.pack();
    ParamMsg::new(ParamKind::Note, u32::from(kind) << 8 | u32::from(a), f64::from(b))
}

/// What one MIDI message from JACK or ALSA sends on the param channel: a
/// control change (`_cc`), a note event for the voices, or both (CC 64 is
/// also the sustain pedal). Never allocates: JACK calls this in its
/// realtime callback.
fn send_midi(tx: &Sender, bytes: &[u8]) {
    if let Some((cc, v)) = control_change(bytes) {
        let _ = tx.try_send(&ParamMsg::new(ParamKind::Cc, cc as u32, v as f64));
    }
    if let Some(e) = NoteEvent::from_midi(bytes) {
        let _ = tx.try_send(&note_message(e));
    }
}

/// A sender on the engine's param channel that opens it again when the
/// engine has replaced it (a cut or scribbled file: see docs/REMOTE.md), so
/// that OSC and ALSA MIDI keep reaching the engine. The check (two `stat`s)
/// runs at most every `RECHECK`.
struct ParamSender {
    engine: String,
    tx: Sender,
    checked: std::time::Instant,
}

const RECHECK: Duration = Duration::from_millis(250);

impl ParamSender {
    fn new(engine: &str, tx: Sender) -> ParamSender {
        ParamSender { engine: engine.to_string(), tx, checked: std::time::Instant::now() }
    }

    fn get(&mut self) -> &Sender {
        if self.checked.elapsed() >= RECHECK {
            self.checked = std::time::Instant::now();
            if !self.tx.intact() {
                if let Ok(tx) = Sender::open(&self.engine, PARAM_CHANNEL) {
                    self.tx = tx;
                }
            }
        }
        &self.tx
    }
}

/// Sends a checked change to the param channel (a full channel counts the drop itself).
fn forward(tx: &Sender, stats: &InputStats, p: Option<Param>) -> bool {
    match p {
        Some(p) => {
            let _ = tx.try_send(&message(p));
            true
        }
        None => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

fn apply(table: &ParamTable, stats: &InputStats, p: Option<Param>) -> bool {
    match p {
        Some(p) if table.set(p) => {
            stats.applied.fetch_add(1, Ordering::Relaxed);
            true
        }
        _ => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Reports the first few refusals of an input, then only counts them.
struct Complaints(u32);

impl Complaints {
    /// Takes anything displayable, so that a refusal past the fifth costs no formatting.
    fn say(&mut self, what: impl std::fmt::Display) {
        self.0 += 1;
        if self.0 <= 5 {
            eprintln!("clavm: ignored {what}");
        }
        if self.0 == 5 {
            eprintln!("clavm: (further ignored messages are only counted)");
        }
    }
}

/// The running inputs; stopped on drop.
pub struct ParamInputs {
    pub stats: Arc<InputStats>,
    /// Our own handle on the param channel, for its counts.
    channel: Sender,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _jack_midi: Option<jack::AsyncClient<(), MidiHandler>>,
    _alsa_midi: Option<midir::MidiInputConnection<()>>,
}

/// Which MIDI inputs to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Midi {
    /// JACK MIDI when a JACK server runs, and the ALSA sequencer when the kernel has it.
    Auto,
    Jack,
    Alsa,
    None,
}

impl ParamInputs {
    /// Starts the param channel of `engine_name`, OSC on `osc_port` (None: off), and `midi`.
    pub fn start(
        engine_name: &str,
        table: Arc<ParamTable>,
        osc_port: Option<u16>,
        midi: Midi,
        jack_running: bool,
    ) -> anyhow::Result<ParamInputs> {
        let stats = Arc::new(InputStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let rx = Receiver::create(engine_name, PARAM_CHANNEL, param_config())
            .with_context(|| format!("opening the param channel of engine '{engine_name}'"))?;
        let sender = || Sender::open(engine_name, PARAM_CHANNEL).context("opening the param channel to send on");
        let channel = sender()?;
        {
            let (table, stats, stop) = (table.clone(), stats.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("clavm-param".into())
                    .spawn(move || serve_channel(rx, &table, &stats, &stop))?,
            );
        }
        // Without OSC the engine still plays (a second engine may hold the port): said, not fatal.
        match osc_port.map(|port| (port, UdpSocket::bind(("127.0.0.1", port)))) {
            Some((port, Ok(socket))) => {
                socket.set_read_timeout(Some(IDLE))?;
                let (tx, stats, stop) = (ParamSender::new(engine_name, sender()?), stats.clone(), stop.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name("clavm-osc".into())
                        .spawn(move || serve_osc(socket, tx, &stats, &stop))?,
                );
                eprintln!("clavm: OSC on udp://127.0.0.1:{port} (/clavm/p, /clavm/i, /clavm/cc)");
            }
            Some((port, Err(e))) => {
                eprintln!(
                    "clavm: warning: no OSC: cannot listen on 127.0.0.1:{port}: {e} (pick another with --osc-port)"
                )
            }
            None => {}
        }
        let want_jack = matches!(midi, Midi::Jack) || (midi == Midi::Auto && jack_running);
        let jack_midi = if want_jack {
            let (fresh_tx, fresh) = rtrb::RingBuffer::new(SENDER_HANDOFF);
            let (retired, retired_rx) = rtrb::RingBuffer::new(SENDER_HANDOFF);
            let watch = ParamSender::new(engine_name, sender()?);
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("clavm-midi-watch".into())
                    .spawn(move || watch_for_jack_midi(watch, fresh_tx, retired_rx, &stop))?,
            );
            match jack_midi(sender()?, stats.clone(), fresh, retired) {
                Ok(c) => Some(c),
                Err(e) if midi == Midi::Auto => {
                    eprintln!("clavm: note: no JACK MIDI input: {e:#}");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        // Auto asks only where the kernel has a sequencer (alsa-lib prints its own error otherwise).
        let want_alsa = midi == Midi::Alsa || (midi == Midi::Auto && std::path::Path::new("/dev/snd/seq").exists());
        let alsa_midi = if want_alsa {
            match alsa_midi(ParamSender::new(engine_name, sender()?), stats.clone()) {
                Ok(c) => Some(c),
                Err(e) if midi == Midi::Auto => {
                    tracing::info!("no ALSA sequencer MIDI input: {e:#}");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        Ok(ParamInputs { stats, channel, stop, threads, _jack_midi: jack_midi, _alsa_midi: alsa_midi })
    }

    /// Parameter messages lost because the param channel was full (a flood).
    pub fn dropped(&self) -> u64 {
        self.channel.stats().dropped_full
    }
}

impl Drop for ParamInputs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_channel(mut rx: Receiver, table: &ParamTable, stats: &InputStats, stop: &AtomicBool) {
    let mut complaints = Complaints(0);
    while !stop.load(Ordering::Relaxed) {
        match rx.recv::<ParamMsg>(Wait::Sleep, IDLE) {
            Err(e @ (RecvError::Reset | RecvError::Broken | RecvError::Timeout)) => {
                match super::submit::recover(rx, e, "param") {
                    Some(r) => rx = r,
                    None => return,
                }
            }
            Ok(m) => {
                let p = m.decode().and_then(|(kind, index, value)| param(kind, index as i64, value));
                if !apply(table, stats, p) {
                    complaints.say("a malformed or out-of-range message on the param channel");
                }
            }
            Err(RecvError::WrongSize { .. }) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                complaints.say("a message of the wrong size on the param channel");
            }
            Err(_) => {}
        }
    }
}

/// Why an OSC message that decoded was not taken; shown on one bounded line.
#[derive(Debug, PartialEq)]
enum OscRefusal<'a> {
    Address(&'a [u8]),
    Arguments { address: &'a [u8], tags: &'a [u8] },
}

impl std::fmt::Display for OscRefusal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            OscRefusal::Address(a) => {
                write!(f, "OSC address {} (use /clavm/p, /clavm/i, /clavm/cc or /clavm/bpm)", Shown(a))
            }
            OscRefusal::Arguments { address, tags } => write!(
                f,
                "OSC {} with argument types ,{} (want an integer index and a number)",
                Shown(address),
                Shown(tags)
            ),
        }
    }
}

/// The OSC addresses we answer: `/clavm/p N VALUE`, `/clavm/i N VALUE`, `/clavm/cc N VALUE`.
/// `Ok(None)`: the right shape, but an index or value out of range.
fn osc_param<'a>(msg: &osc::Message<'a>) -> Result<Option<Param>, OscRefusal<'a>> {
    use osc::Arg;
    let kind = match msg.address {
        b"/clavm/p" => ParamKind::P,
        b"/clavm/i" => ParamKind::I,
        b"/clavm/cc" => ParamKind::Cc,
        b"/clavm/bpm" => ParamKind::Tempo,
        other => return Err(OscRefusal::Address(other)),
    };
    let index = |a: Arg| match a {
        Arg::Int(v) => Some(i64::from(v)),
        Arg::Long(v) => Some(v),
        _ => None,
    };
    let number = |a: Arg| match a {
        Arg::Int(v) => Some(f64::from(v)),
        Arg::Long(v) => Some(v as f64),
        Arg::Float(v) => Some(f64::from(v)),
        Arg::Double(v) => Some(v),
        _ => None,
    };
    let mut args = msg.args();
    if kind == ParamKind::Tempo {
        // `/clavm/bpm TEMPO`: one number.
        return match (args.next().and_then(number), args.next()) {
            (Some(v), None) => Ok(param(kind, 0, v)),
            _ => Err(OscRefusal::Arguments { address: msg.address, tags: msg.tags }),
        };
    }
    match (args.next().and_then(index), args.next().and_then(number), args.next()) {
        (Some(n), Some(v), None) => Ok(param(kind, n, v)),
        _ => Err(OscRefusal::Arguments { address: msg.address, tags: msg.tags }),
    }
}

/// Decodes one datagram and forwards its parameter changes. A packet that
/// does not decode is refused whole and counted once; a message in it that
/// is not ours is counted on its own.
fn osc_packet(packet: &[u8], tx: &Sender, stats: &InputStats, complaints: &mut Complaints) {
    let decoded = osc::decode(packet, |m| match osc_param(&m) {
        Ok(p) => {
            if !forward(tx, stats, p) {
                complaints
                    .say(format_args!("OSC {} with an index out of 0..127 or a value not finite", Shown(m.address)));
            }
        }
        Err(why) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            complaints.say(why);
        }
    });
    if let Err(e) = decoded {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        complaints.say(format_args!("a malformed OSC packet ({e})"));
    }
}

/// The OSC thread: an ordinary (not realtime) thread, started from the
/// engine's main thread, so a flood competes with nothing the audio needs.
/// Its cost per datagram is bounded by `osc::MAX_PACKET`, and the kernel
/// drops what it cannot take: the socket's buffer is the only queue.
fn serve_osc(socket: UdpSocket, mut tx: ParamSender, stats: &InputStats, stop: &AtomicBool) {
    // One byte more than the largest packet, so a longer datagram (which the
    // kernel truncates to the buffer) is seen as oversized, not cut.
    let mut buf = vec![0u8; osc::MAX_PACKET + 1];
    let mut complaints = Complaints(0);
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            tx.get();
            continue;
        };
        osc_packet(&buf[..n], tx.get(), stats, &mut complaints);
    }
}

/// A MIDI message, if it is a control change: (controller, value 0..1).
fn control_change(bytes: &[u8]) -> Option<(u8, f32)> {
    match *bytes {
        [status, controller, value] if status & 0xf0 == 0xb0 && controller < 128 && value < 128 => {
            Some((controller, value as f32 / 127.0))
        }
        _ => None,
    }
}

/// JACK's process callback for the MIDI input: realtime, so it only sends
/// on the param channel (never waits; a flood is counted as drops there).
/// When the engine replaces its param channel, a new sender arrives on
/// `fresh` (opened by `watch_for_jack_midi`, off the realtime thread) and the
/// old one goes back on `retired` to be unmapped there.
pub struct MidiHandler {
    port: jack::Port<jack::MidiIn>,
    tx: Sender,
    stats: Arc<InputStats>,
    fresh: rtrb::Consumer<Sender>,
    retired: rtrb::Producer<Sender>,
}

/// Room for senders in flight between the watcher and JACK's callback.
const SENDER_HANDOFF: usize = 4;

/// Opens the param channel again for JACK MIDI whenever the engine has
/// replaced it, and unmaps the senders the callback hands back.
fn watch_for_jack_midi(
    mut watch: ParamSender,
    mut fresh: rtrb::Producer<Sender>,
    mut retired: rtrb::Consumer<Sender>,
    stop: &AtomicBool,
) {
    // Whether JACK's callback still holds a sender on a replaced file.
    let mut stale = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(RECHECK);
        while retired.pop().is_ok() {}
        stale |= !watch.tx.intact();
        watch.get();
        if stale && watch.tx.intact() {
            if let Ok(tx) = Sender::open(&watch.engine, PARAM_CHANNEL) {
                stale = fresh.push(tx).is_err();
            }
        }
    }
}

impl jack::ProcessHandler for MidiHandler {
    fn process(&mut self, _: &jack::Client, ps: &jack::ProcessScope) -> jack::Control {
        if let Ok(tx) = self.fresh.pop() {
            let old = std::mem::replace(&mut self.tx, tx);
            if let Err(rtrb::PushError::Full(old)) = self.retired.push(old) {
                // Never unmapped here: kept (leaked) rather than freed on the realtime thread.
                std::mem::forget(old);
            }
        }
        for ev in self.port.iter(ps) {
            self.stats.midi_events.fetch_add(1, Ordering::Relaxed);
            send_midi(&self.tx, ev.bytes);
        }
        jack::Control::Continue
    }
}

fn jack_midi(
    tx: Sender,
    stats: Arc<InputStats>,
    fresh: rtrb::Consumer<Sender>,
    retired: rtrb::Producer<Sender>,
) -> anyhow::Result<jack::AsyncClient<(), MidiHandler>> {
    let (client, _) = jack::Client::new("clavm-midi", jack::ClientOptions::NO_START_SERVER)
        .map_err(|e| anyhow::anyhow!("cannot open a JACK client: {e}"))?;
    let port = client.register_port("cc_in", jack::MidiIn::default()).context("registering the JACK MIDI port")?;
    let handler = MidiHandler { port, tx, stats, fresh, retired };
    let active = client.activate_async((), handler).context("activating JACK MIDI")?;
    eprintln!("clavm: MIDI notes and control change from JACK port clavm-midi:cc_in");
    Ok(active)
}

fn alsa_midi(mut tx: ParamSender, stats: Arc<InputStats>) -> anyhow::Result<midir::MidiInputConnection<()>> {
    use midir::os::unix::VirtualInput;
    let input = midir::MidiInput::new("clavm").context("opening the ALSA sequencer")?;
    let conn = input
        .create_virtual(
            "cc in",
            move |_, bytes, _| {
                stats.midi_events.fetch_add(1, Ordering::Relaxed);
                send_midi(tx.get(), bytes);
            },
            (),
        )
        .map_err(|e| anyhow::anyhow!("creating an ALSA sequencer port: {e}"))?;
    eprintln!("clavm: MIDI notes and control change from ALSA sequencer port clavm:cc in");
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_param_sender_follows_the_engine_to_a_replaced_channel() {
        // The engine replaces a cut or scribbled param channel with a new file
        // under the same name; OSC's sender must find the new one by itself.
        let engine = format!("t-reopen-{}", std::process::id());
        let rx = Receiver::create(&engine, PARAM_CHANNEL, param_config()).unwrap();
        let mut tx = ParamSender::new(&engine, Sender::open(&engine, PARAM_CHANNEL).unwrap());
        let mut rx = rx.renew().unwrap();
        assert!(!tx.tx.intact(), "the old file is no longer under the name");
        tx.checked -= RECHECK;
        tx.get().try_send(&message(Param::P(3, 0.75))).unwrap();
        let m: ParamMsg = rx.recv(Wait::Sleep, Duration::from_secs(1)).expect("reached the new channel");
        assert_eq!(m, message(Param::P(3, 0.75)));
    }
    use rosc::{OscMessage, OscPacket, OscType};

    /// `addr` with `args`, encoded by rosc and decoded by us, mapped to a parameter.
    fn osc(addr: &str, args: Vec<OscType>) -> Result<Option<Param>, String> {
        let bytes = rosc::encoder::encode(&OscPacket::Message(OscMessage { addr: addr.into(), args })).unwrap();
        let mut got = Vec::new();
        osc::decode(&bytes, |m| got.push(osc_param(&m).map_err(|e| e.to_string()))).unwrap();
        assert_eq!(got.len(), 1);
        got.remove(0)
    }

    #[test]
    fn osc_messages_map_to_parameters_and_bad_ones_are_refused() {
        assert_eq!(osc("/clavm/p", vec![OscType::Int(3), OscType::Float(0.5)]), Ok(Some(Param::P(3, 0.5))));
        assert_eq!(osc("/clavm/i", vec![OscType::Int(1), OscType::Double(2.6)]), Ok(Some(Param::I(1, 3))));
        assert_eq!(osc("/clavm/cc", vec![OscType::Long(7), OscType::Int(1)]), Ok(Some(Param::Cc(7, 1.0))));
        assert_eq!(osc("/clavm/p", vec![OscType::Int(300), OscType::Float(1.0)]), Ok(None));
        assert_eq!(osc("/clavm/p", vec![OscType::Int(-1), OscType::Float(1.0)]), Ok(None));
        assert_eq!(osc("/clavm/p", vec![OscType::Int(1), OscType::Float(f32::NAN)]), Ok(None));
        let refused = osc("/clavm/p", vec![OscType::Float(1.0), OscType::Float(1.0)]).unwrap_err();
        assert!(refused.contains("argument types ,ff"), "{refused}");
        assert!(osc("/clavm/p", vec![OscType::Int(1), OscType::String("x".into())]).is_err());
        assert!(osc("/clavm/p", vec![OscType::Int(1), OscType::Float(1.0), OscType::Nil]).is_err(), "a third argument");
        assert!(osc("/clavm/p", vec![OscType::Int(1)]).is_err(), "no value");
        assert_eq!(
            osc("/other", vec![]).unwrap_err(),
            "OSC address /other (use /clavm/p, /clavm/i, /clavm/cc or /clavm/bpm)"
        );
    }

    #[test]
    fn osc_tempo_is_one_number_in_range() {
        let bpm = |v: f64| Param::Tempo(Bpm::new(v).unwrap());
        assert_eq!(osc("/clavm/bpm", vec![OscType::Float(96.0)]), Ok(Some(bpm(96.0))));
        assert_eq!(osc("/clavm/bpm", vec![OscType::Int(140)]), Ok(Some(bpm(140.0))));
        assert_eq!(osc("/clavm/bpm", vec![OscType::Double(0.0)]), Ok(None), "out of range");
        assert_eq!(osc("/clavm/bpm", vec![OscType::Float(f32::INFINITY)]), Ok(None));
        assert!(osc("/clavm/bpm", vec![OscType::Int(0), OscType::Float(96.0)]).is_err(), "no index");
        assert!(osc("/clavm/bpm", vec![]).is_err());
        // Through the param channel's message and back.
        let m = message(bpm(133.5));
        assert_eq!(param(ParamKind::Tempo, 0, 133.5), Some(bpm(133.5)));
        assert_eq!(m.decode(), Some((ParamKind::Tempo, 0, 133.5)));
        assert_eq!(param(ParamKind::Tempo, 1, 133.5), None, "a tempo has no index");
    }

    /// A refusal names what it refused on one short line, however long the address.
    #[test]
    fn refusals_are_one_bounded_line() {
        let addr = format!("/{}\n", "x".repeat(5000));
        let why = osc(&addr, vec![]).unwrap_err();
        assert!(why.len() < 150 && !why.contains('\n'), "{why}");
        assert!(why.contains("(5002 bytes)"), "{why}");
    }

    #[test]
    fn note_events_cross_the_param_channel_and_bad_ones_are_refused() {
        use clavm_audio::voices::NoteEvent as N;
        for e in
            [N::On { note: 60, velocity: 127 }, N::Off { note: 0 }, N::Bend(-8192), N::Bend(8191), N::Sustain(true)]
        {
            let (kind, index, value) = note_message(e).decode().unwrap();
            assert_eq!(param(kind, index as i64, value), Some(Param::Note(e)), "{e:?}");
        }
        assert_eq!(param(ParamKind::Note, 60, 0.0), None, "a note on with velocity 0");
        assert_eq!(param(ParamKind::Note, 200, 100.0), None, "note 200");
        assert_eq!(param(ParamKind::Note, 2 << 8, 9000.0), None, "bend out of range");
        assert_eq!(param(ParamKind::Note, 9 << 8, 0.0), None, "no such kind");
        assert_eq!(param(ParamKind::Note, 1 << 8, 0.5), None, "not a whole number");
    }

    #[test]
    fn only_control_changes_become_cc_values() {
        assert_eq!(control_change(&[0xb3, 7, 127]), Some((7, 1.0)));
        assert_eq!(control_change(&[0x90, 60, 100]), None, "note on");
        assert_eq!(control_change(&[0xb0, 7]), None, "truncated");
    }
}
