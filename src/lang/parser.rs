//! Tokens -> [`Script`]: a recursive-descent parser that stops at the first
//! mistake and says what it expected there.

use super::ast::*;
use super::diag::suggest;
use super::diag::Diagnostic;
use super::lexer::{lex, Segment, Tok, Token};
use super::source::Span;

/// Parses a program (a `trace.bt` file or an `-e` one-liner).
pub fn parse(text: &str) -> Result<Script, Diagnostic> {
    let toks = lex(text)?;
    Parser { toks, pos: 0, no_div: false, nesting: 0 }.script()
}

/// The probe types and their short names.
const KINDS: [(&str, ProbeKind); 16] = [
    ("kprobe", ProbeKind::Kprobe),
    ("k", ProbeKind::Kprobe),
    ("kretprobe", ProbeKind::Kretprobe),
    ("kr", ProbeKind::Kretprobe),
    ("uprobe", ProbeKind::Uprobe),
    ("u", ProbeKind::Uprobe),
    ("uretprobe", ProbeKind::Uretprobe),
    ("ur", ProbeKind::Uretprobe),
    ("tracepoint", ProbeKind::Tracepoint),
    ("t", ProbeKind::Tracepoint),
    ("BEGIN", ProbeKind::Begin),
    ("begin", ProbeKind::Begin),
    ("END", ProbeKind::End),
    ("end", ProbeKind::End),
    // Written `BEGIN`/`END` in bpftrace before 0.22, `begin`/`end` after.
    ("Begin", ProbeKind::Begin),
    ("End", ProbeKind::End),
];

/// bpftrace probe types that trace does not offer yet.
const LATER_KINDS: [&str; 27] = [
    "usdt",
    "U",
    "profile",
    "p",
    "interval",
    "i",
    "software",
    "s",
    "hardware",
    "h",
    "watchpoint",
    "w",
    "asyncwatchpoint",
    "aw",
    "kfunc",
    "kretfunc",
    "fentry",
    "f",
    "fexit",
    "fr",
    "rawtracepoint",
    "rt",
    "iter",
    "it",
    "self",
    "bench",
    "test",
];

const KINDS_HELP: &str =
    "the probe types are kprobe (k), kretprobe (kr), uprobe (u), uretprobe (ur), tracepoint (t), BEGIN and END";

/// bpftrace statements that trace does not offer yet.
const LATER_KEYWORDS: [&str; 8] = ["while", "for", "unroll", "return", "break", "continue", "let", "macro"];

/// Words that start a C type, to recognise casts.
const TYPE_WORDS: [&str; 22] = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "struct", "union", "enum",
    "char", "int", "long", "short", "unsigned", "signed", "void", "bool", "u32", "u64", "size_t",
];

/// bpftrace's top-level declarations that trace does not offer yet.
const LATER_DECLARATIONS: [&str; 7] = ["config", "import", "macro", "struct", "union", "enum", "let"];

/// How deep blocks and expressions may nest: beyond anything written by hand,
/// and shallow enough that the passes that recurse over the tree (the checker,
/// the lowering, the code generator, on threads with 2 MiB stacks) never
/// overflow their stack.
const MAX_NESTING: usize = 200;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Inside a predicate (and outside parentheses) a `/` ends the predicate.
    no_div: bool,
    /// How deep the parser is in blocks and expressions (see [`MAX_NESTING`]).
    nesting: usize,
}

type PResult<T> = Result<T, Diagnostic>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.toks[self.pos].span
    }

    /// The empty span just after the previous token: where a missing `;` goes.
    fn after_prev(&self) -> Span {
        Span::at(if self.pos == 0 { 0 } else { self.toks[self.pos - 1].span.end })
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> Option<Span> {
        (self.peek() == tok).then(|| self.bump().span)
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> Diagnostic {
        Diagnostic::error(self.span(), format!("expected {what}, found {}", self.peek().describe()))
    }

    fn expect(&mut self, tok: Tok, context: &str) -> PResult<Span> {
        match self.eat(&tok) {
            Some(s) => Ok(s),
            None => Err(self.expected(&format!("`{}` {context}", tok.symbol()))),
        }
    }

    fn script(&mut self) -> PResult<Script> {
        let mut groups = Vec::new();
        while *self.peek() != Tok::Eof {
            groups.push(self.group()?);
        }
        if groups.is_empty() {
            return Err(Diagnostic::error(Span::at(0), "the program has no probes").help(
                "a program is a list of probes with actions, such as: BEGIN { printf(\"hello\\n\"); }",
            ));
        }
        Ok(Script { groups })
    }

    fn group(&mut self) -> PResult<Group> {
        let mut probes = vec![self.probe()?];
        while self.eat(&Tok::Comma).is_some() {
            probes.push(self.probe()?);
        }
        let predicate = if *self.peek() == Tok::Op(BinOp::Div) { Some(self.predicate()?) } else { None };
        if *self.peek() != Tok::LBrace {
            let what = if predicate.is_some() { "`{` to start the block" } else { "`{` or a /predicate/" };
            let mut d = self.expected(&format!("{what} after the probe"));
            if matches!(self.peek(), Tok::Ident(_)) && *self.peek_at(1) == Tok::Colon {
                d = d.help("probes that share one block are separated by `,`: kprobe:a, kprobe:b { ... }");
            }
            return Err(d);
        }
        let body = self.block()?;
        Ok(Group { probes, predicate, body })
    }

    fn predicate(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        if *self.peek() == Tok::Op(BinOp::Div) {
            return Err(Diagnostic::error(
                open.to(self.span()),
                "empty predicate: write a condition between the slashes",
            ));
        }
        self.no_div = true;
        let cond = self.expr();
        self.no_div = false;
        let cond = cond?;
        if self.eat(&Tok::Op(BinOp::Div)).is_none() {
            return Err(self.expected("`/` to end the predicate").note(open, "the predicate starts here"));
        }
        Ok(cond)
    }

    fn probe(&mut self) -> PResult<Probe> {
        let Tok::Probe(segs) = self.peek().clone() else {
            if *self.peek() == Tok::RBrace {
                return Err(Diagnostic::error(self.span(), "this `}` closes no block")
                    .help("every `}` closes the `{` of a probe, an `if` or an `else`"));
            }
            let d = self.expected("a probe, such as `kprobe:vfs_open` or `BEGIN`");
            return Err(if self.pos > 0 && self.toks[self.pos - 1].tok == Tok::Comma {
                d.help("a `,` between probes must be followed by another probe")
            } else {
                d
            });
        };
        self.bump();
        probe_from_segments(&segs)
    }

    /// One level deeper into blocks and expressions; an error past [`MAX_NESTING`].
    fn deeper(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(Diagnostic::error(
                self.span(),
                format!("the program nests deeper than {MAX_NESTING} levels of blocks and operators here"),
            )
            .help("split the expression with variables ($a = ...; $b = $a + ...;) or the conditions into several `if`s"));
        }
        Ok(())
    }

    /// Runs `f` one level deeper.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let base = self.nesting;
        self.deeper()?;
        let r = f(self);
        self.nesting = base;
        r
    }

    fn block(&mut self) -> PResult<Block> {
        self.nested(Self::block_inner)
    }

    fn block_inner(&mut self) -> PResult<Block> {
        let open = self.expect(Tok::LBrace, "to start a block")?;
        let mut stmts = Vec::new();
        loop {
            match self.peek() {
                Tok::RBrace => break,
                Tok::Semi => {
                    self.bump();
                    continue;
                }
                Tok::Eof => {
                    return Err(Diagnostic::error(
                        self.span(),
                        "expected `}` to close the block at the end of the program",
                    )
                    .note(open, "the block starts here"));
                }
                _ => {}
            }
            self.missing_brace_before_probe(open)?;
            let (stmt, needs_semi) = self.stmt()?;
            stmts.push(stmt);
            if needs_semi && !matches!(self.peek(), Tok::Semi | Tok::RBrace | Tok::Eof) {
                self.missing_brace_before_probe(open)?;
                return Err(Diagnostic::error(
                    self.after_prev(),
                    format!("expected `;` after this statement, found {}", self.peek().describe()),
                )
                .help("statements in a block are separated by `;`"));
            }
        }
        let close = self.bump().span;
        Ok(Block { stmts, open, close })
    }

    /// A probe name inside a block (`kprobe:f` lexed as `kprobe` `:` `f`) means
    /// the block was not closed.
    fn missing_brace_before_probe(&self, open: Span) -> PResult<()> {
        let looks_like_probe = match (self.peek(), self.peek_at(1)) {
            (Tok::Ident(_), Tok::Colon) => true,
            (Tok::Ident(w), Tok::LBrace) => KINDS.iter().any(|(k, _)| k == w),
            _ => false,
        };
        if !looks_like_probe {
            return Ok(());
        }
        Err(Diagnostic::error(self.after_prev(), "expected `}` to close the block before the next probe")
            .note(open, "the block starts here")
            .note(self.span(), "and the next probe starts here"))
    }

    /// A statement, and whether a `;` (or the end of the block) must follow it.
    fn stmt(&mut self) -> PResult<(Stmt, bool)> {
        let start = self.span();
        match self.peek().clone() {
            Tok::Ident(w) if w == "if" => return Ok((self.if_stmt()?, false)),
            Tok::Ident(w) if w == "else" => {
                return Err(Diagnostic::error(start, "`else` without an `if` before it"))
            }
            Tok::Ident(w) if LATER_KEYWORDS.contains(&w.as_str()) => {
                return Err(Diagnostic::error(start, format!("`{w}` is not supported yet")))
            }
            Tok::Var(name) => {
                if let Some(s) = self.assignment(&name, start)? {
                    return Ok((s, true));
                }
            }
            Tok::Incr | Tok::Decr => {
                let inc = self.bump().tok == Tok::Incr;
                let Tok::Var(name) = self.peek().clone() else {
                    return Err(self.expected("a variable after `++`/`--`"));
                };
                let var = Name { text: name, span: self.bump().span };
                let span = start.to(var.span);
                return Ok((incr(var, inc, span), true));
            }
            Tok::Map(_) => {
                let map = self.postfix()?;
                if matches!(self.peek(), Tok::Assign | Tok::OpAssign(_) | Tok::Incr | Tok::Decr) {
                    let tok = self.bump().clone();
                    let (op, value) = match tok.tok {
                        Tok::Incr | Tok::Decr => {
                            let one = Expr { kind: ExprKind::Int(1), span: tok.span };
                            (Some(if tok.tok == Tok::Incr { BinOp::Add } else { BinOp::Sub }), one)
                        }
                        Tok::OpAssign(op) => (Some(op), self.expr()?),
                        _ => (None, self.expr()?),
                    };
                    let span = start.to(self.toks[self.pos - 1].span);
                    return Ok((Stmt::MapAssign { map, op, value, span }, true));
                }
                return Ok((Stmt::Expr(self.binary_rest(map, 1)?), true));
            }
            Tok::LBrace => {
                return Err(Diagnostic::error(
                    start,
                    "unexpected `{`: a block follows a probe, an `if` or an `else`",
                ))
            }
            _ => {}
        }
        let e = self.expr()?;
        if *self.peek() == Tok::Assign {
            return Err(Diagnostic::error(
                self.span(),
                "only variables ($name) can be assigned; to compare, write `==`",
            ));
        }
        Ok((Stmt::Expr(e), true))
    }

    /// `$x = e`, `$x op= e`, `$x++`, `$x--`; None if `$x` starts an expression.
    fn assignment(&mut self, name: &str, start: Span) -> PResult<Option<Stmt>> {
        let op = match self.peek_at(1) {
            Tok::Assign => None,
            Tok::OpAssign(op) => Some(*op),
            Tok::Incr | Tok::Decr => {
                let var = Name { text: name.to_string(), span: self.bump().span };
                let inc = self.bump().tok == Tok::Incr;
                return Ok(Some(incr(var, inc, start.to(self.toks[self.pos - 1].span))));
            }
            _ => return Ok(None),
        };
        let var = Name { text: name.to_string(), span: self.bump().span };
        self.bump();
        let value = self.expr()?;
        let span = start.to(value.span);
        Ok(Some(Stmt::Assign { var, op, value, span }))
    }

    fn if_stmt(&mut self) -> PResult<Stmt> {
        let start = self.bump().span;
        if *self.peek() != Tok::LParen {
            return Err(self
                .expected("`(` after `if`")
                .help("write the condition in parentheses: if (pid == 42) { ... }"));
        }
        self.bump();
        let cond = self.inner_expr()?;
        self.expect(Tok::RParen, "to end the condition of the `if`")?;
        if *self.peek() != Tok::LBrace {
            return Err(self
                .expected("`{` after `if (...)`")
                .help("the body of an `if` is always in braces: if (c) { ... }"));
        }
        let then = self.block()?;
        let otherwise = match self.peek() {
            Tok::Ident(w) if w == "else" => {
                self.bump();
                if matches!(self.peek(), Tok::Ident(w) if w == "if") {
                    let nested = self.if_stmt()?;
                    let Stmt::If { span, .. } = &nested else { unreachable!("if_stmt returns an If") };
                    let span = *span;
                    Some(Block { stmts: vec![nested], open: span, close: Span::at(span.end) })
                } else if *self.peek() == Tok::LBrace {
                    Some(self.block()?)
                } else {
                    return Err(self.expected("`{` or `if` after `else`"));
                }
            }
            _ => None,
        };
        let end = otherwise.as_ref().map_or(then.close, |b| b.close);
        Ok(Stmt::If { cond, then, otherwise, span: start.to(end) })
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.nested(|p| {
            let lhs = p.unary()?;
            p.binary_rest(lhs, 1)
        })
    }

    /// An expression inside parentheses, where `/` divides even in a predicate.
    fn inner_expr(&mut self) -> PResult<Expr> {
        let saved = std::mem::replace(&mut self.no_div, false);
        let e = self.expr();
        self.no_div = saved;
        e
    }

    /// Precedence climbing over the binary operators. Each operator of a chain
    /// (`1 + 1 + 1`) is one level deeper in the tree.
    fn binary_rest(&mut self, lhs: Expr, min: u8) -> PResult<Expr> {
        let base = self.nesting;
        let r = self.binary_chain(lhs, min);
        self.nesting = base;
        r
    }

    fn binary_chain(&mut self, mut lhs: Expr, min: u8) -> PResult<Expr> {
        loop {
            let op = match self.peek() {
                Tok::Op(op) => *op,
                Tok::Assign => {
                    return Err(Diagnostic::error(self.span(), "`=` assigns a value; to compare, write `==`"))
                }
                Tok::Question => {
                    return Err(Diagnostic::error(self.span(), "the `? :` operator is not supported yet")
                        .help("use if (condition) { ... } else { ... }"))
                }
                _ => return Ok(lhs),
            };
            if (op == BinOp::Div && self.no_div) || op.precedence() < min {
                return Ok(lhs);
            }
            self.deeper()?;
            self.bump();
            let first = self.unary()?;
            let rhs = self.binary_rest(first, op.precedence() + 1)?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span };
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        let start = self.span();
        let op = match self.peek() {
            Tok::Op(BinOp::Sub) => UnOp::Neg,
            Tok::Bang => UnOp::Not,
            Tok::Tilde => UnOp::BitNot,
            Tok::Op(BinOp::Mul) => {
                return Err(Diagnostic::error(
                    start,
                    "reading memory through a pointer (`*p`) is not supported yet",
                )
                .help("to read a string, use str(pointer)"))
            }
            Tok::Op(BinOp::BitAnd) => {
                return Err(Diagnostic::error(start, "taking an address (`&x`) is not supported"))
            }
            Tok::Incr | Tok::Decr => {
                return Err(Diagnostic::error(start, "`++` and `--` are statements on a variable: $x++;"))
            }
            _ => return self.postfix(),
        };
        self.bump();
        let expr = self.nested(Self::unary)?;
        let span = start.to(expr.span);
        Ok(Expr { kind: ExprKind::Unary { op, expr: Box::new(expr) }, span })
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::Arrow | Tok::Dot => {
                    let arrow = self.bump().tok == Tok::Arrow;
                    let Tok::Ident(field) = self.peek().clone() else {
                        let op = if arrow { "->" } else { "." };
                        return Err(self.expected(&format!("a field name after `{op}`")));
                    };
                    let field = Name { text: field, span: self.bump().span };
                    let span = e.span.to(field.span);
                    e = Expr { kind: ExprKind::Field { base: Box::new(e), field, arrow }, span };
                }
                Tok::LBracket => {
                    let ExprKind::Map { keys, .. } = &mut e.kind else {
                        return Err(Diagnostic::error(
                            self.span(),
                            "indexing with `[ ]` is not supported yet",
                        ));
                    };
                    self.bump();
                    let mut list = self.list(Tok::RBracket, "the map's keys")?;
                    keys.append(&mut list);
                    e.span = e.span.to(self.toks[self.pos - 1].span);
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let start = self.span();
        let kind = match self.peek().clone() {
            Tok::Int(n) => ExprKind::Int(n),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::Var(v) => ExprKind::Var(v),
            Tok::Map(m) => ExprKind::Map { name: m, keys: vec![] },
            Tok::Ident(name) if *self.peek_at(1) == Tok::LParen => {
                let func = Name { text: name, span: self.bump().span };
                self.bump();
                let args = self.list(Tok::RParen, &format!("the arguments of `{}`", func.text))?;
                let span = start.to(self.toks[self.pos - 1].span);
                return Ok(Expr { kind: ExprKind::Call { func, args }, span });
            }
            Tok::Ident(name) => ExprKind::Ident(name),
            Tok::LParen if self.looks_like_cast() => {
                return Err(Diagnostic::error(start, "casts such as `(uint64)x` are not supported yet"));
            }
            Tok::LParen => {
                self.bump();
                let inner = self.inner_expr()?;
                let close = self.expect(Tok::RParen, "to match the `(`")?;
                return Ok(Expr { kind: inner.kind, span: start.to(close) });
            }
            _ => {
                return Err(
                    self.expected("an expression (a number, a string, a builtin such as `pid`, or a call)")
                )
            }
        };
        self.bump();
        Ok(Expr { kind, span: start })
    }

    /// `(type)`, `(type *)` or `(struct name *)` at a `(`.
    fn looks_like_cast(&self) -> bool {
        let Tok::Ident(word) = self.peek_at(1) else { return false };
        TYPE_WORDS.contains(&word.as_str())
            && matches!(self.peek_at(2), Tok::RParen | Tok::Op(BinOp::Mul) | Tok::Ident(_))
    }

    /// `a, b, c` up to `close` (the opening bracket is already eaten).
    fn list(&mut self, close: Tok, what: &str) -> PResult<Vec<Expr>> {
        let mut items = Vec::new();
        if self.eat(&close).is_some() {
            return Ok(items);
        }
        loop {
            items.push(self.inner_expr()?);
            if self.eat(&close).is_some() {
                return Ok(items);
            }
            if self.eat(&Tok::Comma).is_none() {
                return Err(self.expected(&format!("`,` or `{}` in {what}", close.symbol())));
            }
        }
    }
}

fn incr(var: Name, inc: bool, span: Span) -> Stmt {
    let one = Expr { kind: ExprKind::Int(1), span: var.span };
    Stmt::Assign { var, op: Some(if inc { BinOp::Add } else { BinOp::Sub }), value: one, span }
}

/// Turns the parts of a probe name into a [`Probe`], checking their number and form.
fn probe_from_segments(segs: &[Segment]) -> PResult<Probe> {
    let first = &segs[0];
    let span = first.span.to(segs[segs.len() - 1].span);
    let name = first.text.as_str();
    let Some(&(_, kind)) = KINDS.iter().find(|(k, _)| *k == name) else {
        return Err(unknown_kind(segs));
    };
    let name_of = |i: usize, what: &str| -> PResult<Name> {
        match segs.get(i) {
            Some(s) if !s.text.is_empty() => Ok(Name { text: s.text.clone(), span: s.span }),
            Some(s) => {
                Err(Diagnostic::error(s.span, format!("expected {what} after `{}:`", prefix(segs, i))))
            }
            None => Err(Diagnostic::error(
                Span::at(span.end),
                format!("expected `:` and {what} after `{}`", prefix(segs, i)),
            )),
        }
    };
    let too_many = |n: usize, form: &str| -> PResult<()> {
        match segs.get(n) {
            Some(extra) => Err(Diagnostic::error(
                Span::new(segs[n - 1].span.end, span.end),
                format!("too many parts in this probe: it is written {form}"),
            )
            .note(extra.span, "this part is extra")),
            None => Ok(()),
        }
    };
    let target = match kind {
        ProbeKind::Begin | ProbeKind::End => {
            too_many(1, name)?;
            Target::None
        }
        ProbeKind::Kprobe | ProbeKind::Kretprobe => {
            if segs.len() == 3 {
                return Err(Diagnostic::error(
                    segs[1].span,
                    "kernel module names in probes are not supported yet",
                )
                .help(format!("write {name}:{}", segs[2].text)));
            }
            too_many(2, &format!("{name}:FUNCTION"))?;
            let func = name_of(1, "a kernel function name")?;
            check_function_name(&func)?;
            Target::Kernel { func }
        }
        ProbeKind::Uprobe | ProbeKind::Uretprobe => {
            too_many(3, &format!("{name}:PATH:FUNCTION"))?;
            if segs.len() == 2 && segs[1].text.contains('/') {
                return Err(Diagnostic::error(
                    Span::at(span.end),
                    format!("expected `:` and a function name after the path `{}`", segs[1].text),
                )
                .help(format!("write {name}:{}:FUNCTION", segs[1].text)));
            }
            let (path, func) = if segs.len() == 3 {
                (Some(name_of(1, "a file path")?), name_of(2, "a function name")?)
            } else {
                (None, name_of(1, "a file path or a library, then `:` and a function name,")?)
            };
            check_function_name(&func)?;
            Target::User { path, func }
        }
        ProbeKind::Tracepoint => {
            too_many(3, &format!("{name}:CATEGORY:EVENT"))?;
            let category = name_of(1, "a category such as `syscalls`")?;
            let event = name_of(2, "an event name such as `sys_enter_open`")?;
            for n in [&category, &event] {
                check_plain_name(n, "tracepoint names")?;
            }
            Target::Tracepoint { category, event }
        }
    };
    Ok(Probe { kind, target, span, kind_span: first.span })
}

/// `a:b:` for the first `n` parts.
fn prefix(segs: &[Segment], n: usize) -> String {
    segs[..n].iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(":")
}

fn unknown_kind(segs: &[Segment]) -> Diagnostic {
    let first = &segs[0];
    let name = first.text.as_str();
    if LATER_DECLARATIONS.contains(&name) {
        return Diagnostic::error(first.span, format!("`{name}` declarations are not supported yet"));
    }
    if LATER_KINDS.contains(&name) {
        return Diagnostic::error(first.span, format!("`{name}` probes are not supported yet"))
            .help(KINDS_HELP);
    }
    let full: Vec<&str> = KINDS.iter().map(|(k, _)| *k).filter(|k| k.len() > 2).collect();
    let close = suggest(name, &full);
    if segs.len() == 1 && close.is_empty() {
        return Diagnostic::error(
            first.span,
            format!("expected a probe, such as `kprobe:vfs_open` or `BEGIN`, found `{name}`"),
        )
        .help("statements go inside a probe's block: BEGIN { ... }");
    }
    Diagnostic::error(first.span, format!("unknown probe type `{name}`"))
        .did_you_mean(&close)
        .help(KINDS_HELP)
}

/// Function names: C identifiers, with `*` and `?` wildcards and `.` (`foo.isra.0`).
fn check_function_name(func: &Name) -> PResult<()> {
    if let Some(at) = func.text.find('+') {
        let s = func.span.start + at;
        return Err(Diagnostic::error(
            Span::new(s, func.span.end),
            "probe offsets (`+N`) are not supported yet",
        ));
    }
    if func.text.bytes().all(|b| b.is_ascii_digit()) || func.text.starts_with("0x") {
        return Err(Diagnostic::error(
            func.span,
            "probes at addresses are not supported yet: name a function",
        ));
    }
    check_plain_name(func, "function names")
}

fn check_plain_name(n: &Name, what: &str) -> PResult<()> {
    match n.text.char_indices().find(|&(_, c)| !(c.is_ascii_alphanumeric() || "_.*?".contains(c))) {
        Some((at, c)) => {
            let s = n.span.start + at;
            Err(Diagnostic::error(
                Span::new(s, s + c.len_utf8()),
                format!(
                    "`{c}` cannot be part of {what} (letters, digits, `_`, `.` and the wildcards `*` `?`)"
                ),
            ))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_group(text: &str) -> Group {
        let mut s = parse(text).unwrap();
        assert_eq!(s.groups.len(), 1);
        s.groups.remove(0)
    }

    /// An expression, written back with every operation parenthesised.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Str(s) => format!("{s:?}"),
            ExprKind::Ident(s) => s.clone(),
            ExprKind::Var(s) => format!("${s}"),
            ExprKind::Map { name, keys } => {
                format!("@{name}[{}]", keys.iter().map(show).collect::<Vec<_>>().join(","))
            }
            ExprKind::Field { base, field, arrow } => {
                format!("{}{}{}", show(base), if *arrow { "->" } else { "." }, field.text)
            }
            ExprKind::Call { func, args } => {
                format!("{}({})", func.text, args.iter().map(show).collect::<Vec<_>>().join(", "))
            }
            ExprKind::Unary { op, expr } => format!("{}{}", op.symbol(), show(expr)),
            ExprKind::Binary { op, lhs, rhs } => format!("({} {} {})", show(lhs), op.symbol(), show(rhs)),
        }
    }

    fn predicate(text: &str) -> String {
        show(one_group(&format!("BEGIN /{text}/ {{}}")).predicate.as_ref().unwrap())
    }

    #[test]
    fn operators_bind_as_in_c() {
        assert_eq!(
            predicate("1 + 2 * 3 == 7 && !(pid < 4) || comm == \"x\""),
            "((((1 + (2 * 3)) == 7) && !(pid < 4)) || (comm == \"x\"))"
        );
        assert_eq!(predicate("a - b - c"), "((a - b) - c)");
        assert_eq!(predicate("a | b ^ c & d << 1 + -e"), "(a | (b ^ (c & (d << (1 + -e)))))");
        assert_eq!(predicate("a >= b != c <= d"), "((a >= b) != (c <= d))");
        assert_eq!(predicate("~a % 3 > 0"), "((~a % 3) > 0)");
    }

    #[test]
    fn a_slash_ends_the_predicate_unless_in_parentheses() {
        assert_eq!(predicate("(pid / 2) == 1"), "((pid / 2) == 1)");
        assert_eq!(predicate("f(pid / 2)"), "f((pid / 2))");
        let e = parse("BEGIN /pid / 2/ {}").unwrap_err();
        assert_eq!(e.message, "expected `{` to start the block after the probe, found `2`");
    }

    #[test]
    fn probes_of_every_kind() {
        let g = one_group(
            "k:vfs_open, kretprobe:vfs_*, u:./file-io:native, uretprobe:libc:open, uprobe:main,\n\
             t:syscalls:sys_enter_open, BEGIN, end {}",
        );
        let shown: Vec<String> = g.probes.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "kprobe:vfs_open",
                "kretprobe:vfs_*",
                "uprobe:./file-io:native",
                "uretprobe:libc:open",
                "uprobe:main",
                "tracepoint:syscalls:sys_enter_open",
                "BEGIN",
                "END"
            ]
        );
        assert_eq!(g.probes[0].kind_span, Span::new(0, 1));
        assert_eq!(g.probes[2].span, Span::new(29, 47));
        let Target::User { path: Some(path), func } = &g.probes[2].target else { panic!() };
        assert_eq!(
            (path.text.as_str(), path.span, func.span),
            ("./file-io", Span::new(31, 40), Span::new(41, 47))
        );
    }

    #[test]
    fn statements() {
        let g = one_group(
            "BEGIN { $x = 1; $x += 2; $x++; --$x; if ($x > 1) { exit() } else if ($x) { print(1) } else { } \
             printf(\"%d\\n\", $x) }",
        );
        let s = &g.body.stmts;
        assert_eq!(s.len(), 6);
        let Stmt::Assign { var, op: None, value, .. } = &s[0] else { panic!("{:?}", s[0]) };
        assert_eq!((var.text.as_str(), show(value)), ("x", "1".to_string()));
        assert!(matches!(&s[1], Stmt::Assign { op: Some(BinOp::Add), .. }));
        assert!(matches!(
            &s[2],
            Stmt::Assign { op: Some(BinOp::Add), value: Expr { kind: ExprKind::Int(1), .. }, .. }
        ));
        assert!(matches!(&s[3], Stmt::Assign { op: Some(BinOp::Sub), .. }));
        let Stmt::If { cond, then, otherwise: Some(other), .. } = &s[4] else { panic!("{:?}", s[4]) };
        assert_eq!(show(cond), "($x > 1)");
        assert_eq!(then.stmts.len(), 1);
        let Stmt::If { otherwise: Some(last), .. } = &other.stmts[0] else { panic!("{other:?}") };
        assert!(last.stmts.is_empty());
        let Stmt::Expr(call) = &s[5] else { panic!() };
        assert_eq!(show(call), "printf(\"%d\\n\", $x)");
    }

    #[test]
    fn args_fields_and_maps() {
        let g =
            one_group("t:a:b { print(args->filename); print(args . flags); @m[pid, comm] = count(); @n++ }");
        let Stmt::Expr(e) = &g.body.stmts[0] else { panic!() };
        assert_eq!(show(e), "print(args->filename)");
        let Stmt::Expr(e) = &g.body.stmts[1] else { panic!() };
        assert_eq!(show(e), "print(args.flags)");
        let Stmt::MapAssign { map, .. } = &g.body.stmts[2] else { panic!() };
        assert_eq!(show(map), "@m[pid,comm]");
        assert!(matches!(&g.body.stmts[3], Stmt::MapAssign { .. }));
    }

    #[test]
    fn several_blocks_and_empty_statements() {
        let s = parse("BEGIN { ; exit(); ; } kprobe:f /pid == 1/ { } END{}").unwrap();
        assert_eq!(s.groups.len(), 3);
        assert_eq!(s.groups[0].body.stmts.len(), 1);
        assert_eq!(show(s.groups[1].predicate.as_ref().unwrap()), "(pid == 1)");
        assert_eq!(s.groups[2].probes[0].kind, ProbeKind::End);
    }

    #[test]
    fn malformed_probe_names() {
        let msg = |t: &str| parse(t).unwrap_err().message;
        assert_eq!(msg("kprobe {}"), "expected `:` and a kernel function name after `kprobe`");
        assert_eq!(msg("kprobe: {}"), "expected a kernel function name after `kprobe:`");
        assert_eq!(
            msg("t:syscalls {}"),
            "expected `:` and an event name such as `sys_enter_open` after `t:syscalls`"
        );
        assert_eq!(msg("BEGIN:x {}"), "too many parts in this probe: it is written BEGIN");
        assert_eq!(msg("uprobe:/bin/ls {}"), "expected `:` and a function name after the path `/bin/ls`");
        assert_eq!(msg("kprobe:vfs_open+4 {}"), "probe offsets (`+N`) are not supported yet");
        assert_eq!(msg("profile:hz:99 {}"), "`profile` probes are not supported yet");
        assert_eq!(msg("kprobe:ext4:f {}"), "kernel module names in probes are not supported yet");
        assert_eq!(msg(""), "the program has no probes");
        assert_eq!(
            msg("config = { stack_mode=perf } BEGIN {}"),
            "`config` declarations are not supported yet"
        );
    }

    #[test]
    fn statement_mistakes() {
        let err = |t: &str| {
            let d = parse(t).unwrap_err();
            (d.span, d.message)
        };
        assert_eq!(err("BEGIN { } }"), (Span::new(10, 11), "this `}` closes no block".into()));
        assert_eq!(err("BEGIN { while (1) { } }"), (Span::new(8, 13), "`while` is not supported yet".into()));
        assert_eq!(
            err("BEGIN { $x = pid ? 1 : 2; }"),
            (Span::new(17, 18), "the `? :` operator is not supported yet".into())
        );
        assert_eq!(err("BEGIN { else { } }"), (Span::new(8, 12), "`else` without an `if` before it".into()));
        assert_eq!(
            err("BEGIN { pid = 1; }"),
            (Span::new(12, 13), "`=` assigns a value; to compare, write `==`".into())
        );
        assert_eq!(
            err("BEGIN { print(*arg0); }"),
            (Span::new(14, 15), "reading memory through a pointer (`*p`) is not supported yet".into())
        );
        assert_eq!(
            err("BEGIN { printf(\"%d\", pid; }"),
            (Span::new(24, 25), "expected `,` or `)` in the arguments of `printf`, found `;`".into())
        );
        assert_eq!(
            err("BEGIN /pid/ /tid/ {}"),
            (Span::new(12, 13), "expected `{` to start the block after the probe, found `/`".into())
        );
        let cast = "casts such as `(uint64)x` are not supported yet".to_string();
        assert_eq!(err("BEGIN { $p = (struct path *)arg0; }"), (Span::new(13, 14), cast.clone()));
        assert_eq!(err("BEGIN { $p = (uint32)arg0; }"), (Span::new(13, 14), cast));
        assert!(parse("BEGIN { $p = (pid) * 2; }").is_ok(), "a parenthesised builtin is not a cast");
        assert_eq!(
            err("BEGIN, {}"),
            (Span::new(7, 8), "expected a probe, such as `kprobe:vfs_open` or `BEGIN`, found `{`".into())
        );
        assert_eq!(
            err("BEGIN { if (1) { } else exit(); }"),
            (Span::new(24, 28), "expected `{` or `if` after `else`, found `exit`".into())
        );
    }
}
