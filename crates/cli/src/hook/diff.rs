//! A bounded line diff for file writes: what approvers read. The common
//! leading and trailing lines are dropped and the changed middle is shown
//! as `-`/`+` lines, cut at a byte budget (the payload carries a SHA-256
//! of the whole new content, so the cut never weakens what is approved).

/// The most diff text put in a payload.
pub const MAX_DIFF_BYTES: usize = 16 * 1024;

/// The diff of `old` → `new` and whether it was cut short.
pub fn bounded_diff(old: &str, new: &str) -> (String, bool) {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let prefix = old_lines.iter().zip(&new_lines).take_while(|(a, b)| a == b).count();
    let old_rest = &old_lines[prefix..];
    let new_rest = &new_lines[prefix..];
    let suffix = old_rest.iter().rev().zip(new_rest.iter().rev()).take_while(|(a, b)| a == b).count();
    let removed = &old_rest[..old_rest.len() - suffix];
    let added = &new_rest[..new_rest.len() - suffix];
    let mut out = Budget::new(MAX_DIFF_BYTES);
    out.push(&format!("@@ -{},{} +{},{} @@\n", prefix + 1, removed.len(), prefix + 1, added.len()));
    for line in removed {
        out.push(&format!("-{line}\n"));
    }
    for line in added {
        out.push(&format!("+{line}\n"));
    }
    out.finish()
}

/// Text cut at a byte budget, on a character boundary.
struct Budget {
    text: String,
    left: usize,
    cut: bool,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Self { text: String::new(), left: limit, cut: false }
    }

    fn push(&mut self, piece: &str) {
        if self.cut {
            return;
        }
        if piece.len() <= self.left {
            self.text.push_str(piece);
            self.left -= piece.len();
            return;
        }
        let mut end = self.left;
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&piece[..end]);
        self.text.push_str("\n… (diff cut short)\n");
        self.cut = true;
    }

    fn finish(self) -> (String, bool) {
        (self.text, self.cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_the_changed_middle() {
        let (diff, cut) = bounded_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(diff, "@@ -2,1 +2,1 @@\n-b\n+B\n");
        assert!(!cut);
        let (diff, _) = bounded_diff("", "x\ny\n");
        assert_eq!(diff, "@@ -1,0 +1,2 @@\n+x\n+y\n");
    }

    #[test]
    fn huge_changes_are_cut_on_a_character_boundary() {
        let new = "é".repeat(MAX_DIFF_BYTES);
        let (diff, cut) = bounded_diff("", &new);
        assert!(cut);
        assert!(diff.len() <= MAX_DIFF_BYTES + 64);
        assert!(diff.ends_with("(diff cut short)\n"));
    }
}
