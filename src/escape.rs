//! Text from the traced world, made safe to print: file names and string
//! arguments read by probes, command names, symbol and library names read from
//! ELF files, paths. Any of them may hold ESC (a file name that clears the
//! screen or sets the window title), newlines (a name that forges the next
//! line of the trace) or bytes that are not UTF-8. [`push`] is the one place
//! where such bytes become text; everything else calls it.
//!
//! The escapes are strace's (`strace -e trace=openat cat "$(printf 'a\033[2Jb\nc\377')"`
//! shows `"a\33[2Jb\nc\377"`):
//!
//! - `\\` for a backslash, so that an escape is never ambiguous (a file really
//!   named `a\n` shows as `a\\n`);
//! - `\t`, `\n`, `\v`, `\f`, `\r`;
//! - any other byte outside printable ASCII as octal with as few digits as it
//!   takes (`\33`, `\7`, `\177`, `\377`), or three when an octal digit follows
//!   (ESC then `1` is `\0331`, never `\331`).
//!
//! Printable ASCII is shown as it is. [`Style`] says what else is: strace
//! escapes every byte above 0x7f, and so does the lab's output and every
//! message; a script's `printf("%s")` keeps printable characters of valid
//! UTF-8 as bpftrace prints them, and escapes the rest.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

/// What is shown as it is, besides printable ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Nothing more: every byte above 0x7f is escaped, as strace does (the
    /// lab's lines, messages).
    Ascii,
    /// Printable characters of valid UTF-8 too (a script's `%s`, as bpftrace
    /// prints them). Still escaped: invalid UTF-8, C1 control characters
    /// (U+0080..U+009F, which some terminals obey as ESC sequences) and the
    /// invisible characters that reorder or hide text (bidirectional controls,
    /// zero-width characters).
    Utf8,
    /// As [`Style::Ascii`], and `"` as `\"`: the inside of a C string literal,
    /// as strace prints arguments (`--explain`).
    Quoted,
}

/// Appends `bytes` to `out`, escaped in `style`. The only function that turns
/// bytes from the traced world into text.
pub fn push(out: &mut String, bytes: &[u8], style: Style) {
    // Most strings need nothing: copied at once.
    let clean = bytes.iter().position(|&b| needs_escape(b, style)).unwrap_or(bytes.len());
    out.push_str(std::str::from_utf8(&bytes[..clean]).expect("printable ASCII"));
    let mut i = clean;
    while i < bytes.len() {
        let b = bytes[i];
        if b >= 0x80 && style == Style::Utf8 {
            if let Some((c, len)) = char_at(&bytes[i..]) {
                if shown_as_is(c) {
                    out.push(c);
                } else {
                    for k in i..i + len {
                        octal(out, bytes[k], bytes.get(k + 1).copied());
                    }
                }
                i += len;
                continue;
            }
        }
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' if style == Style::Quoted => out.push_str("\\\""),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => octal(out, b, bytes.get(i + 1).copied()),
        }
        i += 1;
    }
}

/// `bytes` escaped in [`Style::Ascii`]; borrowed when nothing needs escaping.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    escape_as(bytes, Style::Ascii)
}

/// `bytes` escaped in `style`; borrowed when nothing needs escaping.
pub fn escape_as(bytes: &[u8], style: Style) -> Cow<'_, str> {
    if bytes.iter().any(|&b| needs_escape(b, style)) {
        let mut out = String::with_capacity(bytes.len() + 8);
        push(&mut out, bytes, style);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(std::str::from_utf8(bytes).expect("printable ASCII"))
    }
}

/// A C string literal as strace prints one: `"a\"b\n"`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    push(&mut out, bytes, Style::Quoted);
    out.push('"');
    out
}

/// Shows bytes escaped in [`Style::Ascii`] where a `Display` is wanted:
/// `format!("{} is not executable", escape::path(p))`.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// A path, escaped (instead of `Path::display`, which passes control
/// characters through and replaces bytes that are not UTF-8).
pub fn path(p: &Path) -> Shown<'_> {
    Shown(p.as_os_str().as_encoded_bytes())
}

/// A name (a symbol, a library, a command), escaped.
pub fn text(s: &str) -> Shown<'_> {
    Shown(s.as_bytes())
}

/// Whether byte `b` cannot be copied as it is.
fn needs_escape(b: u8, style: Style) -> bool {
    !(0x20..=0x7e).contains(&b) || b == b'\\' || (b == b'"' && style == Style::Quoted)
}

/// `\NNN`: as few octal digits as the value takes, three when the next byte is
/// an octal digit (as strace writes them).
fn octal(out: &mut String, b: u8, next: Option<u8>) {
    out.push('\\');
    let three = next.is_some_and(|n| (b'0'..=b'7').contains(&n));
    if three || b >= 0o100 {
        out.push(char::from(b'0' + (b >> 6)));
    }
    if three || b >= 0o10 {
        out.push(char::from(b'0' + ((b >> 3) & 7)));
    }
    out.push(char::from(b'0' + (b & 7)));
}

/// The UTF-8 character that starts `bytes`, and its length; None when the
/// bytes there are not valid UTF-8.
fn char_at(bytes: &[u8]) -> Option<(char, usize)> {
    let len = match bytes[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(bytes.get(..len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}

/// Whether a character beyond ASCII is shown as it is in [`Style::Utf8`]: not
/// a control character, and none of the invisible characters that change how
/// a line reads (Unicode's bidirectional controls, zero-width characters, the
/// byte order mark, the soft hyphen, line and paragraph separators).
fn shown_as_is(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascii(b: &[u8]) -> String {
        let mut s = String::new();
        push(&mut s, b, Style::Ascii);
        s
    }

    fn utf8(b: &[u8]) -> String {
        let mut s = String::new();
        push(&mut s, b, Style::Utf8);
        s
    }

    #[test]
    fn as_strace_escapes_a_file_name() {
        // strace -e trace=openat cat "$(printf 'a\033[2Jb\nc\377\a\t"\\\x7f\xc3\xa9z')"
        // openat(AT_FDCWD, "a\33[2Jb\nc\377\7\t\"\\\177\303\251z", O_RDONLY)
        assert_eq!(
            quote(b"a\x1b[2Jb\nc\xff\x07\t\"\\\x7f\xc3\xa9z"),
            r#""a\33[2Jb\nc\377\7\t\"\\\177\303\251z""#
        );
        // strace: "v\vf\fr\r0\0010\0337\338\1779"
        assert_eq!(quote(b"v\x0bf\x0cr\r0\x010\x1b7\x1b8\x7f9"), r#""v\vf\fr\r0\0010\0337\338\1779""#);
    }

    #[test]
    fn printable_ascii_is_left_alone() {
        assert_eq!(ascii(b"output.txt"), "output.txt");
        assert!(matches!(escape(b"/tmp/fio/file-io"), Cow::Borrowed(_)));
        assert_eq!(ascii(b" ~!\"#$%&'()*+,-./:;<=>?@[]^_`{|}"), " ~!\"#$%&'()*+,-./:;<=>?@[]^_`{|}");
        assert_eq!(escape(b"say \"hi\""), "say \"hi\"", "quotes only need escaping inside quotes");
    }

    #[test]
    fn nothing_a_terminal_obeys_is_left() {
        let all: Vec<u8> = (1..=255).collect();
        for style in [Style::Ascii, Style::Utf8, Style::Quoted] {
            let mut s = String::new();
            push(&mut s, &all, style);
            assert!(s.bytes().all(|b| (0x20..0x7f).contains(&b)), "{style:?}: {s}");
        }
        assert_eq!(ascii(b"\x1b]0;owned\x07"), "\\33]0;owned\\7");
        assert_eq!(ascii(b"x\n.. exit open"), "x\\n.. exit open");
        assert_eq!(ascii(b"a\\nb"), "a\\\\nb", "a real backslash is told from an escape");
        assert_eq!(ascii(b"\0"), "\\0");
    }

    #[test]
    fn octal_takes_three_digits_before_a_digit() {
        assert_eq!(ascii(b"\x1b1"), "\\0331");
        assert_eq!(ascii(b"\x1b8"), "\\338");
        assert_eq!(ascii(b"\x01"), "\\1");
        assert_eq!(ascii(b"\x010"), "\\0010");
        assert_eq!(ascii(b"\xff7"), "\\3777");
    }

    #[test]
    fn utf8_keeps_printable_characters_only() {
        assert_eq!(utf8("café ✓ 日本".as_bytes()), "café ✓ 日本");
        assert_eq!(ascii("café".as_bytes()), "caf\\303\\251");
        // Invalid UTF-8: a lone byte, a cut character, an overlong form.
        assert_eq!(utf8(b"a\xffb"), "a\\377b");
        assert_eq!(utf8(b"\xc3"), "\\303");
        assert_eq!(utf8(b"\xc3("), "\\303(");
        assert_eq!(utf8(b"\xc0\xae"), "\\300\\256");
        // C1 CSI (U+009B), the right-to-left override, a zero-width space.
        assert_eq!(utf8("\u{9b}2J".as_bytes()), "\\302\\2332J");
        assert_eq!(utf8("\u{202e}txt.exe".as_bytes()), "\\342\\200\\256txt.exe");
        assert_eq!(utf8("a\u{200b}b".as_bytes()), "a\\342\\200\\213b");
        // Control characters and backslashes as in the other styles.
        assert_eq!(utf8(b"\x1b[2J\\"), "\\33[2J\\\\");
    }

    #[test]
    fn paths_and_names_display_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\x1b[2J\xff"));
        assert_eq!(format!("{} is not executable", path(p)), "/tmp/a\\33[2J\\377 is not executable");
        assert_eq!(text("ma\tin").to_string(), "ma\\tin");
    }
}
