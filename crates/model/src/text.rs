//! Text the target chose: names, paths, arguments and log lines. Two rules hold for all of it.
//!
//! **JSON keeps the exact value.** Linux names are bytes, not UTF-8. A [`Text`] holds the value
//! as a string (invalid UTF-8 replaced by U+FFFD, which every consumer can use) and, only when
//! the bytes were not UTF-8, the bytes themselves. It serializes as a plain JSON string when
//! the bytes are UTF-8, and otherwise as `{"lossy": "<the string>", "hex": "<the bytes, two
//! lowercase hex digits each>"}`; `hex` is the value, `lossy` is for reading. Both forms load.
//!
//! **Text output escapes.** Nothing from the target reaches a terminal raw: [`escape`] (and
//! [`Text::escaped`], which sees the bytes) writes
//! - `\e` for ESC, `\a` BEL, `\b` BS, `\t` TAB, `\n` LF, `\r` CR, `\xNN` for the other C0
//!   controls and DEL, so no escape sequence is started and no row or header is broken;
//! - `\u{NN}` for the C1 controls U+0080–U+009F (U+009B is a CSI to many terminals);
//! - `\u{NNNN}` for characters that reorder or split what is shown: the bidi overrides and
//!   isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E, U+200F, U+061C, and the line
//!   and paragraph separators U+2028, U+2029;
//! - `\xNN` for each byte of invalid UTF-8.
//!
//! Everything else, the backslash included, is shown as it is: escaping is idempotent, so a
//! sentence that embeds an escaped name can be escaped again unchanged. The escaped form is for
//! a person; it is not reversible (a name may contain the characters `\e` itself): the JSON has
//! the exact value. [`escape_cut`] also bounds a value, ending a cut one with `…[N bytes cut]`.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// A target-controlled string, kept exactly (see the module documentation).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text {
    lossy: String,
    /// The bytes as read, only when they are not valid UTF-8.
    raw: Option<Box<[u8]>>,
}

impl Text {
    /// From bytes as read from the kernel.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Text {
        match String::from_utf8(bytes.into()) {
            Ok(lossy) => Text { lossy, raw: None },
            Err(e) => {
                let raw = e.into_bytes();
                Text {
                    lossy: String::from_utf8_lossy(&raw).into_owned(),
                    raw: Some(raw.into_boxed_slice()),
                }
            }
        }
    }

    /// The value as a string, invalid UTF-8 replaced by U+FFFD.
    pub fn as_str(&self) -> &str {
        &self.lossy
    }

    /// The exact bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(self.lossy.as_bytes())
    }

    /// Whether the bytes were valid UTF-8 (then `as_str` is exact).
    pub fn is_utf8(&self) -> bool {
        self.raw.is_none()
    }

    /// The value for text output; see the module documentation.
    pub fn escaped(&self) -> Cow<'_, str> {
        match &self.raw {
            None => escape(&self.lossy),
            Some(raw) => Cow::Owned(escape_bytes_cut(raw, usize::MAX)),
        }
    }

    /// `escaped`, at most `max` characters plus the cut marker.
    pub fn escaped_cut(&self, max: usize) -> String {
        escape_bytes_cut(self.as_bytes(), max)
    }

    /// Appends bytes, e.g. to build a path from a directory and a name.
    pub fn push_str(&mut self, s: &str) {
        match &mut self.raw {
            None => self.lossy.push_str(s),
            Some(raw) => {
                let mut v = std::mem::take(raw).into_vec();
                v.extend_from_slice(s.as_bytes());
                *self = Text::from_bytes(v);
            }
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.lossy
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.lossy
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.lossy
    }
}

/// The string, with `\xNN` for each byte that is not UTF-8 (where `as_str` has U+FFFD), and
/// controls as they are: a sentence that names the value (a finding's summary) shows the same
/// bytes as the value once text output escapes the sentence.
impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(raw) = &self.raw else {
            return f.write_str(&self.lossy);
        };
        for chunk in raw.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raw {
            None => fmt::Debug::fmt(&self.lossy, f),
            Some(raw) => write!(f, "Text({:?}, hex {})", self.lossy, hex::encode(raw)),
        }
    }
}

impl From<String> for Text {
    fn from(lossy: String) -> Text {
        Text { lossy, raw: None }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::from(s.to_string())
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::from(s.clone())
    }
}

impl From<Cow<'_, str>> for Text {
    fn from(s: Cow<'_, str>) -> Text {
        Text::from(s.into_owned())
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.lossy
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.lossy == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.lossy == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        &self.lossy == other
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.lossy
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.lossy
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        *self == other.lossy
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        match &self.raw {
            None => s.serialize_str(&self.lossy),
            Some(raw) => {
                let mut st = s.serialize_struct("Text", 2)?;
                st.serialize_field("lossy", &self.lossy)?;
                st.serialize_field("hex", &hex::encode(raw))?;
                st.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or an object with \"hex\" (and \"lossy\")")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::from(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text::from(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                let mut hex_text: Option<String> = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "hex" {
                        hex_text = Some(map.next_value()?);
                    } else {
                        // "lossy" is derived from the bytes; unknown keys are ignored like
                        // unknown fields elsewhere.
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                let hex_text = hex_text.ok_or_else(|| serde::de::Error::missing_field("hex"))?;
                let bytes = hex::decode(hex_text.as_bytes())
                    .map_err(|e| serde::de::Error::custom(format!("text \"hex\": {e}")))?;
                Ok(Text::from_bytes(bytes))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A name, path, argument or log text as the target had it: a string \
                when its bytes are UTF-8, else an object whose `hex` holds the exact bytes (two \
                lowercase hex digits each) and `lossy` the string with U+FFFD for invalid UTF-8 \
                (the object form since 1.4).",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": {
                        "lossy": {
                            "description": "The bytes as a string, each invalid UTF-8 sequence \
                                replaced by U+FFFD: for reading only, recomputed from `hex` on \
                                load (since 1.4).",
                            "type": "string"
                        },
                        "hex": {
                            "description": "The exact bytes, two lowercase hex digits each \
                                (since 1.4).",
                            "type": "string",
                            "pattern": "^([0-9a-f]{2})*$"
                        }
                    },
                    "required": ["hex"]
                }
            ]
        })
    }
}

/// Whether `c` is shown as an escape rather than as itself.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x1b' => out.push_str("\\e"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\0'..='\x1f' | '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` with every control and reordering character escaped; borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// `escape`, except that line feeds are kept: for messages whose lines hangscope itself
/// composed (on stderr) with values escaped where they were put in.
pub fn escape_keep_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// `escape(s)`, at most `max` characters of it; a longer value is cut and ends with
/// `…[N bytes cut]`, N counting the bytes of `s` not shown.
pub fn escape_cut(s: &str, max: usize) -> String {
    escape_bytes_cut(s.as_bytes(), max)
}

fn escape_bytes_cut(bytes: &[u8], max: usize) -> String {
    // Nearly every value: short, UTF-8, nothing to escape.
    if bytes.len() <= max
        && let Ok(s) = std::str::from_utf8(bytes)
        && !s.chars().any(needs_escape)
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(bytes.len().min(max.saturating_add(32)));
    let mut shown = 0usize;
    let mut pos = 0usize;
    let cut = |out: &mut String, pos: usize| {
        let n = bytes.len() - pos;
        let _ = write!(out, "…[{n} byte{} cut]", if n == 1 { "" } else { "s" });
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let before = out.len();
            push_escaped(&mut out, c);
            let added = out[before..].chars().count();
            if shown + added > max {
                out.truncate(before);
                cut(&mut out, pos);
                return out;
            }
            shown += added;
            pos += c.len_utf8();
        }
        for b in chunk.invalid() {
            if shown + 4 > max {
                cut(&mut out, pos);
                return out;
            }
            let _ = write!(out, "\\x{b:02x}");
            shown += 4;
            pos += 1;
        }
    }
    out
}

/// Escaping for anything that holds text: `Text` sees its exact bytes, a `str` its characters.
pub trait Escape {
    fn escaped(&self) -> Cow<'_, str>;
    fn escaped_cut(&self, max: usize) -> String;
}

impl Escape for str {
    fn escaped(&self) -> Cow<'_, str> {
        escape(self)
    }
    fn escaped_cut(&self, max: usize) -> String {
        escape_cut(self, max)
    }
}

impl Escape for String {
    fn escaped(&self) -> Cow<'_, str> {
        escape(self)
    }
    fn escaped_cut(&self, max: usize) -> String {
        escape_cut(self, max)
    }
}

impl Escape for Text {
    fn escaped(&self) -> Cow<'_, str> {
        Text::escaped(self)
    }
    fn escaped_cut(&self, max: usize) -> String {
        Text::escaped_cut(self, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_c1_bidi_and_keeps_the_rest() {
        assert_eq!(escape("zbs-metad"), Cow::Borrowed("zbs-metad"));
        assert_eq!(escape("\x1b]0;pwned\x07"), "\\e]0;pwned\\a");
        assert_eq!(escape("a\nb\tc\rd\x01\x7f"), "a\\nb\\tc\\rd\\x01\\x7f");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("x\u{202e}y\u{2066}"), "x\\u{202e}y\\u{2066}");
        assert_eq!(escape("é → ▶ 日本"), "é → ▶ 日本");
        // Idempotent: an escaped name inside a sentence survives a second pass unchanged.
        let once = escape("\x1b[31m\n").into_owned();
        assert_eq!(escape(&once), once);
        assert_eq!(escape_keep_lines("a\x1b\nb"), "a\\e\nb");
    }

    #[test]
    fn invalid_utf8_is_shown_as_bytes_and_kept_exactly() {
        let t = Text::from_bytes(b"log\xff\xfe\x1b.txt".to_vec());
        assert!(!t.is_utf8());
        assert_eq!(t.as_str(), "log\u{fffd}\u{fffd}\u{1b}.txt");
        assert_eq!(t.escaped(), "log\\xff\\xfe\\e.txt");
        // A sentence naming it, escaped as a whole, shows the same.
        assert_eq!(escape(&format!("in {t}")), "in log\\xff\\xfe\\e.txt");
        assert_eq!(t.as_bytes(), b"log\xff\xfe\x1b.txt");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            "{\"lossy\":\"log\u{fffd}\u{fffd}\\u001b.txt\",\"hex\":\"6c6f67fffe1b2e747874\"}"
        );
        let back: Text = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.as_bytes(), t.as_bytes());
    }

    #[test]
    fn utf8_is_a_plain_string_both_ways() {
        let t = Text::from_bytes("a\x1bb".as_bytes());
        assert!(t.is_utf8());
        assert_eq!(serde_json::to_string(&t).unwrap(), r#""a\u001bb""#);
        let back: Text = serde_json::from_str(r#""a\u001bb""#).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Text>(r#"{"lossy":"x"}"#).is_err());
        assert!(serde_json::from_str::<Text>(r#"{"hex":"zz"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<Text>(r#"{"hex":"6869"}"#).unwrap(),
            "hi"
        );
    }

    #[test]
    fn cuts_long_values_with_a_marker() {
        let long = "a".repeat(1_000_000);
        let shown = escape_cut(&long, 100);
        assert_eq!(shown, format!("{}…[999900 bytes cut]", "a".repeat(100)));
        assert_eq!(escape_cut("short", 100), "short");
        // An escape is never split.
        assert_eq!(escape_cut("ab\x1bcd", 3), "ab…[3 bytes cut]");
        let t = Text::from_bytes(b"\xff\xff\xff".to_vec());
        assert_eq!(t.escaped_cut(8), "\\xff\\xff…[1 byte cut]");
    }
}
