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

/// `encode` for a borrowed value: the same bytes.
pub fn encode_view(value: ValueView<'_>, out: &mut Vec<u8>) {
    match value {
        ValueView::Null => out.push(0),
        ValueView::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueView::Real(r) => {
            out.push(2);
            out.extend_from_slice(&r.to_bits().to_le_bytes());
        }
        ValueView::Text(s) => {
            out.push(3);
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        ValueView::Blob(b) => {
            out.push(4);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
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

    /// The next value; an error names the byte where the damaged value starts.
    pub fn value(&mut self) -> Result<Value, DecodeError> {
        let at = self.at;
        self.next_value().map_err(|_| DecodeError(at))
    }

    fn next_value(&mut self) -> Result<Value, DecodeError> {
        let at = self.at;
        let tag = self.take(1)?[0];
        Ok(match tag {
            0 => Value::Null,
            1 => Value::Integer(i64::from_le_bytes(self.eight()?)),
            2 => Value::Real(f64::from_bits(u64::from_le_bytes(self.eight()?))),
            3 | 4 => {
                let len = usize::try_from(u64::from_le_bytes(self.eight()?))
                    .map_err(|_| DecodeError(at))?;
                let bytes = self.take(len)?;
                if tag == 3 {
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

    #[test]
    fn a_truncated_record_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        encode(&Value::Text("hello".into()), &mut bytes);
        bytes.truncate(6);
        assert_eq!(Decoder::new(&bytes).value(), Err(DecodeError(0)));
        assert_eq!(Decoder::new(&[9]).value(), Err(DecodeError(0)));
    }
}
