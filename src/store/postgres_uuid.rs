//! PostgreSQL's `uuid` as mig sees it: text in the form PostgreSQL prints (lowercase hex,
//! hyphens after the 8th, 12th, 16th and 20th digit), sent and read as the 16 bytes of the
//! binary protocol.
//!
//! Text is the whole of it because that form sorts as the uuid does: PostgreSQL orders
//! uuids by their bytes, and the printed form is those bytes in hex at fixed places, so the
//! byte order of the text (eval's order, and `COLLATE "C"`'s) is the key's order. A walk by
//! a uuid key can then keep its checkpoint as text.

/// The 16 bytes of `text` read as PostgreSQL reads a uuid: 32 hex digits, either case,
/// optionally in braces, with a hyphen allowed after any group of four digits. None for
/// anything else, which PostgreSQL refuses too.
pub fn parse(text: &str) -> Option<[u8; 16]> {
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    let mut bytes = [0u8; 16];
    let mut digits = 0;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        let nibble = c.to_digit(16)? as u8;
        if digits == 32 {
            return None;
        }
        bytes[digits / 2] |= nibble << if digits % 2 == 0 { 4 } else { 0 };
        digits += 1;
        if digits % 4 == 0 && digits < 32 && chars.peek() == Some(&'-') {
            chars.next();
        }
    }
    (digits == 32).then_some(bytes)
}

/// `bytes` as PostgreSQL prints a uuid.
pub fn format(bytes: &[u8; 16]) -> String {
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// `text` in the form PostgreSQL prints, if it is a uuid PostgreSQL reads.
pub fn canonical(text: &str) -> Option<String> {
    parse(text).map(|bytes| format(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINTED: &str = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

    #[test]
    fn reads_every_spelling_postgresql_reads() {
        for spelling in [
            PRINTED,
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(canonical(spelling).as_deref(), Some(PRINTED), "{spelling}");
        }
    }

    #[test]
    fn refuses_what_postgresql_refuses() {
        for spelling in [
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert_eq!(parse(spelling), None, "{spelling:?}");
        }
    }

    #[test]
    fn printed_form_sorts_as_the_bytes_do() {
        let mut bytes: Vec<[u8; 16]> = (0u8..=255)
            .step_by(17)
            .map(|b| {
                let mut id = [0u8; 16];
                id[(b % 16) as usize] = b;
                id[15] = b.wrapping_mul(7);
                id
            })
            .collect();
        let mut texts: Vec<String> = bytes.iter().map(format).collect();
        bytes.sort();
        texts.sort();
        let reread: Vec<[u8; 16]> = texts.iter().map(|t| parse(t).unwrap()).collect();
        assert_eq!(reread, bytes);
    }
}
