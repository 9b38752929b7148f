//! The writer against `serde_json`: the same bytes for every value.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use super::*;

fn ours<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = to_vec(&mut out, v) {
        panic!("not written: {e}");
    }
    out
}

fn theirs<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    match serde_json::to_vec(v) {
        Ok(v) => v,
        Err(e) => panic!("serde_json: {e}"),
    }
}

fn same<T: Serialize + ?Sized>(v: &T) {
    let (a, b) = (ours(v), theirs(v));
    assert_eq!(
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b),
        "bytes differ"
    );
}

#[test]
fn every_byte_that_is_escaped_and_the_runs_between() {
    // Each of the 128 ASCII characters alone, between runs of clean bytes
    // of every length around a word, and at both ends.
    for c in 0u8..0x80 {
        let c = char::from(c);
        for run in 0..18 {
            let clean = "x".repeat(run);
            for s in [
                format!("{c}"),
                format!("{clean}{c}"),
                format!("{c}{clean}"),
                format!("{clean}{c}{clean}{c}"),
            ] {
                same(&s);
            }
        }
    }
    assert_eq!(ours("a\"b\\c\n\u{1}\u{1f}\u{7f}é"), br#""a\"b\\c\n\u0001\u001f"#
        .iter()
        .chain("\u{7f}é\"".as_bytes())
        .copied()
        .collect::<Vec<u8>>());
    assert_eq!(ours("\u{8}\t\u{c}\r"), br#""\b\t\f\r""#.to_vec());
}

#[test]
fn multibyte_characters_are_written_as_they_are() {
    // Bytes 0x80-0xff never look like a quote, a backslash or a control
    // byte to the word test, whatever their neighbours.
    for s in [
        "WIN-J9D866ESIJ2",
        "Ñandú\"ü",
        "日本語\\テキスト\u{0}",
        "\u{10ffff}\u{fffd}\u{2028}\u{202e}",
        "ÀÀÀÀÀÀÀÀ\"",
    ] {
        same(&s);
    }
}

#[test]
fn numbers_and_the_other_shapes() {
    same(&json!({
        "u": u64::MAX, "i": i64::MIN, "z": 0, "f": 1.5, "g": 1e300, "h": -0.0,
        "t": true, "n": null, "a": [], "o": {}, "nested": [[1, {"k": "v"}], "s"],
    }));
    same(&(1u8, -2i16, 3u32, 4.25f32, 'q', "s", ()));
    same(&u128::MAX);
    same(&i128::MIN);
    same(&f64::NAN);
    same(&f32::INFINITY);
    same(&Some(7u16));
    same(&Option::<u8>::None);
    same(&serde_bytes_like(&[0, 1, 255]));
    let mut keys = BTreeMap::new();
    keys.insert(3u16, "three");
    keys.insert(10u16, "ten");
    same(&keys);
    let mut floats = BTreeMap::new();
    floats.insert(true, 1);
    same(&floats);
}

/// `serialize_bytes`, as a `&[u8]` newtype would call it.
fn serde_bytes_like(b: &[u8]) -> impl Serialize + '_ {
    struct B<'a>(&'a [u8]);
    impl Serialize for B<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    B(b)
}

#[derive(Serialize)]
enum Shape {
    Unit,
    Newtype(u8),
    Tuple(u8, &'static str),
    Struct { a: u8, b: Option<&'static str> },
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Wrapper(&'static str);

#[derive(Serialize)]
struct Pair(u8, u8);

#[test]
fn enums_and_structs_as_serde_json_writes_them() {
    same(&[
        Shape::Unit,
        Shape::Newtype(1),
        Shape::Tuple(2, "x\""),
        Shape::Struct { a: 3, b: None },
        Shape::Struct {
            a: 4,
            b: Some("\n"),
        },
    ]);
    same(&Unit);
    same(&Wrapper("w"));
    same(&Pair(1, 2));
    let mut m = BTreeMap::new();
    m.insert(Wrapper("k\t"), 1);
    same(&m);
    same(&BTreeMap::from([(2.5f64.to_bits(), 0)]));
    same(&BTreeMap::from([("unit", Shape::Unit)]));
    same(&Named {
        plain: 1,
        quoted: 2,
        control: 3,
    });
}

/// Field names written through the fast path, and ones that need escapes.
#[derive(Serialize)]
struct Named {
    plain: u8,
    #[serde(rename = "a\"b\\c")]
    quoted: u8,
    #[serde(rename = "line\nfeed and a longer name")]
    control: u8,
}

impl PartialEq for Wrapper {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Wrapper {}
impl PartialOrd for Wrapper {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Wrapper {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(o.0)
    }
}

#[test]
fn keys_serde_json_refuses_are_refused() {
    let mut m = BTreeMap::new();
    m.insert(vec![1u8], 1);
    let mut out = Vec::new();
    assert_eq!(
        to_vec(&mut out, &m),
        Err(Error("key must be a string".into()))
    );
    assert!(serde_json::to_vec(&m).is_err());
    let none_key = BTreeMap::from([(Option::<u8>::None, 0)]);
    assert!(to_vec(&mut Vec::new(), &none_key).is_err());
    assert!(serde_json::to_vec(&none_key).is_err());
    let nan_key = BTreeMap::from([(NanKey, 0)]);
    assert_eq!(
        to_vec(&mut Vec::new(), &nan_key),
        Err(Error("float key must be finite (got NaN or +/-inf)".into()))
    );
    assert!(serde_json::to_vec(&nan_key).is_err());
}

/// A key that serialises as a float NaN.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct NanKey;

impl Serialize for NanKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::NAN)
    }
}

/// A key that serialises as a finite float.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HalfKey;

impl Serialize for HalfKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f32(0.5)
    }
}

#[test]
fn float_keys_are_quoted() {
    same(&BTreeMap::from([(HalfKey, 1)]));
    assert_eq!(
        ours(&BTreeMap::from([(HalfKey, 1)])),
        br#"{"0.5":1}"#.to_vec()
    );
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x7f]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_value_is_written_as_serde_json_writes_it(v in value()) {
        let written = ours(&v);
        prop_assert_eq!(&written, &theirs(&v));
    }

    #[test]
    fn any_string_is_written_as_serde_json_writes_it(s in any::<String>(), ascii in "[\\x00-\\x7f]{0,70}") {
        prop_assert_eq!(ours(&s), theirs(&s));
        prop_assert_eq!(ours(&ascii), theirs(&ascii));
    }
}
