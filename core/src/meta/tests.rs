use super::reader::{decode, frozen_has_key, Reader};
use super::texts::refs_of;
use super::writer::encode;
use super::*;

#[test]
fn rename_keeps_the_place_and_replaces_a_key_of_the_new_name() {
    let mut m = Meta::new();
    m.insert("a".into(), 1.into());
    m.insert("b".into(), 2.into());
    m.insert("c".into(), 3.into());
    m.rename("b", "b_server".into());
    assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b_server", "c"]);
    m.rename("a", "c".into());
    assert_eq!(m.get("c"), Some(&Value::from(1)));
    assert_eq!(m.len(), 2);
    m.rename("absent", "a".into());
    assert_eq!(m.len(), 2);
}

fn sample() -> Meta {
    let v = json!({
        "hassh_algorithms": "curve25519-sha256,ecdh-sha2-nistp256;aes128-ctr;hmac-sha2-256;none",
        "zero": 0, "big": u64::MAX, "neg": -5, "min": i64::MIN,
        "float": 1.0, "third": 1.0 / 3.0, "tiny": 5e-324, "negf": -0.0,
        "t": true, "f": false, "null": null, "empty": "", "unicode": "é\u{0}ü",
        "answers": ["a", 1, [2, [3]], {"x": {"y": null}}],
        "entropy_client": {"bytes": 12, "entropy": 7.25, "printable": 0.5},
        "obj_empty": {}, "arr_empty": [],
    });
    let Value::Object(map) = v else {
        unreachable!()
    };
    map.into()
}

#[test]
fn literal_names_are_borrowed_and_thawed_names_kept_once() {
    let mut m = Meta::new();
    m.insert("meta_static_key_test".into(), json!(1));
    m.insert(format!("meta_static_key_{}", "made").into(), json!(2));
    assert!(matches!(m.0[0].0, Cow::Borrowed(_)));
    assert!(matches!(m.0[1].0, Cow::Owned(_)));
    // Two thaws of the map name each fact with one kept copy, borrowed.
    let (a, b) = (frozen(&m).to_meta(), frozen(&m).to_meta());
    assert_eq!(a, m);
    for i in 0..2 {
        let (Cow::Borrowed(x), Cow::Borrowed(y)) = (&a.0[i].0, &b.0[i].0) else {
            panic!("a thawed name is borrowed");
        };
        assert!(std::ptr::eq(*x, *y));
    }
}

#[test]
fn facts_appended_together_end_as_appended_one_by_one() {
    let mut base = Meta::new();
    base.insert("meta_batch_a".into(), json!("x"));
    let extra = || {
        vec![
            (Key::from("meta_batch_b"), json!(2)),
            (Key::from("meta_batch_c"), json!(["y", {"z": 1}])),
        ]
    };
    let mut one_by_one = frozen(&base);
    for (k, v) in extra() {
        one_by_one.insert_new(k, v);
    }
    let mut together = frozen(&base);
    together.insert_new_all(extra());
    assert!(together.is_frozen() && one_by_one.is_frozen());
    let keys = |m: &FlowMeta| m.to_meta().keys().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        keys(&together),
        ["meta_batch_a", "meta_batch_b", "meta_batch_c"]
    );
    assert_eq!(together.to_meta(), one_by_one.to_meta());
    // A value nested past the bound: none is appended when the tail joins the buffer, the
    // map thaws and takes them all.
    let mut deep = json!(1);
    for _ in 0..=MAX_FROZEN_DEPTH {
        deep = json!([deep]);
    }
    let mut thawed = frozen(&base);
    thawed.insert_new_all(vec![
        ("meta_batch_b".into(), json!(2)),
        ("meta_batch_d".into(), deep.clone()),
    ]);
    thawed.freeze();
    assert!(!thawed.is_frozen());
    assert_eq!(
        keys(&thawed),
        ["meta_batch_a", "meta_batch_b", "meta_batch_d"]
    );
    assert_eq!(thawed.get("meta_batch_d"), Some(&deep));
}

#[test]
fn kept_names_are_bounded() {
    let mut kept = KeySet::default();
    let first = keep_name(&mut kept, "one", 2).unwrap();
    assert!(std::ptr::eq(first, keep_name(&mut kept, "one", 2).unwrap()));
    assert_eq!(keep_name(&mut kept, "two", 2), Some("two"));
    assert_eq!(
        keep_name(&mut kept, "three", 2),
        None,
        "past the bound: copied, not kept"
    );
    assert_eq!(
        keep_name(&mut kept, "two", 2),
        Some("two"),
        "a kept name is still found"
    );
    assert_eq!(kept.len(), 2);
    let long = "n".repeat(MAX_STATIC_KEY_LEN + 1);
    assert_eq!(
        keep_name(&mut KeySet::default(), &long, 2),
        None,
        "too long to keep"
    );
    let longest = "n".repeat(MAX_STATIC_KEY_LEN);
    assert!(keep_name(&mut KeySet::default(), &longest, 2).is_some());
}

#[test]
fn meta_keeps_the_order_serde_json_map_keeps() {
    // Outputs show key order: inserting, replacing and removing must leave a Meta in the
    // order serde_json's map (preserve_order) would have.
    let mut meta = Meta::new();
    let mut map = Map::new();
    for k in ["a", "b", "c", "d", "e"] {
        meta.insert(k.into(), json!(k));
        map.insert(k.into(), json!(k));
    }
    meta.insert("b".into(), json!(2));
    map.insert("b".into(), json!(2));
    assert_eq!(meta.remove("b"), map.remove("b"));
    assert_eq!(meta.remove("zz"), map.remove("zz"));
    let keys = |m: &Meta| m.keys().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(keys(&meta), map.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&meta), ["a", "e", "c", "d"]);
    assert_eq!(meta, map);
    let round: Meta = Value::from(meta.clone())
        .as_object()
        .cloned()
        .unwrap()
        .into();
    assert_eq!(keys(&round), keys(&meta));
    assert_eq!(
        serde_json::to_string(&meta).unwrap(),
        serde_json::to_string(&map).unwrap()
    );
}

fn frozen(map: &Meta) -> FlowMeta {
    let mut m = FlowMeta::from(map.clone());
    m.freeze();
    assert!(m.is_frozen());
    m
}

#[test]
fn a_frozen_map_decodes_to_the_same_map_and_text() {
    let map = sample();
    let m = frozen(&map);
    let back = m.to_meta();
    assert_eq!(back, map);
    assert_eq!(
        back.keys().collect::<Vec<_>>(),
        map.keys().collect::<Vec<_>>()
    );
    // The number kinds survive: the JSON text is byte for byte the same.
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        serde_json::to_string(&map).unwrap()
    );
    for (k, v) in &map {
        assert_eq!(back[k].is_u64(), v.is_u64(), "{k}");
        assert_eq!(back[k].is_i64(), v.is_i64(), "{k}");
        assert_eq!(back[k].is_f64(), v.is_f64(), "{k}");
    }
    assert!(m.frozen_len() < 400);
}

#[test]
fn contains_key_reads_the_buffer_and_writes_thaw() {
    let map = sample();
    let mut m = frozen(&map);
    for k in map.keys() {
        assert!(m.contains_key(k), "{k}");
    }
    assert!(!m.contains_key("x") && !m.contains_key("y") && !m.contains_key("missing"));
    // A read decodes a copy and keeps the buffer.
    assert_eq!(m["zero"], 0);
    assert!(m.is_frozen());
    let cached = |m: &FlowMeta| m.frozen.as_ref().is_some_and(|f| f.read.get().is_some());
    assert!(cached(&m));
    // Freezing again drops the copy.
    m.freeze();
    assert!(m.is_frozen() && !cached(&m));
    assert_eq!(m.to_meta(), map);
    // A new key goes to the tail: the map stays frozen, in insertion order.
    m.insert("segment".into(), 2.into());
    m.set_default("zero", 9.into());
    m.set_default("later", "x".into());
    assert!(m.is_frozen());
    let mut expected = map.clone();
    expected.insert("segment".into(), 2.into());
    expected.insert("later".into(), "x".into());
    assert_eq!(m.to_meta(), expected);
    assert_eq!(m.len(), expected.len());
    // A key of the tail is set in its place there.
    m.insert("segment".into(), 3.into());
    expected.insert("segment".into(), 3.into());
    assert!(m.is_frozen() && m.would_shrink());
    assert_eq!(m.to_meta(), expected);
    // Freezing appends the tail to the buffer.
    m.freeze();
    assert!(m.is_frozen() && !m.would_shrink());
    assert_eq!(m.to_meta(), expected);
    // A key the buffer has is set in its place in the thawed map, for good; then it
    // behaves as the map does.
    m.insert("segment".into(), 4.into());
    assert!(!m.is_frozen());
    expected.insert("segment".into(), 4.into());
    assert_eq!(*m, expected);
    m.remove("zero");
    expected.remove("zero");
    assert_eq!(m.take(), expected);
    assert!(m.is_empty());
}

/// A map's JSON from its buffer and tail is the decoded map's, byte for byte (what the
/// record writers and `_core.Meta.json()` hand out), without decoding it.
#[test]
fn a_frozen_maps_json_is_the_decoded_maps() {
    let json_of = |m: &FlowMeta| {
        let mut out = Vec::new();
        m.push_json(&mut out);
        out
    };
    let want = |m: &Meta| serde_json::to_vec(&Value::from(m.clone())).unwrap();
    let mut map = sample();
    // Texts shared from their second sighting, and hex packed to bytes.
    map.insert(
        "meta_json_shared_text".into(),
        "a text long enough to be shared".into(),
    );
    map.insert("digest".into(), "00ff10a0b0c0d0e0f0a1b2c3d4e5f607".into());
    map.insert("esc\"aped\u{1}".into(), "tab\there \"quoted\"".into());
    let _first_sighting = frozen(&map);
    let mut m = frozen(&map);
    assert!(m.frozen.as_ref().is_some_and(|f| f.read.get().is_none()));
    assert_eq!(json_of(&m), want(&map));
    assert!(
        m.frozen.as_ref().is_some_and(|f| f.read.get().is_none()),
        "no decoded copy made"
    );
    assert_eq!(m.len(), map.len());
    // With a tail: its entries after the buffer's, replaced in place.
    m.set_default("end_reason", "idle".into());
    m.insert(
        "shape".into(),
        json!({"sizes": [1, -2], "iat_ms": [0.5, 12.125]}),
    );
    m.insert("end_reason".into(), "end".into());
    map.insert("end_reason".into(), "end".into());
    map.insert(
        "shape".into(),
        json!({"sizes": [1, -2], "iat_ms": [0.5, 12.125]}),
    );
    assert!(m.is_frozen());
    assert_eq!(json_of(&m), want(&map));
    assert_eq!(m.len(), map.len());
    // Live, empty, and frozen with an empty buffer's worth: the same writer's output.
    assert_eq!(json_of(&FlowMeta::from(map.clone())), want(&map));
    assert_eq!(json_of(&FlowMeta::new()), b"{}");
    let mut tail_only = frozen(&Meta::from_iter([(Key::from("a"), json!(1))]));
    tail_only.insert("b".into(), json!([]));
    assert_eq!(json_of(&tail_only), br#"{"a":1,"b":[]}"#);
    // A buffer that is not one `encode` wrote gives nothing of it, as decoding does.
    let mut bad = frozen(&Meta::from_iter([(Key::from("a"), json!("x"))]));
    if let Some(f) = bad.frozen.as_mut() {
        f.bytes = Box::new([1, 2, 0xff]);
    }
    bad.insert("b".into(), json!(2));
    assert_eq!(json_of(&bad), br#"{"b":2}"#);
    assert_eq!(bad.to_meta(), Meta::from_iter([(Key::from("b"), json!(2))]));
}

/// In another spelling (sorted keys, other separators and floats, as `crate::pyjson` asks for),
/// a frozen map's JSON is still the decoded map's, shared texts, packed hex and tail included.
#[test]
fn a_frozen_maps_json_in_another_spelling_is_the_decoded_maps() {
    use crate::compact_json::{push_object_as, Spelling};
    let sorted = Spelling {
        sort_keys: true,
        item_separator: b", ",
        key_separator: b": ",
        float: |out, x| out.extend_from_slice(format!("<{x}>").as_bytes()),
    };
    let want = |m: &Meta| {
        let mut out = Vec::new();
        push_object_as(&mut out, &mut m.iter().collect::<Vec<_>>(), sorted);
        out
    };
    let mut map = sample();
    map.insert(
        "meta_json_shared_text".into(),
        "a text long enough to be shared".into(),
    );
    map.insert("digest".into(), "00ff10a0b0c0d0e0f0a1b2c3d4e5f607".into());
    map.insert(
        "nested".into(),
        json!({"z": [0.25, {"y": 1, "b": 2.5}], "a": "x"}),
    );
    let _first_sighting = frozen(&map);
    let mut m = frozen(&map);
    m.insert("aaa_tail".into(), json!({"k": 1.5, "c": null}));
    map.insert("aaa_tail".into(), json!({"k": 1.5, "c": null}));
    assert!(m.is_frozen());
    let mut got = Vec::new();
    m.push_json_as(&mut got, sorted);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want(&map))
    );
    assert!(got.starts_with(br#"{"aaa_tail": {"c": null, "k": <1.5>}"#));
    assert!(
        m.frozen.as_ref().is_some_and(|f| f.read.get().is_none()),
        "no decoded copy made"
    );
}

#[test]
fn a_written_value_reads_back_or_is_refused() {
    let v = written_value(|w| {
        w.object(2);
        w.key("sizes");
        w.array(3);
        w.int(-5);
        w.int(7);
        w.uint(u64::MAX);
        w.key("gap");
        w.float(f64::INFINITY);
    });
    assert_eq!(v, Some(json!({"sizes": [-5, 7, u64::MAX], "gap": null})));
    // A length stated wrongly, either way: nothing rather than a value cut or run over.
    assert_eq!(
        written_value(|w| {
            w.array(2);
            w.uint(1);
        }),
        None
    );
    assert_eq!(
        written_value(|w| {
            w.array(1);
            w.uint(1);
            w.uint(2);
        }),
        None
    );
}

#[test]
fn value_of_a_frozen_map_reads_one_value_and_decodes_no_copy() {
    let map = sample();
    let m = frozen(&map);
    for (k, v) in &map {
        assert_eq!(m.value_of(k).as_deref(), Some(v), "{k}");
    }
    assert!(m.value_of("missing").is_none());
    assert!(!m.would_shrink(), "no decoded copy kept");
    // With a decoded copy, and live, the same answers.
    let _ = m.get("zero");
    assert!(m.would_shrink());
    let live = FlowMeta::from(map.clone());
    for (k, v) in &map {
        assert_eq!(m.value_of(k).as_deref(), Some(v), "{k}");
        assert_eq!(live.value_of(k).as_deref(), Some(v), "{k}");
    }
    assert!(FlowMeta::new().value_of("zero").is_none());
}

#[test]
fn take_of_a_frozen_map_and_empty_or_deep_maps() {
    let map = sample();
    assert_eq!(frozen(&map).take(), map);
    let mut empty = FlowMeta::new();
    empty.freeze();
    assert!(!empty.is_frozen() && empty.take().is_empty());
    // Nested past the bound: stays a map, unchanged.
    let mut deep = Value::Null;
    for _ in 0..MAX_FROZEN_DEPTH + 2 {
        deep = Value::Array(vec![deep]);
    }
    let mut m = Meta::new();
    m.insert("deep".into(), deep);
    let mut fm = FlowMeta::from(m.clone());
    fm.freeze();
    assert!(!fm.is_frozen());
    assert_eq!(fm.take(), m);
    // Exactly at the bound: frozen and back.
    let mut ok = Value::Null;
    for _ in 0..MAX_FROZEN_DEPTH {
        ok = Value::Array(vec![ok]);
    }
    let mut m = Meta::new();
    m.insert("ok".into(), ok);
    assert_eq!(frozen(&m).take(), m);
}

#[test]
fn repeated_texts_are_shared_from_the_second_sighting_and_leave_with_the_last() {
    // Texts no other test uses (the table is the process's).
    let long = "curve25519-sha256,test-only-kex-for-meta-sharing@example.org";
    let key = "meta_sharing_test_key";
    let digest = "0123456789abcdef0123456789abcdef";
    let one = || {
        let mut m = Meta::new();
        m.insert(key.into(), long.into());
        m.insert("meta_sharing_digest".into(), digest.into());
        m.insert("meta_sharing_short".into(), "short".into());
        m
    };
    let first = frozen(&one());
    assert_eq!(refs_of(long), None);
    assert_eq!(refs_of(key), None);
    let second = frozen(&one());
    let third = frozen(&one());
    assert_eq!(refs_of(long), Some(2));
    assert_eq!(refs_of(key), Some(2));
    assert_eq!(refs_of(digest), Some(2));
    assert_eq!(refs_of("short"), None);
    // The first copy holds the texts itself (the digest as 16 bytes), the others refer.
    assert!(first.frozen_len() > long.len() + 16);
    assert!(second.frozen_len() < 48);
    for m in [&first, &second, &third] {
        assert_eq!(m.to_meta(), one());
        assert!(m.contains_key(key) && m.contains_key("meta_sharing_short"));
        assert!(!m.contains_key(long));
    }
    let mut second = second;
    assert_eq!(second.take(), one());
    assert_eq!(refs_of(long), Some(1));
    drop(third);
    assert_eq!(refs_of(long), None);
    assert_eq!(refs_of(key), None);
    assert_eq!(first.to_meta(), one());
}

#[test]
fn facts_appended_to_a_frozen_map_hold_their_shared_texts_once() {
    // Texts no other test uses (the table is the process's).
    let long = "test-only-appended-text-for-meta-sharing@example.org";
    let key = "meta_append_test_key";
    let base = || {
        let mut m = Meta::new();
        m.insert("meta_append_base".into(), long.into());
        m
    };
    let (mut a, mut b) = (frozen(&base()), frozen(&base()));
    assert_eq!(refs_of(long), Some(1), "shared from the second sighting");
    a.insert_new(key.into(), long.into());
    b.insert(key.into(), json!([long, {"deep": long}]));
    // Counted once in the buffer (the tail holds the texts themselves until then).
    a.freeze();
    b.freeze();
    assert!(a.is_frozen() && b.is_frozen());
    assert_eq!(refs_of(long), Some(4));
    assert_eq!(refs_of(key), Some(1));
    let mut want = base();
    want.insert(key.into(), long.into());
    assert_eq!(a.to_meta(), want);
    // a's base holds the text itself (its first sighting), as a's key does.
    drop(a);
    assert_eq!(refs_of(long), Some(3));
    assert_eq!(refs_of(key), Some(1));
    drop(b);
    assert_eq!(refs_of(long), None);
    assert_eq!(refs_of(key), None);
    // A value nested past the bound thaws the map instead when the tail joins the buffer.
    let mut c = frozen(&base());
    let mut deep = json!(1);
    for _ in 0..=MAX_FROZEN_DEPTH {
        deep = json!([deep]);
    }
    c.insert_new("deep".into(), deep.clone());
    assert_eq!(c.value_of("deep").as_deref(), Some(&deep));
    c.freeze();
    assert!(!c.is_frozen());
    assert_eq!(c.get("deep"), Some(&deep));
}

#[test]
fn hex_texts_pack_to_bytes_and_come_back_the_same() {
    let mut m = Meta::new();
    for (i, text) in [
        "00ff10a0b0c0d0e0f0",
        "0123456789abcdeF01",
        "0123456789abcdef0",
        "0123456789abcde",
        "zz23456789abcdef01",
    ]
    .iter()
    .enumerate()
    {
        m.insert(format!("h{i}").into(), (*text).into());
    }
    let bytes = encode(&m, false).unwrap();
    assert_eq!(Reader::new(&bytes, None).map(0).unwrap(), m);
}

#[test]
fn a_cut_or_odd_buffer_never_panics() {
    let out = encode(&sample(), false).unwrap();
    for cut in 0..out.len() {
        let _ = decode(&out[..cut]);
        let _ = frozen_has_key(&out[..cut], "third");
    }
    for bad in [
        &[0xff_u8; 12][..],
        &[1, 0, 9],
        &[1, 1, b'a', 7, 0xff, 0xff, 0xff, 0x7f],
    ] {
        assert!(decode(bad).len() <= 1);
        let _ = frozen_has_key(bad, "a");
    }
}
