//! The one JSON writer of the crate: every `--json` output goes through it,
//! so that every one is valid RFC 8259 text with the same layout.
//!
//! Layout: an object on one line (`{"key": value, "key": value}`); a list
//! of objects as `[`, one object per line indented by two spaces, `]`, then
//! a newline. Strings come from bytes: names and paths on Linux need not be
//! UTF-8, and JSON text must be, so a byte sequence that is not UTF-8
//! becomes U+FFFD (the loss is visible, never a broken document);
//! quotes, backslashes and every control character (U+0000-U+001F, U+007F)
//! are escaped, as are U+2028 and U+2029 (valid JSON, but not JavaScript).

use std::fmt::Write as _;

/// One JSON object, built key by key, written on one line.
#[derive(Debug, Default)]
pub struct Object {
    text: String,
}

impl Object {
    pub fn new() -> Self {
        Object::default()
    }

    fn key(&mut self, key: &str) -> &mut String {
        self.text
            .push_str(if self.text.is_empty() { "{" } else { ", " });
        string_into(&mut self.text, key.as_bytes());
        self.text.push_str(": ");
        &mut self.text
    }

    /// A string value, from any bytes.
    pub fn str(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        string_into(self.key(key), value.as_ref());
        self
    }

    /// A string value, or null.
    pub fn opt_str(self, key: &str, value: Option<impl AsRef<[u8]>>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    pub fn num(mut self, key: &str, value: impl Into<i128>) -> Self {
        let _ = write!(self.key(key), "{}", value.into());
        self
    }

    /// A number, or null.
    pub fn opt_num(self, key: &str, value: Option<impl Into<i128>>) -> Self {
        match value {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    pub fn null(mut self, key: &str) -> Self {
        self.key(key).push_str("null");
        self
    }

    /// An array of strings, on the object's line.
    pub fn strs<S: AsRef<[u8]>>(mut self, key: &str, values: impl IntoIterator<Item = S>) -> Self {
        let out = self.key(key);
        out.push('[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            string_into(out, v.as_ref());
        }
        out.push(']');
        self
    }

    /// The object's text, without a newline.
    pub fn finish(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push('}');
        self.text
    }
}

/// A list of objects, one per line, and a final newline.
pub fn list(objects: impl IntoIterator<Item = Object>) -> String {
    let mut out = String::from("[");
    let mut empty = true;
    for o in objects {
        out.push_str(if empty { "\n  " } else { ",\n  " });
        out.push_str(&o.finish());
        empty = false;
    }
    out.push_str(if empty { "]\n" } else { "\n]\n" });
    out
}

/// A JSON string literal of `bytes`.
pub fn string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    string_into(&mut out, bytes);
    out
}

fn string_into(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            string(b"a\"b\\c\n\t\x01\x7f"),
            "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\""
        );
        assert_eq!(string(b"\xff\xc3\xa9"), "\"\u{fffd}\u{e9}\"");
        assert_eq!(string("\u{2028}".as_bytes()), "\"\\u2028\"");
    }

    #[test]
    fn objects_and_lists() {
        let o = Object::new()
            .str("name", "g\"1")
            .num("ctx", 40_001u32)
            .opt_num("pid", None::<i32>)
            .bool("running", true)
            .strs("ips", ["127.0.0.1"]);
        assert_eq!(
            o.finish(),
            "{\"name\": \"g\\\"1\", \"ctx\": 40001, \"pid\": null, \"running\": true, \"ips\": [\"127.0.0.1\"]}"
        );
        assert_eq!(Object::new().finish(), "{}");
        assert_eq!(list([]), "[]\n");
        assert_eq!(
            list([Object::new().num("a", 1u8), Object::new().num("a", -2i64)]),
            "[\n  {\"a\": 1},\n  {\"a\": -2}\n]\n"
        );
    }
}
