//! "Did you mean" suggestions: Levenshtein distance and a ranking of close names,
//! shared by every room that names things back to the user.

use std::collections::BTreeSet;

/// Most suggestions returned by [`close_matches`].
const MAX_SUGGESTIONS: usize = 5;

/// Levenshtein distance (insertions, deletions, substitutions; one each) between
/// the bytes of `a` and `b`, computed with a single row of the table.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // prev[j] = distance between the first i bytes of a and the first j of b.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = prev[0];
        prev[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = prev[j + 1];
            let substitute = diagonal + usize::from(ca != cb);
            prev[j + 1] = substitute.min(above + 1).min(prev[j] + 1);
            diagonal = above;
        }
    }
    prev[b.len()]
}

/// Up to five names from `candidates` close to `wanted`, best first.
///
/// A name is close when its edit distance is at most a fifth of `wanted`'s
/// length (1 to 3: kernel and tracefs names share long prefixes, so a looser bound
/// suggests unrelated names, such as `bpf` for `opn`), or when one of the two
/// names starts with the other (for names of 3 bytes or more). Ranking: smaller distance first, then shorter name,
/// then alphabetical. `wanted` itself is never suggested.
pub fn close_matches<'a, I>(wanted: &str, candidates: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (wanted.len() / 5).clamp(1, 3);
    let mut ranked = BTreeSet::new();
    for name in candidates {
        if name == wanted || name.is_empty() {
            continue;
        }
        if let Some(score) = closeness(wanted, name, limit) {
            ranked.insert((score, name.len(), name));
        }
    }
    ranked.into_iter().take(MAX_SUGGESTIONS).map(|(_, _, n)| n.to_string()).collect()
}

/// The rank of `name` as a suggestion for `wanted` (lower is better), or None.
fn closeness(wanted: &str, name: &str, limit: usize) -> Option<usize> {
    let prefix = wanted.len() >= 3 && (name.starts_with(wanted) || wanted.starts_with(name));
    // Cheap length test before the quadratic distance.
    if name.len().abs_diff(wanted.len()) > limit {
        return prefix.then_some(limit + 1);
    }
    let d = edit_distance(wanted, name);
    if d <= limit {
        Some(d)
    } else {
        prefix.then_some(limit + 1)
    }
}

/// Simple glob: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Whether a name is a pattern (`with_*`, `vfs_op?n`) rather than one name.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_exact() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abcd"), 4);
        assert_eq!(edit_distance("nativ", "native"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert_eq!(edit_distance("open", "open64"), 2);
        assert_eq!(edit_distance("with_asm", "with_syscall"), 6);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggestions_rank_by_distance_then_length() {
        let names = ["native", "natives", "main", "with_asm", "nat", "nativ"];
        assert_eq!(close_matches("nativ", names), vec!["native", "nat", "natives"]);
    }

    #[test]
    fn prefix_matches_beyond_the_distance_limit() {
        let names = ["with_syscall", "with_asm", "native"];
        // "with" is 8 edits from with_syscall but is its prefix.
        assert_eq!(close_matches("with", names), vec!["with_asm", "with_syscall"]);
    }

    #[test]
    fn at_most_five_and_never_the_name_itself() {
        let names = ["ab1", "ab2", "ab3", "ab4", "ab5", "ab6", "ab"];
        assert_eq!(close_matches("ab", names), vec!["ab1", "ab2", "ab3", "ab4", "ab5"]);
        assert!(close_matches("zzzzzz", ["native", "main"]).is_empty());
    }
}
