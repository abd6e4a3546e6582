//! Messages about a program, rendered like a compiler's:
//!
//! ```text
//! trace.bt:3:20: error: unknown builtin `pidd`
//!     3 |     printf("%d\n", pidd);
//!       |                    ^~~~
//!       = help: did you mean `pid`?
//! ```

use std::fmt;

use super::source::{Source, Span};

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The program cannot run.
    Error,
    /// The program runs, but probably not as meant.
    Warning,
}

/// A secondary location (`note: the block starts here`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub span: Span,
    pub message: String,
}

/// One message about the program: where, what, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    /// Other places worth showing.
    pub notes: Vec<Note>,
    /// What to do next: close matches, the expected form.
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, span, message: message.into(), notes: vec![], help: vec![] }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(span, message) }
    }

    /// Adds a line of help.
    pub fn help(mut self, text: impl Into<String>) -> Diagnostic {
        self.help.push(text.into());
        self
    }

    /// Adds "did you mean" for close matches, if there are any.
    pub fn did_you_mean(self, close: &[String]) -> Diagnostic {
        match close {
            [] => self,
            [one] => self.help(format!("did you mean `{one}`?")),
            many => {
                let list: Vec<String> = many.iter().map(|m| format!("`{m}`")).collect();
                self.help(format!("did you mean one of {}?", list.join(", ")))
            }
        }
    }

    /// Adds a secondary location.
    pub fn note(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.notes.push(Note { span, message: message.into() });
        self
    }

    /// The message as a compiler prints it: location, message, the source line
    /// with the span underlined, notes, help.
    pub fn render(&self, src: &Source) -> String {
        let word = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = located(src, self.span, word, &self.message);
        for n in &self.notes {
            out.push_str(&located(src, n.span, "note", &n.message));
        }
        for h in &self.help {
            out.push_str(&format!("      = help: {h}\n"));
        }
        out
    }
}

/// `name:line:col: word: message`, then the line and the underline.
fn located(src: &Source, span: Span, word: &str, message: &str) -> String {
    let (line, col) = src.line_col(span.start);
    let text = src.line_text(line);
    let before: String = text.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let on_line = text.chars().count().saturating_sub(col - 1);
    let width = src.slice(span).chars().take_while(|&c| c != '\n').count().min(on_line).max(1);
    let marks = format!("^{}", "~".repeat(width - 1));
    format!("{}:{line}:{col}: {word}: {message}\n{line:>5} | {text}\n      | {before}{marks}\n", src.name)
}

/// Close matches for a misspelt name, best first: names one swap of two
/// neighbouring letters away (`prinft` -> `printf`), then
/// [`crate::util::close_matches`].
pub fn suggest<S: AsRef<str>>(wanted: &str, candidates: &[S]) -> Vec<String> {
    let swapped = |c: &str| {
        let (a, b) = (wanted.as_bytes(), c.as_bytes());
        let diff: Vec<usize> = (0..a.len().min(b.len())).filter(|&i| a[i] != b[i]).collect();
        a.len() == b.len()
            && diff.len() == 2
            && diff[1] == diff[0] + 1
            && a[diff[0]] == b[diff[1]]
            && a[diff[1]] == b[diff[0]]
    };
    let mut out: Vec<String> =
        candidates.iter().map(|c| c.as_ref()).filter(|c| swapped(c)).map(str::to_string).collect();
    for c in crate::util::close_matches(wanted, candidates.iter().map(|c| c.as_ref())) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out.truncate(5);
    out
}

/// Shows control characters as escapes (`\n`), for messages quoting a string.
pub fn escape(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Why a program was refused: its diagnostics, rendered against its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The errors (at least one) and the warnings found with them, in source order.
    pub diagnostics: Vec<Diagnostic>,
    rendered: String,
}

impl CompileError {
    pub fn new(src: &Source, mut diagnostics: Vec<Diagnostic>) -> CompileError {
        diagnostics.sort_by_key(|d| d.span.start);
        let rendered = render_all(src, &diagnostics);
        CompileError { diagnostics, rendered }
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

/// Renders several diagnostics, then a count of the errors when more than one.
pub fn render_all(src: &Source, diagnostics: &[Diagnostic]) -> String {
    let mut out: String = diagnostics.iter().map(|d| d.render(src)).collect();
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    if errors > 1 {
        out.push_str(&format!("{errors} errors\n"));
    }
    out
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rendered.trim_end())
    }
}

impl std::error::Error for CompileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapped_letters_come_first() {
        assert_eq!(suggest("prinft", &["print", "printf", "str"]), ["printf", "print"]);
        assert_eq!(suggest("pidd", &["pid", "tid"]), ["pid"]);
        assert_eq!(escape("%\n\t"), "%\\n\\t");
    }

    #[test]
    fn underlines_the_span_under_its_line() {
        let src = Source::new("t.bt", "BEGIN {\n    printf(\"%d\\n\", pidd);\n}\n");
        let at = src.text.find("pidd").unwrap();
        let d = Diagnostic::error(Span::new(at, at + 4), "unknown builtin `pidd`")
            .did_you_mean(&["pid".to_string()]);
        assert_eq!(
            d.render(&src),
            "t.bt:2:20: error: unknown builtin `pidd`\n    \
                 2 |     printf(\"%d\\n\", pidd);\n      \
                   |                    ^~~~\n      \
                   = help: did you mean `pid`?\n"
        );
    }

    #[test]
    fn tabs_are_kept_so_the_marks_line_up() {
        let src = Source::new("t.bt", "k:f {\n\tpidd;\n}");
        let at = src.text.find("pidd").unwrap();
        let d = Diagnostic::warning(Span::new(at, at + 4), "w");
        assert_eq!(d.render(&src), "t.bt:2:2: warning: w\n    2 | \tpidd;\n      | \t^~~~\n");
    }

    #[test]
    fn an_empty_span_gets_one_caret_and_a_long_one_stops_at_the_line_end() {
        let src = Source::new("x", "ab\ncd");
        assert_eq!(
            Diagnostic::error(Span::at(2), "m").render(&src),
            "x:1:3: error: m\n    1 | ab\n      |   ^\n"
        );
        assert_eq!(
            Diagnostic::error(Span::new(1, 5), "m").render(&src),
            "x:1:2: error: m\n    1 | ab\n      |  ^\n"
        );
    }

    #[test]
    fn notes_show_their_own_place_and_errors_are_counted() {
        let src = Source::new("x", "a {\nb");
        let d = Diagnostic::error(Span::at(5), "expected `}`").note(Span::new(2, 3), "opened here");
        let e = CompileError::new(&src, vec![d.clone(), Diagnostic::error(Span::new(0, 1), "first")]);
        assert_eq!(e.diagnostics[0].message, "first");
        assert_eq!(
            e.to_string(),
            "x:1:1: error: first\n    1 | a {\n      | ^\n\
             x:2:2: error: expected `}`\n    2 | b\n      |  ^\n\
             x:1:3: note: opened here\n    1 | a {\n      |   ^\n\
             2 errors"
        );
    }
}
