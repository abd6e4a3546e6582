//! Where things are in a program's text: byte spans, and their lines and columns.

/// A range of bytes of the program text, `start..end` (end exclusive). An empty
/// span marks a position between two characters (e.g. where a `;` is missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end: end.max(start) }
    }

    /// The empty span at `at`.
    pub fn at(at: usize) -> Span {
        Span { start: at, end: at }
    }

    /// From the start of `self` to the end of `other`.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A program text and the name it is shown under in messages (`trace.bt`, `-e`).
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { name: name.into(), text, line_starts }
    }

    /// 1-based line and column (in characters) of byte offset `at`.
    pub fn line_col(&self, at: usize) -> (usize, usize) {
        let at = self.floor_char(at.min(self.text.len()));
        let line = self.line_starts.partition_point(|&s| s <= at) - 1;
        let col = self.text[self.line_starts[line]..at].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of 1-based line `line`, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).map_or(self.text.len(), |&n| n - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        let end = self.floor_char(span.end.min(self.text.len()));
        let start = self.floor_char(span.start.min(end));
        &self.text[start..end]
    }

    fn floor_char(&self, mut at: usize) -> usize {
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one() {
        let s = Source::new("t.bt", "ab\n\tcd\n\nxé z");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(2), (1, 3)); // the newline itself
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(4), (2, 2)); // after the tab
        assert_eq!(s.line_col(7), (3, 1));
        assert_eq!(s.line_col(12), (4, 4)); // é is two bytes, one column
        assert_eq!(s.line_text(2), "\tcd");
        assert_eq!(s.line_text(3), "");
        assert_eq!(s.line_text(4), "xé z");
        assert_eq!(s.slice(Span::new(4, 6)), "cd");
    }

    #[test]
    fn the_end_of_the_text_is_on_the_last_line() {
        let s = Source::new("t.bt", "a\nbc\n");
        assert_eq!(s.line_col(5), (3, 1));
        assert_eq!(s.line_col(99), (3, 1));
        let s = Source::new("t.bt", "a\r\nbc");
        assert_eq!(s.line_text(1), "a");
        assert_eq!(s.line_col(5), (2, 3));
    }
}
