//! How a search that matches more packages than it counts reads only what its page needs:
//! one bounded query per rank, each served by an index, each giving its packages in name
//! order, taken best rank first until the page is full. Both backends follow this plan;
//! only their SQL differs.
//!
//! - Exact name and name prefix (ranks 0 and 1): a name can only start with every term
//!   when every term is a prefix of the longest one, [`common_prefix`]; those names are
//!   one range of the name index, [`prefix_end`], read in order, and the exact name (the
//!   prefix itself) is the first of them.
//! - In the name (rank 2) and in the text only (rank 3): the text index finds them. When
//!   it finds at most the search's `counted` of them, they are all read and put in name
//!   order; when it finds more, they are at least `counted` in every package of the
//!   registry, so reading the name index in order meets the page's packages after about
//!   `need × packages ÷ counted` rows, and that read is the one made. For the text rank,
//!   when the better ranks hold at most half of `counted`, the text rank holds the rest
//!   of more than `counted` matches, so it is read through the name index at once
//!   ([`text_rank_is_dense`]).
//!
//! The ranks are disjoint (a package has one), so the merged pages hold each package once.

/// The one name range that holds every name starting with all of `terms`: the longest
/// term, when every other one is a prefix of it (else no name starts with them all).
/// Without terms, every name (the empty prefix).
pub fn common_prefix(terms: &[String]) -> Option<&str> {
    if terms.is_empty() {
        return Some("");
    }
    let longest = terms.iter().max_by_key(|term| term.len())?;
    terms
        .iter()
        .all(|term| longest.starts_with(term.as_str()))
        .then_some(longest.as_str())
}

/// The first string after every string that starts with `prefix`, in byte order (the
/// order of SQLite's `BINARY` and PostgreSQL's `"C"` collation), or `None` when there is
/// none (an empty prefix, or one of only `char::MAX`).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogates, which are no `char`.
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The ranks read by their own queries once a search matches more than it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Every term in the name, not all of them at its start (rank 2).
    InName,
    /// Some term in the description or keywords only (rank 3).
    InText,
}

impl Tier {
    /// Both, best first.
    pub const ALL: [Tier; 2] = [Tier::InName, Tier::InText];

    /// The rank its packages have, as the search statements compute it.
    pub fn rank(self) -> u8 {
        match self {
            Tier::InName => 2,
            Tier::InText => 3,
        }
    }
}

/// Whether the text rank is known to hold enough of the matches to read it through the
/// name index at once: the search matched more than `counted`, and only `better` of them
/// (every one of the better ranks) ranked above it, so more than half of `counted` are in
/// it. That saves reading them through the text index only to learn there are many.
pub fn text_rank_is_dense(better: usize, counted: usize) -> bool {
    better <= counted / 2
}

/// What the text index gave for a tier, read with a limit of `counted + 1`: all of its
/// packages, put in name order and cut to `need`, or `None` when there were more than
/// `counted` (then the name index is read instead).
pub fn all_found<T>(
    mut found: Vec<(String, T)>,
    counted: usize,
    need: usize,
) -> Option<Vec<(String, T)>> {
    if found.len() > counted {
        return None;
    }
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    found.truncate(need);
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_range_of_the_terms() {
        struct Case {
            terms: &'static [&'static str],
            prefix: Option<&'static str>,
        }
        let cases = [
            Case {
                terms: &["pad", "padding"],
                prefix: Some("padding"),
            },
            Case {
                terms: &["pad", "left"],
                prefix: None,
            },
            Case {
                terms: &[],
                prefix: Some(""),
            },
            Case {
                terms: &["pad", "pad"],
                prefix: Some("pad"),
            },
        ];
        for case in cases {
            let terms: Vec<String> = case.terms.iter().map(|t| t.to_string()).collect();
            assert_eq!(common_prefix(&terms), case.prefix, "{:?}", case.terms);
        }
    }

    #[test]
    fn the_end_of_a_prefix_range() {
        struct Case {
            prefix: String,
            end: Option<String>,
        }
        let cases = [
            Case {
                prefix: "pad".into(),
                end: Some("pae".into()),
            },
            Case {
                prefix: "@a/".into(),
                end: Some("@a0".into()),
            },
            Case {
                prefix: format!("a{}", char::MAX),
                end: Some("b".into()),
            },
            Case {
                prefix: "\u{d7ff}".into(),
                end: Some("\u{e000}".into()),
            },
            Case {
                prefix: char::MAX.to_string(),
                end: None,
            },
            Case {
                prefix: String::new(),
                end: None,
            },
        ];
        for case in cases {
            assert_eq!(prefix_end(&case.prefix), case.end, "{:?}", case.prefix);
        }
    }
}
