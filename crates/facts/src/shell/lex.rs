//! The shell tokenizer: POSIX `sh` quoting and operators, plus the bash
//! forms agents actually write (`$'…'`, `&>`, `|&`, `<<<`, `<(…)`).
//!
//! It does not expand anything. A word records its literal text after
//! quote removal and whether any part of it is only known at run time
//! (a parameter, arithmetic, a command substitution, brace expansion):
//! such a word is *dynamic*, and the analysis treats it as "could be
//! anything". Command substitutions are tokenized recursively, so the
//! commands inside `$(…)`, backticks, `<(…)` and unquoted here-documents
//! are analysed like any other.
//!
//! Word splitting needs operators that are not surrounded by spaces
//! (`true&&rm -rf /`), which is why this is not `shlex`/`shell-words`:
//! those split on blanks only and would read `true&&rm` as one word.

use std::iter::Peekable;
use std::str::Chars;

/// How deeply substitutions may nest before the input counts as
/// unparseable (each level is a recursive call).
pub(crate) const MAX_NESTING: usize = 32;

/// Why a command line could not be tokenized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LexError {
    UnterminatedQuote,
    UnterminatedSubstitution,
    UnterminatedHereDoc,
    MissingRedirectTarget,
    TooDeep,
}

/// One word, after quote removal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Word {
    /// The literal text; expansions are kept as their source text.
    pub text: String,
    /// Some part was quoted or escaped (so it is never a reserved word).
    pub quoted: bool,
    /// Some part is only known at run time.
    pub dynamic: bool,
    /// It contains an unquoted glob character (`*`, `?`, `[`).
    pub glob: bool,
    /// `NAME=value` with an unquoted `=`: an assignment in command position.
    pub assignment: bool,
    /// The command substitutions inside it, tokenized.
    pub subs: Vec<Vec<Token>>,
}

impl Word {
    /// A word taken verbatim, as an argv element is (no shell involved).
    pub(crate) fn literal(text: &str) -> Word {
        Word { text: text.to_owned(), quoted: true, ..Word::default() }
    }
}

/// Control and redirection operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `;`, `&`, `&&`, `||` or a newline: ends a command.
    Separator,
    /// `;;` (and `;&`, `;;&`): ends a `case` branch.
    CaseBreak,
    /// `|` or `|&`.
    Pipe,
    LParen,
    RParen,
}

/// The kind of a redirection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// `>`, `>|`, `<>`, `&>`, `>&`: writes its target, replacing it.
    Output,
    /// `>>`, `&>>`: appends to its target.
    Append,
    /// `<`, `<&`, `<<<`: reads its target.
    Input,
    /// `<<`, `<<-`: a here-document; the target is its delimiter.
    HereDoc { strip_tabs: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Word(Word),
    Op(Op),
    /// A redirection and its target word.
    Redirect(Redirect, Word),
}

/// What ends the token list being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    End,
    /// The `)` closing a `$(` or `<(` (nested parentheses counted).
    Paren,
}

/// Tokenizes a whole command line.
pub(crate) fn tokenize(src: &str, depth: usize) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer { chars: src.chars().peekable(), depth, pending: Vec::new() };
    lexer.list(Stop::End)
}

struct PendingHereDoc {
    delimiter: String,
    strip_tabs: bool,
    /// An unquoted delimiter means the body is expanded, substitutions and all.
    expands: bool,
}

struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    depth: usize,
    pending: Vec<PendingHereDoc>,
}

fn is_operator_start(c: char) -> bool {
    matches!(c, ';' | '&' | '|' | '(' | ')' | '<' | '>' | '\n')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer<'_> {
    fn eat(&mut self, c: char) -> bool {
        if self.chars.peek() == Some(&c) {
            self.chars.next();
            true
        } else {
            false
        }
    }

    fn nested(&self) -> Result<usize, LexError> {
        if self.depth >= MAX_NESTING {
            Err(LexError::TooDeep)
        } else {
            Ok(self.depth + 1)
        }
    }

    fn list(&mut self, stop: Stop) -> Result<Vec<Token>, LexError> {
        let mut tokens = Vec::new();
        let mut parens = 0_usize;
        loop {
            let Some(&c) = self.chars.peek() else {
                if !self.pending.is_empty() {
                    return Err(LexError::UnterminatedHereDoc);
                }
                return match stop {
                    Stop::End => Ok(tokens),
                    Stop::Paren => Err(LexError::UnterminatedSubstitution),
                };
            };
            match c {
                c if is_blank(c) => {
                    self.chars.next();
                }
                '\\' => {
                    // A line continuation between words, or an escaped
                    // character starting a word.
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    if ahead.peek() == Some(&'\n') {
                        self.chars.next();
                        self.chars.next();
                    } else {
                        tokens.push(Token::Word(self.word()?));
                    }
                }
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.chars.next();
                    }
                }
                '\n' => {
                    self.chars.next();
                    tokens.push(Token::Op(Op::Separator));
                    let bodies = self.here_doc_bodies()?;
                    // Substitutions in an expanded here-document body run
                    // when the command does; they are analysed as commands
                    // of their own.
                    tokens.extend(bodies);
                }
                ';' => {
                    self.chars.next();
                    if self.eat(';') {
                        self.eat('&');
                        tokens.push(Token::Op(Op::CaseBreak));
                    } else if self.eat('&') {
                        tokens.push(Token::Op(Op::CaseBreak));
                    } else {
                        tokens.push(Token::Op(Op::Separator));
                    }
                }
                '&' => {
                    self.chars.next();
                    if self.eat('&') {
                        tokens.push(Token::Op(Op::Separator));
                    } else if self.eat('>') {
                        let kind = if self.eat('>') { Redirect::Append } else { Redirect::Output };
                        tokens.push(self.redirect(kind)?);
                    } else {
                        tokens.push(Token::Op(Op::Separator));
                    }
                }
                '|' => {
                    self.chars.next();
                    if self.eat('|') {
                        tokens.push(Token::Op(Op::Separator));
                    } else {
                        self.eat('&');
                        tokens.push(Token::Op(Op::Pipe));
                    }
                }
                '(' => {
                    self.chars.next();
                    parens += 1;
                    tokens.push(Token::Op(Op::LParen));
                }
                ')' => {
                    self.chars.next();
                    if stop == Stop::Paren && parens == 0 {
                        return Ok(tokens);
                    }
                    parens = parens.saturating_sub(1);
                    tokens.push(Token::Op(Op::RParen));
                }
                '<' | '>' => tokens.push(self.redirect_or_process_substitution()?),
                _ => {
                    let word = self.word()?;
                    // `2>file`, `10<&0`: the digits are a descriptor number.
                    let descriptor = !word.quoted
                        && !word.text.is_empty()
                        && word.text.bytes().all(|b| b.is_ascii_digit())
                        && matches!(self.chars.peek(), Some('<' | '>'));
                    if !descriptor {
                        tokens.push(Token::Word(word));
                    }
                }
            }
        }
    }

    fn redirect_or_process_substitution(&mut self) -> Result<Token, LexError> {
        let first = self.chars.next();
        if self.chars.peek() == Some(&'(') {
            // `<(cmd)` / `>(cmd)`: a process substitution, i.e. a word
            // whose value is a file name and whose command runs.
            self.chars.next();
            let depth = self.nested()?;
            let mut inner = Lexer { chars: self.chars.clone(), depth, pending: Vec::new() };
            let sub = inner.list(Stop::Paren)?;
            self.chars = inner.chars;
            let mut word = Word { text: "/dev/fd/63".to_owned(), dynamic: true, ..Word::default() };
            word.subs.push(sub);
            // A process substitution may be followed by more word text;
            // it is all one (dynamic) word.
            if self.chars.peek().is_some_and(|&c| !is_blank(c) && !is_operator_start(c)) {
                let rest = self.word()?;
                word.text.push_str(&rest.text);
                word.subs.extend(rest.subs);
            }
            return Ok(Token::Word(word));
        }
        let kind = match first {
            Some('>') => {
                // `>`, `>>`, `>|`, `>&`
                if self.eat('>') {
                    Redirect::Append
                } else {
                    if !self.eat('|') {
                        self.eat('&');
                    }
                    Redirect::Output
                }
            }
            _ => {
                if self.eat('<') {
                    if self.eat('<') {
                        Redirect::Input
                    } else {
                        Redirect::HereDoc { strip_tabs: self.eat('-') }
                    }
                } else if self.eat('>') {
                    Redirect::Output
                } else {
                    self.eat('&');
                    Redirect::Input
                }
            }
        };
        self.redirect(kind)
    }

    /// The target word of a redirection operator just read.
    fn redirect(&mut self, kind: Redirect) -> Result<Token, LexError> {
        while self.chars.peek().is_some_and(|&c| is_blank(c)) {
            self.chars.next();
        }
        match self.chars.peek() {
            Some(&c) if !is_operator_start(c) => {}
            Some(_) | None => return Err(LexError::MissingRedirectTarget),
        }
        let target = self.word()?;
        if let Redirect::HereDoc { strip_tabs } = kind {
            self.pending.push(PendingHereDoc { delimiter: target.text.clone(), strip_tabs, expands: !target.quoted });
        }
        Ok(Token::Redirect(kind, target))
    }

    /// Reads the bodies of the here-documents opened on the line just
    /// ended; returns the substitutions found in expanded bodies, each as
    /// a separate command list.
    fn here_doc_bodies(&mut self) -> Result<Vec<Token>, LexError> {
        let mut found = Vec::new();
        for doc in std::mem::take(&mut self.pending) {
            let mut body = String::new();
            loop {
                if self.chars.peek().is_none() {
                    return Err(LexError::UnterminatedHereDoc);
                }
                let mut line = String::new();
                for c in self.chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                let compared = if doc.strip_tabs { line.trim_start_matches('\t') } else { line.as_str() };
                if compared == doc.delimiter {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if doc.expands && (body.contains('$') || body.contains('`')) {
                let depth = self.nested()?;
                let mut inner = Lexer { chars: body.chars().peekable(), depth, pending: Vec::new() };
                let mut word = Word::default();
                inner.double_quoted_body(&mut word, None)?;
                for sub in word.subs {
                    found.extend(sub);
                    found.push(Token::Op(Op::Separator));
                }
            }
        }
        Ok(found)
    }

    /// Reads one word, up to a blank or an operator.
    fn word(&mut self) -> Result<Word, LexError> {
        let mut word = Word::default();
        // Whether everything so far could be the NAME of `NAME=value`.
        let mut name_so_far = true;
        let mut brace_open = false;
        let mut bracket_open = false;
        while let Some(&c) = self.chars.peek() {
            if is_blank(c) || is_operator_start(c) {
                break;
            }
            match c {
                '\\' => {
                    self.chars.next();
                    match self.chars.next() {
                        Some('\n') => {}
                        Some(escaped) => {
                            word.text.push(escaped);
                            word.quoted = true;
                            name_so_far = false;
                        }
                        // A trailing backslash stands for itself.
                        None => word.text.push('\\'),
                    }
                }
                '\'' => {
                    self.chars.next();
                    word.quoted = true;
                    name_so_far = false;
                    self.single_quoted(&mut word.text)?;
                }
                '"' => {
                    self.chars.next();
                    word.quoted = true;
                    name_so_far = false;
                    self.double_quoted_body(&mut word, Some('"'))?;
                }
                '$' => {
                    name_so_far = false;
                    self.dollar(&mut word, false)?;
                }
                '`' => {
                    name_so_far = false;
                    self.chars.next();
                    self.backtick(&mut word)?;
                }
                '=' if name_so_far && !word.assignment && !word.text.is_empty() => {
                    self.chars.next();
                    word.assignment = !word.text.starts_with(|c: char| c.is_ascii_digit());
                    name_so_far = false;
                    word.text.push('=');
                }
                _ => {
                    self.chars.next();
                    if !is_name_char(c) {
                        name_so_far = false;
                    }
                    match c {
                        '*' | '?' => word.glob = true,
                        // `[` alone (the `test` program, `[[`) is literal;
                        // `[…]` is a bracket expression.
                        '[' => bracket_open = true,
                        ']' if bracket_open => word.glob = true,
                        '{' => brace_open = true,
                        '}' => brace_open = false,
                        // `{a,b}` and `{1..3}` expand to several words.
                        ',' if brace_open => word.dynamic = true,
                        '.' if brace_open && self.chars.peek() == Some(&'.') => word.dynamic = true,
                        _ => {}
                    }
                    word.text.push(c);
                }
            }
        }
        Ok(word)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), LexError> {
        for c in self.chars.by_ref() {
            if c == '\'' {
                return Ok(());
            }
            out.push(c);
        }
        Err(LexError::UnterminatedQuote)
    }

    /// The inside of `"…"` (after the opening quote) up to `close`, or the
    /// whole input when `close` is `None` (an expanded here-document body).
    fn double_quoted_body(&mut self, word: &mut Word, close: Option<char>) -> Result<(), LexError> {
        while let Some(&c) = self.chars.peek() {
            match c {
                c if Some(c) == close => {
                    self.chars.next();
                    return Ok(());
                }
                '\\' => {
                    self.chars.next();
                    match self.chars.next() {
                        Some('\n') => {}
                        Some(e @ ('$' | '`' | '"' | '\\')) => word.text.push(e),
                        Some(other) => {
                            word.text.push('\\');
                            word.text.push(other);
                        }
                        None => word.text.push('\\'),
                    }
                }
                '$' => self.dollar(word, true)?,
                '`' => {
                    self.chars.next();
                    self.backtick(word)?;
                }
                _ => {
                    self.chars.next();
                    word.text.push(c);
                }
            }
        }
        match close {
            Some(_) => Err(LexError::UnterminatedQuote),
            None => Ok(()),
        }
    }

    /// Everything starting with `$`.
    fn dollar(&mut self, word: &mut Word, in_double_quotes: bool) -> Result<(), LexError> {
        self.chars.next();
        match self.chars.peek().copied() {
            Some('(') => {
                self.chars.next();
                if self.eat('(') {
                    // `$((…))`: arithmetic. It can hold substitutions of
                    // its own; read it as a parenthesised command list so
                    // they are found, and keep the value dynamic.
                    let depth = self.nested()?;
                    let mut inner = Lexer { chars: self.chars.clone(), depth, pending: Vec::new() };
                    let sub = inner.list(Stop::Paren)?;
                    self.chars = inner.chars;
                    if !self.eat(')') {
                        return Err(LexError::UnterminatedSubstitution);
                    }
                    let subs = sub.into_iter().flat_map(|t| match t {
                        Token::Word(w) => w.subs,
                        Token::Redirect(_, w) => w.subs,
                        Token::Op(_) => Vec::new(),
                    });
                    word.subs.extend(subs);
                    word.text.push_str("$((…))");
                } else {
                    let depth = self.nested()?;
                    let mut inner = Lexer { chars: self.chars.clone(), depth, pending: Vec::new() };
                    let sub = inner.list(Stop::Paren)?;
                    self.chars = inner.chars;
                    word.subs.push(sub);
                    word.text.push_str("$(…)");
                }
                word.dynamic = true;
            }
            Some('{') => {
                self.chars.next();
                // `${…}`: may hold nested quotes and substitutions
                // (`${x:-$(cmd)}`); they are read like a double-quoted
                // string so the commands inside are found.
                let depth = self.nested()?;
                let mut inner = Lexer { chars: self.chars.clone(), depth, pending: Vec::new() };
                let mut param = Word::default();
                inner.parameter_body(&mut param)?;
                self.chars = inner.chars;
                word.subs.extend(param.subs);
                word.text.push_str("${");
                word.text.push_str(&param.text);
                word.text.push('}');
                word.dynamic = true;
            }
            Some('\'') if !in_double_quotes => {
                self.chars.next();
                word.quoted = true;
                self.ansi_c_quoted(&mut word.text)?;
            }
            Some('"') if !in_double_quotes => {
                self.chars.next();
                word.quoted = true;
                self.double_quoted_body(word, Some('"'))?;
            }
            Some(c) if is_name_char(c) => {
                word.text.push('$');
                let digit = c.is_ascii_digit();
                while let Some(&c) = self.chars.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    word.text.push(c);
                    self.chars.next();
                    // `$10` is `${1}0`.
                    if digit {
                        break;
                    }
                }
                word.dynamic = true;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '$' | '!' | '-')) => {
                self.chars.next();
                word.text.push('$');
                word.text.push(c);
                word.dynamic = true;
            }
            Some(_) | None => word.text.push('$'),
        }
        Ok(())
    }

    /// The inside of `${…}` after the opening brace, through the closing one.
    fn parameter_body(&mut self, word: &mut Word) -> Result<(), LexError> {
        let mut braces = 0_usize;
        while let Some(&c) = self.chars.peek() {
            match c {
                '}' => {
                    self.chars.next();
                    if braces == 0 {
                        return Ok(());
                    }
                    braces -= 1;
                    word.text.push(c);
                }
                '{' => {
                    self.chars.next();
                    braces += 1;
                    word.text.push(c);
                }
                '\\' => {
                    self.chars.next();
                    if let Some(e) = self.chars.next() {
                        word.text.push(e);
                    }
                }
                '\'' => {
                    self.chars.next();
                    self.single_quoted(&mut word.text)?;
                }
                '"' => {
                    self.chars.next();
                    self.double_quoted_body(word, Some('"'))?;
                }
                '$' => self.dollar(word, true)?,
                '`' => {
                    self.chars.next();
                    self.backtick(word)?;
                }
                _ => {
                    self.chars.next();
                    word.text.push(c);
                }
            }
        }
        Err(LexError::UnterminatedSubstitution)
    }

    /// `` `…` `` after the opening backtick: the old form of `$(…)`, whose
    /// body is unescaped (`\``, `\\`, `\$`) and then tokenized.
    fn backtick(&mut self, word: &mut Word) -> Result<(), LexError> {
        let mut body = String::new();
        loop {
            match self.chars.next() {
                None => return Err(LexError::UnterminatedSubstitution),
                Some('`') => break,
                Some('\\') => match self.chars.next() {
                    Some(e @ ('`' | '\\' | '$')) => body.push(e),
                    Some(other) => {
                        body.push('\\');
                        body.push(other);
                    }
                    None => return Err(LexError::UnterminatedSubstitution),
                },
                Some(c) => body.push(c),
            }
        }
        let sub = tokenize(&body, self.nested()?)?;
        word.subs.push(sub);
        word.text.push_str("`…`");
        word.dynamic = true;
        Ok(())
    }

    /// `$'…'` after the quote: bash's ANSI-C quoting, decoded, so that
    /// `$'\x72\x6d'` is read as `rm`.
    fn ansi_c_quoted(&mut self, out: &mut String) -> Result<(), LexError> {
        loop {
            match self.chars.next() {
                None => return Err(LexError::UnterminatedQuote),
                Some('\'') => return Ok(()),
                Some('\\') => {
                    let Some(e) = self.chars.next() else {
                        return Err(LexError::UnterminatedQuote);
                    };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'e' | 'E' => out.push('\u{1b}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        'x' => {
                            let code = self.radix_digits(16, 2);
                            push_code(out, code);
                        }
                        'u' => {
                            let code = self.radix_digits(16, 4);
                            push_code(out, code);
                        }
                        'U' => {
                            let code = self.radix_digits(16, 8);
                            push_code(out, code);
                        }
                        'c' => {
                            // `\cX`: a control character.
                            if let Some(x) = self.chars.next() {
                                push_code(out, Some(u32::from(x) & 0x1f));
                            }
                        }
                        '0'..='7' => {
                            let mut code = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match self.chars.peek().and_then(|c| c.to_digit(8)) {
                                    Some(d) => {
                                        code = code * 8 + d;
                                        self.chars.next();
                                    }
                                    None => break,
                                }
                            }
                            push_code(out, Some(code));
                        }
                        other => out.push(other),
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn radix_digits(&mut self, radix: u32, max: usize) -> Option<u32> {
        let mut value: Option<u32> = None;
        for _ in 0..max {
            match self.chars.peek().and_then(|c| c.to_digit(radix)) {
                Some(d) => {
                    value = Some(value.unwrap_or(0).saturating_mul(radix).saturating_add(d));
                    self.chars.next();
                }
                None => break,
            }
        }
        value
    }
}

fn push_code(out: &mut String, code: Option<u32>) {
    if let Some(c) = code.and_then(char::from_u32) {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<String> {
        tokenize(src, 0)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => w.text,
                Token::Op(op) => format!("<{op:?}>"),
                Token::Redirect(kind, w) => format!("<{kind:?} {}>", w.text),
            })
            .collect()
    }

    #[test]
    fn operators_need_no_spaces() {
        assert_eq!(words("true&&rm -rf /"), ["true", "<Separator>", "rm", "-rf", "/"]);
        assert_eq!(
            words("a|b;c||d&e"),
            ["a", "<Pipe>", "b", "<Separator>", "c", "<Separator>", "d", "<Separator>", "e"]
        );
        assert_eq!(words("echo hi>/dev/sda 2>&1"), ["echo", "hi", "<Output /dev/sda>", "<Output 1>"]);
    }

    #[test]
    fn quotes_are_removed() {
        assert_eq!(words(r#"'r'"m" -\rf "a b" c\ d"#), ["rm", "-rf", "a b", "c d"]);
        assert_eq!(words(r"$'\x72\x6d' $'\162m'"), ["rm", "rm"]);
        assert_eq!(words("echo # a comment\nls"), ["echo", "<Separator>", "ls"]);
    }

    #[test]
    fn substitutions_are_tokenized() {
        let tokens = tokenize("echo $(rm -rf / `shred x`) \"$(dd)\"", 0).unwrap();
        let Token::Word(w) = &tokens[1] else { panic!() };
        assert!(w.dynamic);
        assert_eq!(w.subs.len(), 1);
        let Token::Word(inner) = &w.subs[0][3] else { panic!("{:?}", w.subs[0]) };
        assert_eq!(inner.subs.len(), 1);
        let Token::Word(quoted) = &tokens[2] else { panic!() };
        assert_eq!(quoted.subs.len(), 1);
    }

    #[test]
    fn here_documents_are_skipped_but_their_substitutions_kept() {
        assert_eq!(
            words("cat <<EOF\nhello $(rm -rf /)\nEOF\nls"),
            ["cat", "<HereDoc { strip_tabs: false } EOF>", "<Separator>", "rm", "-rf", "/", "<Separator>", "ls"]
        );
        assert_eq!(words("cat <<'EOF'\n$(rm)\nEOF\nls").last().map(String::as_str), Some("ls"));
    }

    #[test]
    fn errors() {
        assert_eq!(tokenize("echo 'x", 0), Err(LexError::UnterminatedQuote));
        assert_eq!(tokenize("echo $(x", 0), Err(LexError::UnterminatedSubstitution));
        assert_eq!(tokenize("cat <<EOF\nx", 0), Err(LexError::UnterminatedHereDoc));
        assert_eq!(tokenize("echo >", 0), Err(LexError::MissingRedirectTarget));
        assert_eq!(tokenize(&"$(".repeat(100), 0), Err(LexError::TooDeep));
    }

    #[test]
    fn words_know_what_they_are() {
        let tokens = tokenize("A=1 {a,b} *.log $HOME", 0).unwrap();
        let w: Vec<&Word> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w),
                Token::Op(_) | Token::Redirect(..) => None,
            })
            .collect();
        assert!(w[0].assignment);
        assert!(w[1].dynamic);
        assert!(w[2].glob && !w[2].dynamic);
        assert!(w[3].dynamic);
    }
}
