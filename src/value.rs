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
