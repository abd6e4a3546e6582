//! Small helpers shared by the rooms: "did you mean" suggestions.

/// Levenshtein distance between two strings (bytes), with one row of memory.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if ca == cb { diag } else { 1 + diag.min(up).min(row[j]) };
            diag = up;
        }
    }
    row[b.len()]
}

/// Up to five candidates close to `wanted`, best first: small edit distance
/// (a quarter of the length, from 1 to 3), or sharing a prefix.
pub fn close_matches<S: AsRef<str>>(wanted: &str, candidates: &[S]) -> Vec<String> {
    let limit = (wanted.len() / 4).clamp(1, 3);
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| c.as_ref())
        .filter(|c| *c != wanted)
        .filter_map(|c| {
            // Cheap length check before the quadratic distance.
            if c.len().abs_diff(wanted.len()) > limit && !c.starts_with(wanted) {
                return None;
            }
            let d = edit_distance(wanted, c);
            if d <= limit {
                Some((d, c))
            } else if wanted.len() >= 3 && c.starts_with(wanted) {
                Some((limit + 1, c))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, c)| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("vfs_open", "vfs_opn"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn suggestions_best_first() {
        let names = ["vfs_open", "vfs_read", "do_sys_open", "vfs_opener_x", "ext4_file_open"];
        assert_eq!(close_matches("vfs_opn", &names)[0], "vfs_open");
        assert_eq!(close_matches("nativ", &["native", "main"]), vec!["native"]);
        assert!(close_matches("zzzzzz", &names).is_empty());
    }
}
