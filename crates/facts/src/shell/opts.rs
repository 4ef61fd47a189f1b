//! Options as a program reads them (`getopt_long`): combined short flags
//! (`-rf`), values attached or separate (`-uroot`, `-u root`), long
//! options by any unambiguous prefix (`--recur` is `--recursive`), values
//! after `=` or in the next word, `--` ending the options, and — for GNU
//! programs that permute — options after operands (`rm /srv -rf`).
//!
//! A program's options are described by a [`Spec`]. A word the spec does
//! not know (an unknown or ambiguous option, or an option word computed
//! at run time) is reported as [`Parsed::unknown`], so the caller can
//! fail closed instead of guessing where the operands start.

use super::lex::Word;

/// Whether a long option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg {
    /// `--force`.
    No,
    /// `--user root` or `--user=root`.
    Required,
    /// `--interactive[=WHEN]`: only an attached value.
    Optional,
}

/// The options of one program.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    /// One-letter options without a value.
    pub flags: &'static str,
    /// One-letter options that take a value (the rest of the word, or
    /// the next word).
    pub values: &'static str,
    /// One-letter options whose value is only ever attached (`-i{}`).
    pub optional: &'static str,
    /// Long options and whether they take a value.
    pub long: &'static [(&'static str, Arg)],
    /// Options may follow operands (GNU permutation); otherwise the first
    /// operand ends the options, as wrappers read them.
    pub permute: bool,
    /// Long options are not listed: any `--name` is a flag and any
    /// `--name=value` an option with a value (`valgrind`, `firejail`).
    pub loose_long: bool,
}

impl Spec {
    pub(super) const fn wrapper(
        flags: &'static str,
        values: &'static str,
        long: &'static [(&'static str, Arg)],
    ) -> Spec {
        Spec { flags, values, optional: "", long, permute: false, loose_long: false }
    }

    pub(super) const fn with_optional(self, optional: &'static str) -> Spec {
        Spec { optional, ..self }
    }

    pub(super) const fn loose(self) -> Spec {
        Spec { loose_long: true, ..self }
    }

    pub(super) const fn gnu(flags: &'static str, values: &'static str, long: &'static [(&'static str, Arg)]) -> Spec {
        Spec { flags, values, optional: "", long, permute: true, loose_long: false }
    }
}

/// An option's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Short(char),
    Long(&'static str),
    /// An unlisted long option of a program with [`Spec::loose_long`].
    Loose,
}

/// One option as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Opt {
    pub name: Name,
    pub value: Option<String>,
    /// The value is only known at run time.
    pub dynamic: bool,
}

/// A command's arguments, read with its [`Spec`].
#[derive(Debug, Default)]
pub(super) struct Parsed<'a, 'w> {
    pub opts: Vec<Opt>,
    pub operands: Vec<&'w Word>,
    /// Without permutation: the arguments from the first operand on.
    pub rest: &'a [&'w Word],
    /// Some option word is not one the program has, is ambiguous, lacks
    /// its value, or is computed.
    pub unknown: bool,
}

impl Parsed<'_, '_> {
    /// Whether the short option `short` or the long option `long` was given.
    pub(super) fn has(&self, short: Option<char>, long: Option<&str>) -> bool {
        self.opts.iter().any(|o| match o.name {
            Name::Short(c) => Some(c) == short,
            Name::Long(l) => Some(l) == long,
            Name::Loose => false,
        })
    }

    /// The values of the short option `short` or the long option `long`.
    pub(super) fn values<'s>(
        &'s self,
        short: Option<char>,
        long: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Opt> + 's {
        self.opts.iter().filter(move |o| match o.name {
            Name::Short(c) => Some(c) == short,
            Name::Long(l) => Some(l) == long,
            Name::Loose => false,
        })
    }
}

/// Resolves a long option name as `getopt_long` does: an exact match, or
/// else a prefix of exactly one option.
pub(super) fn resolve_long(given: &str, long: &'static [(&'static str, Arg)]) -> Option<(&'static str, Arg)> {
    if given.is_empty() {
        return None;
    }
    if let Some(exact) = long.iter().find(|(name, _)| *name == given) {
        return Some(*exact);
    }
    let mut matches = long.iter().filter(|(name, _)| name.starts_with(given));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(*only),
        (Some(_), Some(_)) | (None, _) => None,
    }
}

/// Reads `args` (the words after the program name) with `spec`.
pub(super) fn parse<'a, 'w>(args: &'a [&'w Word], spec: &Spec) -> Parsed<'a, 'w> {
    let mut parsed = Parsed { rest: &[], ..Parsed::default() };
    let mut i = 0;
    let mut options_done = false;
    while let Some(&arg) = args.get(i) {
        i += 1;
        let t = arg.text.as_str();
        if options_done || t == "-" || !t.starts_with('-') {
            if !options_done && arg.dynamic && !spec.permute {
                // `sudo $OPTS rm`: the word may be options or the program.
                parsed.unknown = true;
            }
            if !spec.permute {
                parsed.rest = &args[i - 1..];
                parsed.operands.extend(args[i - 1..].iter().copied());
                return parsed;
            }
            if arg.dynamic && !options_done {
                parsed.unknown = true;
            }
            parsed.operands.push(arg);
            continue;
        }
        if t == "--" {
            options_done = true;
            if !spec.permute {
                parsed.rest = args.get(i..).unwrap_or(&[]);
                parsed.operands.extend(parsed.rest.iter().copied());
                return parsed;
            }
            continue;
        }
        if arg.dynamic {
            parsed.unknown = true;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            if spec.loose_long && resolve_long(name, spec.long).is_none() {
                let value = inline.map(str::to_owned);
                parsed.opts.push(Opt { name: Name::Loose, value, dynamic: arg.dynamic });
                continue;
            }
            match resolve_long(name, spec.long) {
                Some((full, kind)) => {
                    let value = match (kind, inline) {
                        (Arg::No, Some(_)) => {
                            parsed.unknown = true;
                            None
                        }
                        (Arg::No | Arg::Optional, None) => None,
                        (Arg::Required | Arg::Optional, Some(v)) => Some((v.to_owned(), arg.dynamic)),
                        (Arg::Required, None) => {
                            let next = args.get(i).map(|w| (w.text.clone(), w.dynamic));
                            i += 1;
                            if next.is_none() {
                                parsed.unknown = true;
                            }
                            next
                        }
                    };
                    let (value, dynamic) = match value {
                        Some((v, d)) => (Some(v), d),
                        None => (None, false),
                    };
                    parsed.opts.push(Opt { name: Name::Long(full), value, dynamic });
                }
                None => parsed.unknown = true,
            }
            continue;
        }
        let cluster = &t[1..];
        for (pos, c) in cluster.char_indices() {
            if spec.values.contains(c) {
                let attached = &cluster[pos + c.len_utf8()..];
                let (value, dynamic) = if attached.is_empty() {
                    let next = args.get(i).map(|w| (w.text.clone(), w.dynamic));
                    i += 1;
                    match next {
                        Some((v, d)) => (Some(v), d),
                        None => {
                            parsed.unknown = true;
                            (None, false)
                        }
                    }
                } else {
                    (Some(attached.to_owned()), arg.dynamic)
                };
                parsed.opts.push(Opt { name: Name::Short(c), value, dynamic });
                break;
            }
            if spec.optional.contains(c) {
                let attached = &cluster[pos + c.len_utf8()..];
                let value = (!attached.is_empty()).then(|| attached.to_owned());
                parsed.opts.push(Opt { name: Name::Short(c), value, dynamic: arg.dynamic });
                break;
            }
            if !spec.flags.contains(c) {
                parsed.unknown = true;
            }
            parsed.opts.push(Opt { name: Name::Short(c), value: None, dynamic: false });
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    const RM: Spec = Spec::gnu(
        "fiIrRdv",
        "",
        &[
            ("force", Arg::No),
            ("interactive", Arg::Optional),
            ("one-file-system", Arg::No),
            ("no-preserve-root", Arg::No),
            ("preserve-root", Arg::Optional),
            ("recursive", Arg::No),
            ("dir", Arg::No),
            ("verbose", Arg::No),
        ],
    );

    fn words(args: &[&str]) -> Vec<Word> {
        args.iter().map(|a| Word::literal(a)).collect()
    }

    #[test]
    fn long_prefixes_clusters_and_permutation() {
        let w = words(&["/srv", "--recur", "--no-p", "-fv", "--", "-r"]);
        let refs: Vec<&Word> = w.iter().collect();
        let p = parse(&refs, &RM);
        assert!(p.has(None, Some("recursive")) && p.has(None, Some("no-preserve-root")));
        assert!(p.has(Some('f'), None) && p.has(Some('v'), None) && !p.has(Some('r'), None));
        let operands: Vec<&str> = p.operands.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(operands, ["/srv", "-r"]);
        assert!(!p.unknown);
        // `--d` is `--dir` only; `--p` is ambiguous? No: only preserve-root starts with p.
        assert_eq!(resolve_long("p", RM.long).map(|(n, _)| n), Some("preserve-root"));
        assert_eq!(resolve_long("no", RM.long).map(|(n, _)| n), Some("no-preserve-root"));
        assert_eq!(resolve_long("x", RM.long), None);
        let w = words(&["--in", "x"]);
        let refs: Vec<&Word> = w.iter().collect();
        assert!(!parse(&refs, &RM).unknown);
    }

    #[test]
    fn wrappers_stop_at_the_first_operand() {
        const SUDO: Spec = Spec::wrapper("En", "u", &[("user", Arg::Required), ("login", Arg::No)]);
        let w = words(&["-nu", "root", "--us=x", "--user", "y", "rm", "-rf", "/"]);
        let refs: Vec<&Word> = w.iter().collect();
        let p = parse(&refs, &SUDO);
        let rest: Vec<&str> = p.rest.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(rest, ["rm", "-rf", "/"]);
        let users: Vec<&str> = p.values(Some('u'), Some("user")).filter_map(|o| o.value.as_deref()).collect();
        assert_eq!(users, ["root", "x", "y"]);
        assert!(!p.unknown);
        let w = words(&["-Z", "rm"]);
        let refs: Vec<&Word> = w.iter().collect();
        assert!(parse(&refs, &SUDO).unknown);
    }
}
