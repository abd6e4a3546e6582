//! Program text -> tokens.
//!
//! Probe names are read whole, as bpftrace does: outside any `{ }` block, a word
//! such as `uprobe:./file-io:native` or `tracepoint:syscalls:sys_enter_open` is one
//! [`Tok::Probe`] token split at its colons, because paths and wildcards
//! (`./file-io`, `sys_enter_*`) are not made of ordinary tokens. Everything else
//! (predicates and blocks) is ordinary C-like tokens.

use super::ast::BinOp;
use super::diag::Diagnostic;
use super::source::Span;

/// One colon-separated part of a probe name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub span: Span,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A probe name, split at its colons: `kprobe:vfs_open` -> [`kprobe`, `vfs_open`].
    Probe(Vec<Segment>),
    Ident(String),
    /// `$name` (without the `$`).
    Var(String),
    /// `@name` (without the `@`; empty for the bare `@`).
    Map(String),
    Int(u64),
    /// A string literal, escapes decoded.
    Str(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Semi,
    Comma,
    Dot,
    /// `->`
    Arrow,
    Question,
    Colon,
    Bang,
    Tilde,
    /// A binary operator: `+ - * / % & | ^ << >> == != < <= > >= && ||`.
    Op(BinOp),
    /// `=`
    Assign,
    /// `+=`, `-=`, ...
    OpAssign(BinOp),
    /// `++`
    Incr,
    /// `--`
    Decr,
    Eof,
}

impl Tok {
    /// How a message names the token: `` `;` ``, `end of input`, ...
    pub fn describe(&self) -> String {
        match self {
            Tok::Probe(segs) => {
                let text: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
                format!("`{}`", text.join(":"))
            }
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Var(s) => format!("`${s}`"),
            Tok::Map(s) => format!("`@{s}`"),
            Tok::Int(n) => format!("`{n}`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Eof => "the end of the program".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    /// The text of a punctuation or operator token.
    pub fn symbol(&self) -> &'static str {
        match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Semi => ";",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Arrow => "->",
            Tok::Question => "?",
            Tok::Colon => ":",
            Tok::Bang => "!",
            Tok::Tilde => "~",
            Tok::Op(op) => op.symbol(),
            Tok::Assign => "=",
            Tok::OpAssign(op) => match op {
                BinOp::Add => "+=",
                BinOp::Sub => "-=",
                BinOp::Mul => "*=",
                BinOp::Div => "/=",
                BinOp::Rem => "%=",
                BinOp::BitAnd => "&=",
                BinOp::BitOr => "|=",
                BinOp::BitXor => "^=",
                BinOp::Shl => "<<=",
                _ => ">>=",
            },
            Tok::Incr => "++",
            Tok::Decr => "--",
            _ => "",
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Where the lexer is in the program's structure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Outside any block, where a probe name comes next.
    Probe,
    /// Just after a probe name: a `,` brings another.
    AfterProbe,
    /// Predicates and blocks.
    Code,
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    mode: Mode,
    depth: usize,
    tokens: Vec<Token>,
}

/// Splits a program into tokens; the last is [`Tok::Eof`], placed just after the
/// last real token. A `#!` first line is skipped.
pub fn lex(text: &str) -> Result<Vec<Token>, Diagnostic> {
    let mut lx = Lexer { text, pos: 0, mode: Mode::Probe, depth: 0, tokens: Vec::new() };
    if text.starts_with("#!") {
        lx.pos = text.find('\n').unwrap_or(text.len());
    }
    loop {
        lx.skip_blanks()?;
        let Some(c) = lx.peek() else { break };
        let start = lx.pos;
        let tok = match lx.mode {
            Mode::Probe if c.is_ascii_alphabetic() || c == '_' => {
                lx.mode = Mode::AfterProbe;
                Tok::Probe(lx.probe()?)
            }
            Mode::AfterProbe if c == ',' => {
                lx.pos += 1;
                lx.mode = Mode::Probe;
                Tok::Comma
            }
            _ => {
                lx.mode = Mode::Code;
                lx.code_token(c)?
            }
        };
        match tok {
            Tok::LBrace => lx.depth += 1,
            Tok::RBrace => {
                lx.depth = lx.depth.saturating_sub(1);
                if lx.depth == 0 {
                    lx.mode = Mode::Probe;
                }
            }
            _ => {}
        }
        lx.tokens.push(Token { tok, span: Span::new(start, lx.pos) });
    }
    let end = lx.tokens.last().map_or(0, |t| t.span.end);
    lx.tokens.push(Token { tok: Tok::Eof, span: Span::at(end) });
    Ok(lx.tokens)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Probe types whose second part is a file path, which may contain `/`.
const PATH_PROVIDERS: [&str; 6] = ["uprobe", "u", "uretprobe", "ur", "usdt", "U"];

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips white space and comments.
    fn skip_blanks(&mut self) -> Result<(), Diagnostic> {
        loop {
            let rest = self.rest();
            if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                match body.find("*/") {
                    Some(end) => self.pos += end + 4,
                    None => {
                        return Err(Diagnostic::error(
                            Span::new(self.pos, self.pos + 2),
                            "unterminated comment: this `/*` has no closing `*/`",
                        ))
                    }
                }
            } else if self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            } else {
                return Ok(());
            }
        }
    }

    /// A probe name, `provider[:part]...`; parts may be quoted (`"/a path"`).
    fn probe(&mut self) -> Result<Vec<Segment>, Diagnostic> {
        let mut segs = vec![self.segment(is_ident_char)];
        while self.peek() == Some(':') {
            self.bump();
            if self.peek() == Some('"') {
                segs.push(self.quoted_segment()?);
                continue;
            }
            let path = segs.len() == 1 && PATH_PROVIDERS.contains(&segs[0].text.as_str());
            segs.push(
                self.segment(|c| !(c.is_whitespace() || ",{}:\"();".contains(c) || (c == '/' && !path))),
            );
        }
        Ok(segs)
    }

    fn segment(&mut self, keep: impl Fn(char) -> bool) -> Segment {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        Segment { text: self.text[start..self.pos].to_string(), span: Span::new(start, self.pos) }
    }

    fn quoted_segment(&mut self) -> Result<Segment, Diagnostic> {
        let start = self.pos;
        self.bump();
        let rest = self.rest();
        match rest.find(['"', '\n']) {
            Some(end) if rest[end..].starts_with('"') => {
                let text = rest[..end].to_string();
                self.pos += end + 1;
                Ok(Segment { text, span: Span::new(start + 1, self.pos - 1) })
            }
            _ => Err(unterminated(start, self.text)),
        }
    }

    fn code_token(&mut self, c: char) -> Result<Tok, Diagnostic> {
        if c.is_ascii_digit() {
            return self.number();
        }
        if is_ident_char(c) {
            return Ok(Tok::Ident(self.word()));
        }
        let start = self.pos;
        match c {
            '"' => return self.string(),
            '$' | '@' => {
                self.bump();
                let name = self.word();
                if c == '$' && name.is_empty() && self.peek() != Some('#') {
                    return Err(Diagnostic::error(
                        Span::new(start, start + 1),
                        "`$` must be followed by a variable name, as in `$count`",
                    ));
                }
                if c == '$' && name.is_empty() {
                    self.bump();
                    return Ok(Tok::Var("#".into()));
                }
                return Ok(if c == '$' { Tok::Var(name) } else { Tok::Map(name) });
            }
            '\'' => {
                return Err(Diagnostic::error(
                    Span::new(start, start + 1),
                    "strings are written in double quotes: \"...\", not '...'",
                ))
            }
            '#' => {
                let end =
                    self.rest().find(|c: char| c.is_whitespace()).map_or(self.text.len(), |e| start + e);
                return Err(Diagnostic::error(
                    Span::new(start, end),
                    format!("`{}` is not supported: trace has no C preprocessor", &self.text[start..end]),
                ));
            }
            _ => {}
        }
        if let Some((tok, len)) = punct(self.rest()) {
            self.pos += len;
            return Ok(tok);
        }
        Err(Diagnostic::error(
            Span::new(start, start + c.len_utf8()),
            format!("unexpected character `{c}` in the program"),
        ))
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_char) {
            self.bump();
        }
        self.text[start..self.pos].to_string()
    }

    /// Decimal, `0x` hex or `0` octal, with `_` separators.
    fn number(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.pos;
        let word = self.word();
        let span = Span::new(start, self.pos);
        let digits = word.replace('_', "");
        let (radix, body) = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
            (16, hex)
        } else if digits.len() > 1 && digits.starts_with('0') {
            (8, &digits[1..])
        } else {
            (10, digits.as_str())
        };
        match u64::from_str_radix(body, radix) {
            Ok(n) => Ok(Tok::Int(n)),
            Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
                Err(Diagnostic::error(span, format!("the number `{word}` does not fit in 64 bits")))
            }
            Err(_) => Err(Diagnostic::error(span, format!("`{word}` is not a number"))
                .help("numbers are decimal (42), hexadecimal (0x2a) or octal (052)")),
        }
    }

    fn string(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.pos;
        self.bump();
        let body_start = self.pos;
        loop {
            match self.bump() {
                None | Some('\n') => return Err(unterminated(start, self.text)),
                Some('\\') => {
                    self.bump();
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        let raw = &self.text[body_start..self.pos - 1];
        match decode_string(raw) {
            Ok(chars) => Ok(Tok::Str(chars.into_iter().map(|(c, _)| c).collect())),
            Err((at, len, msg)) => {
                Err(Diagnostic::error(Span::new(body_start + at, body_start + at + len), msg)
                    .help("the escapes are \\n \\t \\r \\\\ \\\" \\0NN (octal) and \\xNN (hex)"))
            }
        }
    }
}

fn unterminated(start: usize, text: &str) -> Diagnostic {
    let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
    Diagnostic::error(Span::new(start, end), "unterminated string: this `\"` has no closing `\"` on its line")
        .help("a string ends on the line it starts; write a newline as \\n")
}

/// Decodes the body of a string literal (between its quotes). Each character
/// comes with the byte offset in `raw` of the text that wrote it, so that a
/// message about part of a printf format can point at it. An error gives the
/// offset and length of the bad escape, and a message.
pub fn decode_string(raw: &str) -> Result<Vec<(char, usize)>, (usize, usize, String)> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.char_indices().peekable();
    while let Some((at, c)) = it.next() {
        if c != '\\' {
            out.push((c, at));
            continue;
        }
        let Some((_, e)) = it.next() else {
            return Err((at, 1, "a string cannot end with a lone `\\`".into()));
        };
        let simple = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(s) = simple {
            out.push((s, at));
            continue;
        }
        let (radix, max) = match e {
            'x' => (16, 2),
            '0'..='7' => (8, 3),
            _ => return Err((at, 1 + e.len_utf8(), format!("unknown escape `\\{e}` in a string"))),
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(e);
        }
        while digits.len() < max {
            match it.peek() {
                Some(&(_, d)) if d.is_digit(radix) => {
                    digits.push(d);
                    it.next();
                }
                _ => break,
            }
        }
        let value = u32::from_str_radix(&digits, radix).ok().filter(|&v| v < 0x80);
        match value {
            Some(v) => out.push((char::from(v as u8), at)),
            None => {
                let len = 1 + digits.len() + usize::from(radix == 16);
                return Err((at, len, "this escape is not an ASCII character (0 to 0x7f)".into()));
            }
        }
    }
    Ok(out)
}

/// The operator or punctuation at the start of `rest`, longest first.
fn punct(rest: &str) -> Option<(Tok, usize)> {
    const THREE: [(&str, Tok); 2] = [("<<=", Tok::OpAssign(BinOp::Shl)), (">>=", Tok::OpAssign(BinOp::Shr))];
    const TWO: [(&str, Tok); 18] = [
        ("->", Tok::Arrow),
        ("++", Tok::Incr),
        ("--", Tok::Decr),
        ("<<", Tok::Op(BinOp::Shl)),
        (">>", Tok::Op(BinOp::Shr)),
        ("==", Tok::Op(BinOp::Eq)),
        ("!=", Tok::Op(BinOp::Ne)),
        ("<=", Tok::Op(BinOp::Le)),
        (">=", Tok::Op(BinOp::Ge)),
        ("&&", Tok::Op(BinOp::And)),
        ("||", Tok::Op(BinOp::Or)),
        ("+=", Tok::OpAssign(BinOp::Add)),
        ("-=", Tok::OpAssign(BinOp::Sub)),
        ("*=", Tok::OpAssign(BinOp::Mul)),
        ("/=", Tok::OpAssign(BinOp::Div)),
        ("%=", Tok::OpAssign(BinOp::Rem)),
        ("&=", Tok::OpAssign(BinOp::BitAnd)),
        ("|=", Tok::OpAssign(BinOp::BitOr)),
    ];
    const ONE: [(char, Tok); 24] = [
        ('{', Tok::LBrace),
        ('}', Tok::RBrace),
        ('(', Tok::LParen),
        (')', Tok::RParen),
        ('[', Tok::LBracket),
        (']', Tok::RBracket),
        (';', Tok::Semi),
        (',', Tok::Comma),
        ('.', Tok::Dot),
        ('?', Tok::Question),
        (':', Tok::Colon),
        ('!', Tok::Bang),
        ('~', Tok::Tilde),
        ('=', Tok::Assign),
        ('+', Tok::Op(BinOp::Add)),
        ('-', Tok::Op(BinOp::Sub)),
        ('*', Tok::Op(BinOp::Mul)),
        ('/', Tok::Op(BinOp::Div)),
        ('%', Tok::Op(BinOp::Rem)),
        ('&', Tok::Op(BinOp::BitAnd)),
        ('|', Tok::Op(BinOp::BitOr)),
        ('^', Tok::Op(BinOp::BitXor)),
        ('<', Tok::Op(BinOp::Lt)),
        ('>', Tok::Op(BinOp::Gt)),
    ];
    if rest.starts_with("^=") {
        return Some((Tok::OpAssign(BinOp::BitXor), 2));
    }
    let three = THREE.iter().find(|(s, _)| rest.starts_with(s)).map(|(_, t)| (t.clone(), 3));
    let two = || TWO.iter().find(|(s, _)| rest.starts_with(s)).map(|(_, t)| (t.clone(), 2));
    let one = || {
        let c = rest.chars().next()?;
        ONE.iter().find(|(p, _)| *p == c).map(|(_, t)| (t.clone(), 1))
    };
    three.or_else(two).or_else(one)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn seg(text: &str, start: usize) -> Segment {
        Segment { text: text.into(), span: Span::new(start, start + text.len()) }
    }

    #[test]
    fn a_one_liner() {
        assert_eq!(
            toks("kprobe:ext4_file_open { print(kstack()); exit(); }"),
            vec![
                Tok::Probe(vec![seg("kprobe", 0), seg("ext4_file_open", 7)]),
                Tok::LBrace,
                Tok::Ident("print".into()),
                Tok::LParen,
                Tok::Ident("kstack".into()),
                Tok::LParen,
                Tok::RParen,
                Tok::RParen,
                Tok::Semi,
                Tok::Ident("exit".into()),
                Tok::LParen,
                Tok::RParen,
                Tok::Semi,
                Tok::RBrace,
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn probe_names_keep_paths_and_wildcards_whole() {
        let t = toks("#!/usr/local/bin/bpftrace\nuprobe:./file-io:native,u:/lib/libc.so.6:open\n{}");
        let Tok::Probe(a) = &t[0] else { panic!("{t:?}") };
        assert_eq!(a.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["uprobe", "./file-io", "native"]);
        assert_eq!(a[1].span, Span::new(33, 42));
        assert_eq!(t[1], Tok::Comma);
        let Tok::Probe(b) = &t[2] else { panic!("{t:?}") };
        assert_eq!(b[1].text, "/lib/libc.so.6");
        let t = toks("t:syscalls:sys_enter_* /pid/ {}");
        assert_eq!(t[0], Tok::Probe(vec![seg("t", 0), seg("syscalls", 2), seg("sys_enter_*", 11)]));
        assert_eq!(t[1], Tok::Op(BinOp::Div));
        // Not a path provider: a slash right after the name starts the predicate.
        let t = toks("kprobe:vfs_open/pid/{}");
        assert_eq!(t[0], Tok::Probe(vec![seg("kprobe", 0), seg("vfs_open", 7)]));
        assert_eq!(t[1], Tok::Op(BinOp::Div));
        let t = toks("uprobe:\"/a b/c\":f {}");
        assert_eq!(t[0], Tok::Probe(vec![seg("uprobe", 0), seg("/a b/c", 8), seg("f", 16)]));
    }

    #[test]
    fn after_a_block_comes_another_probe() {
        let t = toks("BEGIN { if (1) { } } END {}");
        assert_eq!(t[0], Tok::Probe(vec![seg("BEGIN", 0)]));
        assert_eq!(t[9], Tok::Probe(vec![seg("END", 21)]));
    }

    #[test]
    fn operators_longest_first() {
        assert_eq!(
            toks("k:f { $x <<= 1 >> 2 != 3 -> a-- }")[2..11],
            [
                Tok::Var("x".into()),
                Tok::OpAssign(BinOp::Shl),
                Tok::Int(1),
                Tok::Op(BinOp::Shr),
                Tok::Int(2),
                Tok::Op(BinOp::Ne),
                Tok::Int(3),
                Tok::Arrow,
                Tok::Ident("a".into()),
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("k:f{0x1F 1_000 017 0}")[2..6],
            [Tok::Int(31), Tok::Int(1000), Tok::Int(15), Tok::Int(0)]
        );
        assert_eq!(
            lex("k:f{99999999999999999999}").unwrap_err().message,
            "the number `99999999999999999999` does not fit in 64 bits"
        );
        assert_eq!(lex("k:f{12ab}").unwrap_err().span, Span::new(4, 8));
    }

    #[test]
    fn strings_and_their_escapes() {
        assert_eq!(toks("k:f{\"a\\tb\\n\\\"\\x41\\101\\0\"}")[2], Tok::Str("a\tb\n\"AA\0".into()));
        let e = lex("k:f{\"a\\q\"}").unwrap_err();
        assert_eq!((e.span, e.message.as_str()), (Span::new(6, 8), "unknown escape `\\q` in a string"));
        assert_eq!(decode_string("a\\nb").unwrap(), vec![('a', 0), ('\n', 1), ('b', 3)]);
    }

    #[test]
    fn comments_are_skipped_everywhere() {
        assert_eq!(toks("// c\nBEGIN /* x */ { /* y\n */ exit() // z\n}").len(), 7);
        assert_eq!(lex("BEGIN { /* never closed").unwrap_err().span, Span::new(8, 10));
    }
}
