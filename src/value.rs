//! A database value as the interpreter and the stores exchange it. Booleans are the
//! integers 1 and 0, as in SQLite; a store with a real boolean type converts at its edge.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn from_bool(b: bool) -> Value {
        Value::Integer(i64::from(b))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a JSON value, for node replies and status output.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Real(r) => serde_json::Value::from(*r),
            Value::Text(s) => serde_json::Value::from(s.as_str()),
            Value::Blob(b) => {
                serde_json::Value::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Blob(b) => write!(
                f,
                "x'{}'",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        }
    }
}

/// FNV-1a, 64 bits: a stable hash (unlike std's) for spec hashes and table checksums.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Hashes a value with its type, so `1`, `1.0` and `'1'` differ.
    pub fn write_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.write(&[0]),
            Value::Integer(i) => {
                self.write(&[1]);
                self.write(&i.to_le_bytes());
            }
            Value::Real(r) => {
                self.write(&[2]);
                self.write(&r.to_bits().to_le_bytes());
            }
            Value::Text(s) => {
                self.write(&[3]);
                self.write(&(s.len() as u64).to_le_bytes());
                self.write(s.as_bytes());
            }
            Value::Blob(b) => {
                self.write(&[4]);
                self.write(&(b.len() as u64).to_le_bytes());
                self.write(b);
            }
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("backup record is damaged at byte {0}")]
pub struct DecodeError(pub usize);

/// Appends `value` to `out` in a compact form that keeps its exact type, for backup records.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    encode_view(value.view(), out);
}

/// A value borrowed from wherever it lives (a `Value`, a database's own buffer), so it can be
/// encoded without being copied into a `Value` first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueView<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Value {
    pub fn view(&self) -> ValueView<'_> {
        match self {
            Value::Null => ValueView::Null,
            Value::Integer(i) => ValueView::Integer(*i),
            Value::Real(r) => ValueView::Real(*r),
            Value::Text(s) => ValueView::Text(s),
            Value::Blob(b) => ValueView::Blob(b),
        }
    }
}

/// The type tags of encoded values. Not 0 to 4, the tags of the first backup format (fixed
/// eight-byte integers and lengths), so a record in that format is refused as damaged rather
/// than misread.
const NULL: u8 = 0x10;
const INTEGER: u8 = 0x11;
const REAL: u8 = 0x12;
const TEXT: u8 = 0x13;
const BLOB: u8 = 0x14;

/// `encode` for a borrowed value: the same bytes. Integers and lengths are varints (7 bits a
/// byte, integers zigzagged first), so a typical key or short text costs a few bytes instead
/// of nine: the backup is the largest write a batch makes after the table's own.
pub fn encode_view(value: ValueView<'_>, out: &mut Vec<u8>) {
    match value {
        ValueView::Null => out.push(NULL),
        ValueView::Integer(i) => {
            out.push(INTEGER);
            varint(((i << 1) ^ (i >> 63)) as u64, out);
        }
        ValueView::Real(r) => {
            out.push(REAL);
            out.extend_from_slice(&r.to_bits().to_le_bytes());
        }
        ValueView::Text(s) => {
            out.push(TEXT);
            varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        ValueView::Blob(b) => {
            out.push(BLOB);
            varint(b.len() as u64, out);
            out.extend_from_slice(b);
        }
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads back what `encode` wrote, value after value.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes, at: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn eight(&mut self) -> Result<[u8; 8], DecodeError> {
        let at = self.at;
        self.take(8)?.try_into().map_err(|_| DecodeError(at))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let at = self.at;
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError(at));
            }
            n |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError(at))
    }

    /// The next value; an error names the byte where the damaged value starts.
    pub fn value(&mut self) -> Result<Value, DecodeError> {
        let at = self.at;
        self.next_value().map_err(|_| DecodeError(at))
    }

    fn next_value(&mut self) -> Result<Value, DecodeError> {
        let at = self.at;
        let tag = self.take(1)?[0];
        Ok(match tag {
            NULL => Value::Null,
            INTEGER => {
                let n = self.varint()?;
                Value::Integer(((n >> 1) as i64) ^ -((n & 1) as i64))
            }
            REAL => Value::Real(f64::from_bits(u64::from_le_bytes(self.eight()?))),
            TEXT | BLOB => {
                let len = usize::try_from(self.varint()?).map_err(|_| DecodeError(at))?;
                let bytes = self.take(len)?;
                if tag == TEXT {
                    Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError(at))?)
                } else {
                    Value::Blob(bytes.to_vec())
                }
            }
            _ => return Err(DecodeError(at)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_every_type_exactly() {
        let values = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Real(-0.0),
            Value::Real(1.0),
            Value::Text("Zoë ''".into()),
            Value::Blob(vec![0, 255]),
        ];
        let mut bytes = Vec::new();
        values.iter().for_each(|v| encode(v, &mut bytes));
        let mut decoder = Decoder::new(&bytes);
        let mut back = Vec::new();
        while !decoder.is_done() {
            back.push(decoder.value().unwrap());
        }
        assert_eq!(back.len(), values.len());
        for (a, b) in values.iter().zip(&back) {
            let (mut ha, mut hb) = (Fnv::default(), Fnv::default());
            ha.write_value(a);
            hb.write_value(b);
            assert_eq!(ha.finish(), hb.finish(), "{a:?} vs {b:?}");
        }
    }

    fn round_trip(value: &Value) -> (Value, usize) {
        let mut bytes = Vec::new();
        encode(value, &mut bytes);
        let mut decoder = Decoder::new(&bytes);
        let back = decoder.value().unwrap();
        assert!(decoder.is_done(), "{value:?} left bytes over");
        (back, bytes.len())
    }

    proptest::proptest! {
        #[test]
        fn every_integer_text_and_blob_round_trips(
            i in proptest::num::i64::ANY,
            text in ".{0,40}",
            blob in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            proptest::prop_assert_eq!(round_trip(&Value::Integer(i)).0, Value::Integer(i));
            proptest::prop_assert_eq!(round_trip(&Value::Text(text.clone())).0, Value::Text(text));
            proptest::prop_assert_eq!(round_trip(&Value::Blob(blob.clone())).0, Value::Blob(blob));
        }
    }

    #[test]
    fn small_integers_and_short_texts_take_a_few_bytes() {
        assert_eq!(round_trip(&Value::Integer(63)).1, 2);
        assert_eq!(round_trip(&Value::Integer(-64)).1, 2);
        assert_eq!(round_trip(&Value::Integer(1_000_000)).1, 4);
        assert_eq!(round_trip(&Value::Integer(i64::MIN)).1, 11);
        assert_eq!(round_trip(&Value::Text("Ada Lovelace".into())).1, 14);
    }

    #[test]
    fn a_record_of_the_first_format_or_an_overlong_varint_is_refused() {
        let first_format_text = [3, 2, 0, 0, 0, 0, 0, 0, 0, b'h', b'i'];
        assert_eq!(
            Decoder::new(&first_format_text).value(),
            Err(DecodeError(0))
        );
        let overlong = [
            INTEGER, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert_eq!(Decoder::new(&overlong).value(), Err(DecodeError(0)));
    }

    #[test]
    fn a_truncated_record_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        encode(&Value::Text("hello".into()), &mut bytes);
        bytes.truncate(6);
        assert_eq!(Decoder::new(&bytes).value(), Err(DecodeError(0)));
        assert_eq!(Decoder::new(&[9]).value(), Err(DecodeError(0)));
    }
}
