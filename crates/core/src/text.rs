//! Cutting text to a size, the one way every crate does it: the review card
//! and the chat channels (characters a message may hold), the console
//! (a line in a table) and the audit log (bytes a refusal record may
//! hold). A cut always falls on a character boundary, so no character is
//! split and the result is valid UTF-8.
//!
//! - [`truncate`]: at most `max` characters, the marker [`MARKER`]
//!   included, for text a person reads;
//! - [`prefix_within`]: the longest prefix whose characters' costs fit a
//!   budget (bytes once escaped, say), with no marker, for callers that
//!   report the cut their own way.

/// What [`truncate`] puts at the end of a text it cut: one character, an
/// ellipsis.
pub const MARKER: char = '…';

/// `text` cut to at most `max` characters, the marker included.
///
/// The rule: a text of at most `max` characters is returned whole;
/// a longer one becomes its first `max - 1` characters followed by
/// [`MARKER`], so the result is exactly `max` characters and a reader sees
/// that something was left out. `max == 0` leaves nothing, not even the
/// marker. Characters are Unicode scalar values (`char`), not bytes.
pub fn truncate(text: &str, max: usize) -> String {
    let Some(room) = max.checked_sub(1) else {
        return String::new();
    };
    let kept = prefix_within(text, room, |_| 1);
    // Only one character follows the kept part: the text fits whole.
    let rest = text.get(kept.len()..).unwrap_or_default();
    if rest.chars().nth(1).is_none() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(kept.len() + MARKER.len_utf8());
    out.push_str(kept);
    out.push(MARKER);
    out
}

/// The longest prefix of `text` whose characters' `cost`s add up to at
/// most `budget`; the whole text when it fits. Nothing marks the cut: the
/// caller compares lengths (`prefix.len() < text.len()`) to tell.
pub fn prefix_within(text: &str, budget: usize, cost: impl Fn(char) -> usize) -> &str {
    let mut used = 0usize;
    for (at, c) in text.char_indices() {
        used = used.saturating_add(cost(c));
        if used > budget {
            return text.get(..at).unwrap_or_default();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("", 5), "");
        assert_eq!(truncate("abc", 5), "abc");
    }

    #[test]
    fn the_exact_limit_is_not_cut() {
        assert_eq!(truncate("abcde", 5), "abcde");
        assert_eq!(truncate("abcdef", 5), "abcd…");
        assert_eq!(truncate("ab", 1), "…");
        assert_eq!(truncate("a", 1), "a");
    }

    #[test]
    fn zero_leaves_nothing() {
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn multi_byte_characters_count_once_and_are_never_split() {
        assert_eq!(truncate("ééééé", 5), "ééééé");
        assert_eq!(truncate("éééééé", 5), "éééé…");
        assert_eq!(truncate("日本語のテキスト", 4), "日本語…");
        // Four scalar values (two pairs of emoji and skin tone): cut by scalar.
        assert_eq!(truncate("👍🏽👍🏽", 3), "👍🏽…");
        assert_eq!(truncate("a👍b", 2), "a…");
        // A text whose marker is its own last character is still cut.
        assert_eq!(truncate("ab…c", 3), "ab…");
    }

    #[test]
    fn prefixes_fit_the_budget() {
        assert_eq!(prefix_within("", 0, |_| 1), "");
        assert_eq!(prefix_within("abc", 3, |_| 1), "abc");
        assert_eq!(prefix_within("abc", 2, |_| 1), "ab");
        assert_eq!(prefix_within("éé", 3, char::len_utf8), "é", "cut before the character that overflows");
        assert_eq!(prefix_within("a&b", 5, |c| if c == '&' { 5 } else { 1 }), "a");
        assert_eq!(prefix_within("abc", 0, |_| 1), "");
        assert_eq!(prefix_within("a\u{0}b", 2, |c| if c == '\u{0}' { 0 } else { 1 }), "a\u{0}b");
    }

    proptest! {
        #[test]
        fn truncation_keeps_a_prefix_within_the_limit(text in ".{0,40}", max in 0usize..50) {
            let out = truncate(&text, max);
            let chars = text.chars().count();
            prop_assert!(out.chars().count() <= max);
            if chars <= max {
                prop_assert_eq!(&out, &text);
            } else {
                prop_assert_eq!(out.chars().count(), max);
                let kept = out.strip_suffix(MARKER).unwrap_or_default();
                prop_assert!(text.starts_with(kept));
            }
        }

        #[test]
        fn a_prefix_is_the_longest_that_fits(text in ".{0,40}", budget in 0usize..120) {
            let prefix = prefix_within(&text, budget, char::len_utf8);
            prop_assert!(text.starts_with(prefix));
            prop_assert!(prefix.len() <= budget);
            if let Some(next) = text[prefix.len()..].chars().next() {
                prop_assert!(prefix.len() + next.len_utf8() > budget);
            }
        }
    }
}
