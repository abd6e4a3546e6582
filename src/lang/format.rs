//! printf formats: `"%-6d %s\n"` -> text pieces and conversions.
//!
//! The formatting itself happens in user space, from the values a probe sends;
//! this module only reads the format, so that the checker can match each
//! conversion with its argument and the formatter knows what to print.

/// What a conversion prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conv {
    /// `%d`, `%i`: a signed integer.
    Signed,
    /// `%u`: an unsigned integer.
    Unsigned,
    /// `%x`, `%X`: hexadecimal.
    Hex { upper: bool },
    /// `%p`: a pointer, as `0x...`.
    Pointer,
    /// `%c`: the character whose code is the value.
    Char,
    /// `%s`: a string (or a stack trace).
    Str,
}

/// A length modifier. The values are 64-bit; as in C (and bpftrace, which
/// hands them to C's printf), a conversion without `l`, `ll` or `z` prints the
/// low 32 bits (`%d` of 2^32 + 5 is 5), `h` 16 and `hh` 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    Default,
    /// `hh`
    Char,
    /// `h`
    Short,
    /// `l`
    Long,
    /// `ll`
    LongLong,
    /// `z`
    Size,
}

/// One conversion, `%-08.3lu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub conv: Conv,
    /// `-`: pad on the right.
    pub left: bool,
    /// `0`: pad numbers with zeros.
    pub zero: bool,
    /// `+`: a sign on positive numbers too.
    pub plus: bool,
    /// ` `: a space before positive numbers.
    pub space: bool,
    /// `#`: `0x` before hexadecimal.
    pub alt: bool,
    pub width: Option<u32>,
    pub precision: Option<u32>,
    pub length: Length,
    /// The conversion as written (`%-08.3lu`).
    pub text: String,
    /// Where it is, in characters of the decoded format: `start..end`.
    pub at: (usize, usize),
}

/// Text to print as is, or a conversion taking the next argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Spec(Spec),
}

/// Why a format is not valid: where (in characters of the decoded format) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub at: (usize, usize),
    pub message: String,
    pub help: Option<String>,
}

const CONVERSIONS_HELP: &str = "the conversions are %d %i %u %x %X %p %c %s, and %% for a percent sign";

/// Reads a format. `%%` becomes text.
pub fn parse_format(format: &str) -> Result<Vec<Piece>, FormatError> {
    let chars: Vec<char> = format.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            text.push(chars[i]);
            i += 1;
        } else if chars.get(i + 1) == Some(&'%') {
            text.push('%');
            i += 2;
        } else {
            let spec = conversion(&chars, i)?;
            i = spec.at.1;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Spec(spec));
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The conversions of a parsed format, in order.
pub fn specs(pieces: &[Piece]) -> impl Iterator<Item = &Spec> {
    pieces.iter().filter_map(|p| match p {
        Piece::Spec(s) => Some(s),
        Piece::Text(_) => None,
    })
}

/// The conversion starting at `chars[start] == '%'`.
fn conversion(chars: &[char], start: usize) -> Result<Spec, FormatError> {
    let mut i = start + 1;
    let mut spec = Spec {
        conv: Conv::Str,
        left: false,
        zero: false,
        plus: false,
        space: false,
        alt: false,
        width: None,
        precision: None,
        length: Length::Default,
        text: String::new(),
        at: (start, start),
    };
    while let Some(&c) = chars.get(i) {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            '#' => spec.alt = true,
            _ => break,
        }
        i += 1;
    }
    let err = |end: usize, message: String, help: Option<&str>| FormatError {
        at: (start, end.min(chars.len()).max(start + 1)),
        message,
        help: help.map(str::to_string),
    };
    if chars.get(i) == Some(&'*') {
        return Err(err(i + 1, "`*` widths are not supported: write the width as a number".into(), None));
    }
    spec.width = number(chars, &mut i);
    if chars.get(i) == Some(&'.') {
        i += 1;
        spec.precision = Some(number(chars, &mut i).unwrap_or(0));
    }
    spec.length = match (chars.get(i), chars.get(i + 1)) {
        (Some('h'), Some('h')) => Length::Char,
        (Some('h'), _) => Length::Short,
        (Some('l'), Some('l')) => Length::LongLong,
        (Some('l'), _) => Length::Long,
        (Some('z'), _) => Length::Size,
        _ => Length::Default,
    };
    i += match spec.length {
        Length::Default => 0,
        Length::Char | Length::LongLong => 2,
        _ => 1,
    };
    let Some(&c) = chars.get(i) else {
        let written: String = chars[start..].iter().collect();
        let message = if written == "%" {
            "the format ends with a lone `%`; write `%%` for a percent sign".to_string()
        } else {
            format!("the conversion `{written}` has no conversion letter at the end of the format")
        };
        return Err(err(chars.len(), message, Some(CONVERSIONS_HELP)));
    };
    spec.conv = match c {
        'd' | 'i' => Conv::Signed,
        'u' => Conv::Unsigned,
        'x' => Conv::Hex { upper: false },
        'X' => Conv::Hex { upper: true },
        'p' => Conv::Pointer,
        'c' => Conv::Char,
        's' => Conv::Str,
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 'a' | 'A' => {
            let text: String = chars[start..=i].iter().collect();
            return Err(err(
                i + 1,
                format!("`{text}` is not supported: BPF has no floating point, so there are no floating-point values"),
                None,
            ));
        }
        _ => {
            let text: String = chars[start..=i].iter().collect();
            let text = super::diag::escape(&text);
            return Err(err(
                i + 1,
                format!("unknown conversion `{text}` in the format"),
                Some(CONVERSIONS_HELP),
            ));
        }
    };
    i += 1;
    spec.text = chars[start..i].iter().collect();
    spec.at = (start, i);
    let integer = !matches!(spec.conv, Conv::Str | Conv::Char | Conv::Pointer);
    if spec.length != Length::Default && !integer {
        return Err(err(i, format!("a length modifier does not apply to `%{c}` (in `{}`)", spec.text), None));
    }
    Ok(spec)
}

fn number(chars: &[char], i: &mut usize) -> Option<u32> {
    let start = *i;
    while chars.get(*i).is_some_and(char::is_ascii_digit) {
        *i += 1;
    }
    let digits: String = chars[start..*i].iter().collect();
    // More than 9 digits would overflow; such widths are nonsense anyway.
    digits.get(..digits.len().min(9)).and_then(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convs(f: &str) -> Vec<(Conv, String)> {
        specs(&parse_format(f).unwrap()).map(|s| (s.conv, s.text.clone())).collect()
    }

    #[test]
    fn text_and_conversions_alternate() {
        let p = parse_format(".. enter open(%s)\n").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], Piece::Text(".. enter open(".into()));
        let Piece::Spec(s) = &p[1] else { panic!() };
        assert_eq!((s.conv, s.at, s.text.as_str()), (Conv::Str, (14, 16), "%s"));
        assert_eq!(p[2], Piece::Text(")\n".into()));
        assert_eq!(parse_format("100%% sure").unwrap(), vec![Piece::Text("100% sure".into())]);
        assert_eq!(parse_format("").unwrap(), vec![]);
    }

    #[test]
    fn every_conversion_the_lab_uses() {
        assert_eq!(
            convs("%s %d %i %u %x %X %lu %ld %llu %p %c"),
            [
                (Conv::Str, "%s"),
                (Conv::Signed, "%d"),
                (Conv::Signed, "%i"),
                (Conv::Unsigned, "%u"),
                (Conv::Hex { upper: false }, "%x"),
                (Conv::Hex { upper: true }, "%X"),
                (Conv::Unsigned, "%lu"),
                (Conv::Signed, "%ld"),
                (Conv::Unsigned, "%llu"),
                (Conv::Pointer, "%p"),
                (Conv::Char, "%c"),
            ]
            .map(|(c, t)| (c, t.to_string()))
        );
    }

    #[test]
    fn flags_width_precision_and_length() {
        let p = parse_format("%-08.3hhd|%#x|%16s|%.5s|%+ zd").unwrap();
        let s: Vec<&Spec> = specs(&p).collect();
        assert!(s[0].left && s[0].zero && !s[0].plus);
        assert_eq!((s[0].width, s[0].precision, s[0].length), (Some(8), Some(3), Length::Char));
        assert!(s[1].alt);
        assert_eq!((s[2].width, s[2].left), (Some(16), false));
        assert_eq!((s[3].width, s[3].precision), (None, Some(5)));
        assert!(s[4].plus && s[4].space);
        assert_eq!(s[4].length, Length::Size);
    }

    #[test]
    fn mistakes_point_at_the_conversion() {
        let e = parse_format("x %q y").unwrap_err();
        assert_eq!((e.at, e.message.as_str()), ((2, 4), "unknown conversion `%q` in the format"));
        let e = parse_format("50%").unwrap_err();
        assert_eq!(
            (e.at, e.message.as_str()),
            ((2, 3), "the format ends with a lone `%`; write `%%` for a percent sign")
        );
        let e = parse_format("%-5").unwrap_err();
        assert_eq!(e.message, "the conversion `%-5` has no conversion letter at the end of the format");
        assert_eq!(e.at, (0, 3));
        assert_eq!(parse_format("%*d").unwrap_err().at, (0, 2));
        assert!(parse_format("%f").unwrap_err().message.contains("no floating point"));
        assert_eq!(parse_format("100%\n").unwrap_err().message, "unknown conversion `%\\n` in the format");
        assert_eq!(
            parse_format("%ls").unwrap_err().message,
            "a length modifier does not apply to `%s` (in `%ls`)"
        );
    }
}
