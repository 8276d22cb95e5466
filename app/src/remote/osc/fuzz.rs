//! Property tests of the decoder, with a bounded number of cases so they run
//! in seconds: random bytes never make it panic, random valid packets (built
//! and encoded by `rosc`) decode to what `rosc` put in, however deep they
//! nest up to the limit and refused past it, and cut or damaged packets are
//! refused or decode to something sane.

use proptest::collection::vec;
use proptest::prelude::*;
use rosc::{OscArray, OscBundle, OscColor, OscMessage, OscMidiMessage, OscPacket, OscTime, OscType};

use super::tests::{bundle, set_p, Decoded};
use super::*;

/// One argument as rosc builds it (arrays nest two levels at most).
fn rosc_arg() -> impl Strategy<Value = OscType> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(OscType::Int),
        any::<f32>().prop_map(OscType::Float),
        "[a-zA-Z0-9 ]{0,9}".prop_map(OscType::String),
        vec(any::<u8>(), 0..10).prop_map(OscType::Blob),
        any::<i64>().prop_map(OscType::Long),
        any::<f64>().prop_map(OscType::Double),
        (any::<u32>(), any::<u32>()).prop_map(|(seconds, fractional)| OscType::Time(OscTime { seconds, fractional })),
        any::<char>().prop_map(OscType::Char),
        any::<[u8; 4]>().prop_map(|[red, green, blue, alpha]| OscType::Color(OscColor { red, green, blue, alpha })),
        any::<[u8; 4]>().prop_map(|[port, status, data1, data2]| OscType::Midi(OscMidiMessage {
            port,
            status,
            data1,
            data2
        })),
        any::<bool>().prop_map(OscType::Bool),
        Just(OscType::Nil),
        Just(OscType::Inf),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| vec(inner, 0..3).prop_map(|content| OscType::Array(OscArray { content })))
}

fn rosc_message() -> impl Strategy<Value = OscPacket> {
    ("(/[a-z]{1,6}){1,3}", vec(rosc_arg(), 0..5)).prop_map(|(addr, args)| OscPacket::Message(OscMessage { addr, args }))
}

fn rosc_bundle(content: Vec<OscPacket>, (seconds, fractional): (u32, u32)) -> OscPacket {
    OscPacket::Bundle(OscBundle { timetag: OscTime { seconds, fractional }, content })
}

/// Packets nesting up to two bundles past the limit: bushy random trees, and
/// spines of every depth with messages beside them at each level (a random
/// tree seldom grows as deep as the limit).
fn rosc_packet() -> impl Strategy<Value = OscPacket> {
    let tree = rosc_message().prop_recursive(MAX_DEPTH as u32 + 2, 48, 3, |inner| {
        (vec(inner, 0..3), any::<(u32, u32)>()).prop_map(|(content, time)| rosc_bundle(content, time))
    });
    let spine = (rosc_message(), vec((vec(rosc_message(), 0..2), any::<bool>()), 0..MAX_DEPTH + 3)).prop_map(
        |(innermost, levels)| {
            levels.into_iter().fold(innermost, |inner, (mut beside, first)| {
                beside.insert(if first { 0 } else { beside.len() }, inner);
                rosc_bundle(beside, (0, 1))
            })
        },
    );
    prop_oneof![tree, spine]
}

fn depth(p: &OscPacket) -> usize {
    match p {
        OscPacket::Message(_) => 0,
        OscPacket::Bundle(b) => 1 + b.content.iter().map(depth).max().unwrap_or(0),
    }
}

/// One argument as text both decoders' results can be compared in (floats by their bits, so NaN equals NaN).
fn canon_rosc(a: &OscType, out: &mut Vec<String>) {
    let text = match a {
        OscType::Int(v) => format!("i{v}"),
        OscType::Float(v) => format!("f{:x}", v.to_bits()),
        OscType::String(s) => format!("s{:?}", s.as_bytes()),
        OscType::Blob(b) => format!("b{b:?}"),
        OscType::Long(v) => format!("h{v}"),
        OscType::Double(v) => format!("d{:x}", v.to_bits()),
        OscType::Time(t) => format!("t{}.{}", t.seconds, t.fractional),
        OscType::Char(c) => format!("c{}", u32::from(*c)),
        OscType::Color(c) => format!("r{:?}", [c.red, c.green, c.blue, c.alpha]),
        OscType::Midi(m) => format!("m{:?}", [m.port, m.status, m.data1, m.data2]),
        OscType::Bool(true) => "T".into(),
        OscType::Bool(false) => "F".into(),
        OscType::Nil => "N".into(),
        OscType::Inf => "I".into(),
        OscType::Array(a) => {
            out.push("[".into());
            for x in &a.content {
                canon_rosc(x, out);
            }
            "]".into()
        }
    };
    out.push(text);
}

fn canon(a: Arg) -> String {
    match a {
        Arg::Int(v) => format!("i{v}"),
        Arg::Float(v) => format!("f{:x}", v.to_bits()),
        Arg::String(s) => format!("s{s:?}"),
        Arg::Symbol(s) => format!("S{s:?}"),
        Arg::Blob(b) => format!("b{b:?}"),
        Arg::Long(v) => format!("h{v}"),
        Arg::Double(v) => format!("d{:x}", v.to_bits()),
        Arg::Time { seconds, fraction } => format!("t{seconds}.{fraction}"),
        Arg::Char(c) => format!("c{c}"),
        Arg::Color(c) => format!("r{c:?}"),
        Arg::Midi(m) => format!("m{m:?}"),
        Arg::True => "T".into(),
        Arg::False => "F".into(),
        Arg::Nil => "N".into(),
        Arg::Inf => "I".into(),
        Arg::ArrayStart => "[".into(),
        Arg::ArrayEnd => "]".into(),
    }
}

/// The messages of a rosc packet, in order, as (address, canonical arguments).
fn flatten(p: &OscPacket, out: &mut Decoded) {
    match p {
        OscPacket::Message(m) => {
            let mut args = Vec::new();
            for a in &m.args {
                canon_rosc(a, &mut args);
            }
            out.push((m.addr.as_bytes().to_vec(), args));
        }
        OscPacket::Bundle(b) => b.content.iter().for_each(|p| flatten(p, out)),
    }
}

fn ours(bytes: &[u8]) -> Result<Decoded, OscError> {
    let mut got = Vec::new();
    let n = decode(bytes, |m| got.push((m.address.to_vec(), m.args().map(canon).collect())))?;
    assert_eq!(n, got.len());
    Ok(got)
}

/// Bytes that look like OSC at the start, then anything.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tail = vec(any::<u8>(), 0..600);
    prop_oneof![
        vec(any::<u8>(), 0..2048),
        tail.clone().prop_map(|t| [&b"#bundle\0\0\0\0\0\0\0\0\0"[..], &t].concat()),
        tail.clone().prop_map(|t| [&b"/clavm/p\0\0\0\0,"[..], &t].concat()),
        // Nested bundle headers with random sizes.
        vec((any::<i32>(), any::<bool>()), 1..40).prop_map(|levels| {
            let mut v = Vec::new();
            for (size, lie) in levels {
                v.extend_from_slice(b"#bundle\0\0\0\0\0\0\0\0\0");
                v.extend_from_slice(&if lie { size } else { size & 0x3ffc }.to_be_bytes());
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_yield_few_messages(bytes in hostile_bytes()) {
        if let Ok(messages) = ours(&bytes) {
            // Every message takes at least 4 bytes ("/\0\0\0").
            prop_assert!(messages.len() <= bytes.len() / 4);
            prop_assert!(messages.iter().all(|(a, _)| a.first() == Some(&b'/')));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_valid_packets_decode_as_rosc_built_them(packet in rosc_packet()) {
        let bytes = rosc::encoder::encode(&packet).unwrap();
        let got = ours(&bytes);
        if bytes.len() > MAX_PACKET {
            prop_assert_eq!(got, Err(OscError::Oversized));
        } else if depth(&packet) > MAX_DEPTH {
            prop_assert_eq!(got, Err(OscError::TooDeep));
        } else {
            let mut want = Vec::new();
            flatten(&packet, &mut want);
            prop_assert_eq!(got, Ok(want));
        }
    }

    #[test]
    fn cut_or_damaged_packets_are_refused_or_decode_sanely(
        packet in rosc_packet(),
        cut in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = rosc::encoder::encode(&packet).unwrap();
        bytes.truncate(cut.index(bytes.len() + 1));
        for (at, x) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
        }
        if let Ok(messages) = ours(&bytes) {
            prop_assert!(messages.len() <= bytes.len() / 4);
        }
    }

    /// Valid parameter bundles of any shape within the limits deliver every message.
    #[test]
    fn parameter_bundles_deliver_every_change(sizes in vec(0usize..8, 1..6)) {
        let elements: Vec<Vec<u8>> =
            sizes.iter().map(|&n| bundle(&(0..n).map(|i| set_p(i as i32, 0.5)).collect::<Vec<_>>())).collect();
        let got = ours(&bundle(&elements)).map(|m| m.len());
        prop_assert_eq!(got, Ok(sizes.iter().sum::<usize>()));
    }
}
