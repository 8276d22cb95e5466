//! The decoder against hand-built packets: the limits and one past them, the
//! finding's 3,000 nested bundles, cut and lying packets, every type tag, and
//! the hostile corpus in `assets/hostile/osc/`.

use super::*;

/// An OSC string: the bytes, a null, nulls to a multiple of 4.
pub(super) fn osc_string(s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    v.push(0);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// A message from its address, type tags (without the ',') and raw argument data.
pub(super) fn message_bytes(address: &str, tags: &str, data: &[u8]) -> Vec<u8> {
    let mut v = osc_string(address.as_bytes());
    v.extend(osc_string(format!(",{tags}").as_bytes()));
    v.extend_from_slice(data);
    v
}

/// `/clavm/p index value`.
pub(super) fn set_p(index: i32, value: f32) -> Vec<u8> {
    message_bytes("/clavm/p", "if", &[index.to_be_bytes(), value.to_be_bytes()].concat())
}

/// A bundle holding `elements` (each given a size prefix).
pub(super) fn bundle(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut v = b"#bundle\0".to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    for e in elements {
        v.extend_from_slice(&(e.len() as i32).to_be_bytes());
        v.extend_from_slice(e);
    }
    v
}

/// `inner` wrapped in `depth` bundles, built without recursion (20 bytes a level).
pub(super) fn nested(depth: usize, inner: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(depth * 20);
    let mut size = inner.len();
    let mut headers = Vec::with_capacity(depth);
    for _ in 0..depth {
        headers.push(size as i32);
        size += 20;
    }
    for s in headers.iter().rev() {
        prefix.extend_from_slice(b"#bundle\0");
        prefix.extend_from_slice(&[0; 8]);
        prefix.extend_from_slice(&s.to_be_bytes());
    }
    prefix.extend_from_slice(inner);
    prefix
}

/// Messages as (address, arguments as text), for comparing.
pub(super) type Decoded = Vec<(Vec<u8>, Vec<String>)>;

/// The messages of a packet, or its error.
fn messages(packet: &[u8]) -> Result<Decoded, OscError> {
    let mut got = Vec::new();
    decode(packet, |m| got.push((m.address.to_vec(), m.args().map(|a| format!("{a:?}")).collect())))?;
    Ok(got)
}

fn addresses(packet: &[u8]) -> Result<Vec<Vec<u8>>, OscError> {
    messages(packet).map(|v| v.into_iter().map(|(a, _)| a).collect())
}

#[test]
fn a_plain_message_and_a_bundle_decode_in_order() {
    assert_eq!(messages(&set_p(3, 0.5)), Ok(vec![(b"/clavm/p".to_vec(), vec!["Int(3)".into(), "Float(0.5)".into()])]));
    let b = bundle(&[set_p(0, 1.0), message_bytes("/a", "", &[]), bundle(&[set_p(1, 2.0)])]);
    assert_eq!(addresses(&b), Ok(vec![b"/clavm/p".to_vec(), b"/a".to_vec(), b"/clavm/p".to_vec()]));
    assert_eq!(addresses(&bundle(&[])), Ok(vec![]), "an empty bundle is valid and sets nothing");
}

#[test]
fn bundles_nested_to_the_limit_decode_and_one_more_is_refused() {
    let at_limit = nested(MAX_DEPTH, &set_p(2, 0.25));
    assert_eq!(addresses(&at_limit), Ok(vec![b"/clavm/p".to_vec()]));
    assert_eq!(messages(&nested(MAX_DEPTH + 1, &set_p(2, 0.25))), Err(OscError::TooDeep));
    // Depth is nesting, not the number of bundles: many siblings at the limit are fine.
    let siblings: Vec<Vec<u8>> = (0..20).map(|i| nested(MAX_DEPTH - 1, &set_p(i, 0.0))).collect();
    assert_eq!(addresses(&bundle(&siblings)).map(|a| a.len()), Ok(20));
}

/// The finding: one datagram of 3,000 nested bundles aborted the engine.
#[test]
fn three_thousand_nested_bundles_are_refused_without_recursion() {
    let packet = nested(3000, &set_p(0, 1.0));
    assert_eq!(packet.len(), 60_024);
    assert_eq!(decode(&packet, |_| {}), Err(OscError::Oversized));
    // Past the size cap too, the walk stops at the depth limit: run it on a
    // thread with a small stack to show it does not need one.
    let refused = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || walk(&packet, &mut |_| {}))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(refused, Err(OscError::TooDeep));
    // The deepest packet that fits under the size cap.
    let deep = nested((MAX_PACKET - 24) / 20, &set_p(0, 1.0));
    assert!(deep.len() <= MAX_PACKET);
    assert_eq!(decode(&deep, |_| {}), Err(OscError::TooDeep));
}

#[test]
fn a_64_kib_packet_is_refused_as_oversized_and_the_cap_itself_decodes() {
    assert_eq!(decode(&vec![0u8; 64 * 1024], |_| {}), Err(OscError::Oversized));
    // A valid bundle of many messages, just over the cap, then just under it.
    let many = |n: usize| bundle(&(0..n).map(|i| set_p((i % 128) as i32, 0.5)).collect::<Vec<_>>());
    let per = 28; // a 24-byte message and its size
    let fits = (MAX_PACKET - BUNDLE_HEADER) / per;
    assert_eq!(decode(&many(fits + 1), |_| {}), Err(OscError::Oversized));
    assert_eq!(decode(&many(fits), |_| {}), Ok(fits));
}

#[test]
fn cut_packets_are_refused() {
    let all =
        message_bytes("/all", "ifs", &[&7i32.to_be_bytes()[..], &1.5f32.to_be_bytes(), &osc_string(b"hi")].concat());
    let address_only = osc_string(b"/all").len();
    for cut in 0..all.len() {
        let r = messages(&all[..cut]);
        if cut == address_only {
            // OSC 1.0 lets a sender leave out the type tags: an address alone is a message without arguments.
            assert_eq!(r, Ok(vec![(b"/all".to_vec(), vec![])]));
        } else {
            assert!(r.is_err(), "{cut} bytes of {}: {r:?}", all.len());
        }
    }
    assert_eq!(messages(&[]), Err(OscError::Unaligned(0)));
    assert_eq!(messages(b"/clavm/p"), Err(OscError::Truncated(0)), "no terminating null");
    assert_eq!(messages(&set_p(0, 1.0)[..20]), Err(OscError::Truncated(20)), "the float is missing");
    assert_eq!(messages(b"#bundle\0"), Err(OscError::Truncated(0)), "no time tag");
    // A bundle whose last element is cut: its declared size runs past the end.
    let b = bundle(&[set_p(0, 1.0), set_p(1, 1.0)]);
    assert!(matches!(messages(&b[..b.len() - 4]), Err(OscError::BadLength { .. })));
    // A bundle cut between its elements is a shorter valid bundle.
    assert_eq!(addresses(&b[..16 + 28]).map(|a| a.len()), Ok(1));
}

#[test]
fn huge_and_lying_declared_lengths_are_refused() {
    let element = |size: i32| {
        let mut b = bundle(&[]);
        b.extend_from_slice(&size.to_be_bytes());
        b.extend(set_p(0, 1.0));
        b
    };
    for size in [i32::MAX, i32::MIN, -1, -24, 0, 23, 25, 28] {
        let r = messages(&element(size));
        let left = 24;
        assert_eq!(r, Err(OscError::BadLength { at: 16, declared: size.into(), left }), "element size {size}");
    }
    assert_eq!(addresses(&element(24)).map(|a| a.len()), Ok(1), "the honest size");

    let blob = |size: i32, data: &[u8]| message_bytes("/b", "b", &[&size.to_be_bytes()[..], data].concat());
    for size in [i32::MAX, i32::MIN, -1, 9, 2_147_483_645] {
        assert!(
            matches!(messages(&blob(size, &[1; 8])), Err(OscError::BadLength { declared, .. }) if declared == i64::from(size)),
            "blob size {size}"
        );
    }
    assert_eq!(
        messages(&blob(5, &[1, 2, 3, 4, 5, 0, 0, 0])),
        Ok(vec![(b"/b".to_vec(), vec!["Blob([1, 2, 3, 4, 5])".into()])])
    );
    assert_eq!(messages(&blob(5, &[1, 2, 3, 4, 5, 0, 9, 0])), Err(OscError::BadPadding(8)));
    assert_eq!(messages(&blob(0, &[])), Ok(vec![(b"/b".to_vec(), vec!["Blob([])".into()])]));
}

#[test]
fn every_type_tag_decodes_and_an_unknown_one_is_refused() {
    let data: Vec<u8> = [
        &(-7i32).to_be_bytes()[..],
        &0.25f32.to_be_bytes(),
        &osc_string(b"str"),
        &osc_string(b"sym"),
        &3i32.to_be_bytes(),
        &[9, 8, 7, 0],
        &(-1i64 << 40).to_be_bytes(),
        &5u32.to_be_bytes(),
        &6u32.to_be_bytes(),
        &0.125f64.to_be_bytes(),
        &u32::from('é').to_be_bytes(),
        &[1, 2, 3, 4],
        &[0, 0xb0, 7, 127],
        &42i32.to_be_bytes(),
    ]
    .concat();
    let m = message_bytes("/all", "ifsSbhtdcrmTFNI[i]", &data);
    let mut got = Vec::new();
    assert_eq!(decode(&m, |msg| got.extend(msg.args())), Ok(1));
    assert_eq!(
        got,
        vec![
            Arg::Int(-7),
            Arg::Float(0.25),
            Arg::String(b"str"),
            Arg::Symbol(b"sym"),
            Arg::Blob(&[9, 8, 7]),
            Arg::Long(-1 << 40),
            Arg::Time { seconds: 5, fraction: 6 },
            Arg::Double(0.125),
            Arg::Char(u32::from('é')),
            Arg::Color([1, 2, 3, 4]),
            Arg::Midi([0, 0xb0, 7, 127]),
            Arg::True,
            Arg::False,
            Arg::Nil,
            Arg::Inf,
            Arg::ArrayStart,
            Arg::Int(42),
            Arg::ArrayEnd,
        ]
    );
    // Each tag that carries data, with none: cut short. The ones without data need none.
    for tag in ["i", "f", "s", "S", "b", "h", "t", "d", "c", "r", "m"] {
        assert!(matches!(messages(&message_bytes("/x", tag, &[])), Err(OscError::Truncated(_))), "{tag}");
    }
    for tag in ["T", "F", "N", "I", "[]"] {
        assert!(messages(&message_bytes("/x", tag, &[])).is_ok(), "{tag}");
    }
    assert_eq!(messages(&message_bytes("/x", "ix", &[0; 8])), Err(OscError::UnknownType { at: 8, tag: 'x' }));
    assert_eq!(messages(&message_bytes("/x", "[i", &[0; 4])), Err(OscError::Unbalanced(0)));
    assert_eq!(messages(&message_bytes("/x", "i]", &[0; 4])), Err(OscError::Unbalanced(0)));
    assert_eq!(messages(&message_bytes("/x", "i", &[0; 8])), Err(OscError::TrailingBytes(0)));
    assert_eq!(messages(&[&osc_string(b"/x")[..], &osc_string(b"if")].concat()), Err(OscError::NoTypeTags(4)));
    assert_eq!(messages(b"/x\0\x01"), Err(OscError::BadPadding(0)));
    assert_eq!(messages(&[0u8; 8]), Err(OscError::NotAPacket(0)));
}

#[test]
fn deeply_nested_arrays_cost_no_stack() {
    // Arrays are only counted, never built: 16,000 levels in one message.
    let tags = format!("{}{}", "[".repeat(8000), "]".repeat(8000));
    let m = message_bytes("/a", &tags, &[]);
    assert!(m.len() <= MAX_PACKET);
    assert_eq!(decode(&m, |msg| assert_eq!(msg.args().count(), 16_000)), Ok(1));
}

#[test]
fn a_refused_bundle_hands_out_none_of_its_messages() {
    let b = bundle(&[set_p(0, 1.0), set_p(1, 1.0), b"oops".to_vec()]);
    let mut seen = 0;
    assert_eq!(decode(&b, |_| seen += 1), Err(OscError::NotAPacket(16 + 28 * 2 + 4)));
    assert_eq!(seen, 0);
}

#[test]
fn shown_bytes_are_escaped_and_bounded() {
    assert_eq!(Shown(b"/clavm/p").to_string(), "/clavm/p");
    assert_eq!(Shown(b"/a\n\x1b[2J").to_string(), "/a\\n\\x1b[2J");
    let long = Shown(&[b'x'; 100]).to_string();
    assert_eq!(long, format!("{}... (100 bytes)", "x".repeat(48)));
}

/// A stable short name for each refusal, as the hostile corpus's file names use it.
fn kind(e: &OscError) -> &'static str {
    match e {
        OscError::Oversized => "oversized",
        OscError::Unaligned(_) => "unaligned",
        OscError::TooDeep => "too-deep",
        OscError::Truncated(_) => "truncated",
        OscError::BadLength { .. } => "bad-length",
        OscError::NotAPacket(_) => "not-a-packet",
        OscError::BadPadding(_) => "bad-padding",
        OscError::NoTypeTags(_) => "no-type-tags",
        OscError::UnknownType { .. } => "unknown-type",
        OscError::Unbalanced(_) => "unbalanced",
        OscError::TrailingBytes(_) => "trailing-bytes",
    }
}

/// The hostile corpus (`assets/hostile/osc/KIND--what.osc`): every file is
/// refused, with the kind its name says.
#[test]
fn hostile_corpus_is_refused_as_named() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/osc");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "osc") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (want, _) = name.split_once("--").unwrap_or_else(|| panic!("{name}: not KIND--what.osc"));
        let bytes = std::fs::read(&path).unwrap();
        match decode(&bytes, |_| {}) {
            Err(e) => assert_eq!(kind(&e), want, "{name}: {e}"),
            Ok(n) => panic!("{name}: decoded ({n} messages)"),
        }
        seen += 1;
    }
    assert!(seen >= corpus().len(), "{seen} files in {}", dir.display());
}

/// The corpus as built here; `write_hostile_corpus` writes it.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut element_2gib = bundle(&[]);
    element_2gib.extend_from_slice(&i32::MAX.to_be_bytes());
    element_2gib.extend(set_p(0, 1.0));
    let mut element_negative = bundle(&[]);
    element_negative.extend_from_slice(&(-20i32).to_be_bytes());
    element_negative.extend(set_p(0, 1.0));
    let blob_2gib = message_bytes("/clavm/p", "ib", &[&0i32.to_be_bytes()[..], &0x7fff_fffci32.to_be_bytes()].concat());
    let biggest_datagram = bundle(&(0..(65_504 - 16) / 28).map(|i| set_p(i % 128, 0.5)).collect::<Vec<_>>());
    let deepest_that_fits = nested((MAX_PACKET - 24) / 20, &set_p(0, 1.0));
    vec![
        ("oversized--3000-nested-bundles.osc", nested(3000, &set_p(0, 1.0))),
        ("too-deep--818-nested-bundles.osc", deepest_that_fits),
        ("too-deep--one-past-the-limit.osc", nested(MAX_DEPTH + 1, &set_p(0, 1.0))),
        ("oversized--64-kib-bundle-of-valid-messages.osc", biggest_datagram),
        ("bad-length--element-declares-2-gib.osc", element_2gib),
        ("bad-length--element-declares-negative.osc", element_negative),
        ("bad-length--blob-declares-2-gib.osc", blob_2gib),
        ("truncated--value-missing.osc", set_p(0, 1.0)[..20].to_vec()),
        ("truncated--address-without-null.osc", b"/clavm/p".to_vec()),
        ("unaligned--text.osc", b"\x00garbage that is not OSC!".to_vec()),
        ("not-a-packet--zeros.osc", vec![0; 64]),
        ("unknown-type--tag-x.osc", message_bytes("/clavm/p", "ix", &[0; 8])),
        ("unbalanced--array-never-closed.osc", message_bytes("/clavm/p", "i[f", &[0; 8])),
        ("no-type-tags--comma-missing.osc", [&osc_string(b"/clavm/p")[..], &osc_string(b"if"), &[0; 8]].concat()),
    ]
}

/// Writes the corpus: `cargo test -p clavm --bin clavm write_hostile_corpus -- --ignored`.
#[test]
#[ignore = "writes assets/hostile/osc/"]
fn write_hostile_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/osc");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in corpus() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
