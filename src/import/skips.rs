//! The records an import could not take. Every one is counted; the first [`KEPT`] are kept to
//! be named, each reason cut to [`REASON_CHARS`]: an input of nothing but bad records (or one
//! bad field of megabytes quoted in its reason) costs a bounded summary, whatever its size.

use std::fmt;

/// Most skipped records named in a summary; the rest are only counted.
pub const KEPT: usize = 1_000;
/// Most characters of one reason.
pub const REASON_CHARS: usize = 300;

/// A record that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Line number in a file; `None` for a database row.
    pub line: Option<u64>,
    pub id: Option<u64>,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.id) {
            (Some(line), Some(id)) => write!(f, "skipped line {line} (id {id}): {}", self.reason),
            (Some(line), None) => write!(f, "skipped line {line}: {}", self.reason),
            (None, Some(id)) => write!(f, "skipped id {id}: {}", self.reason),
            (None, None) => write!(f, "skipped: {}", self.reason),
        }
    }
}

/// The skipped records of one import: all counted, the first [`KEPT`] named.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skips {
    named: Vec<Skipped>,
    total: u64,
}

impl Skips {
    pub fn push(&mut self, mut skipped: Skipped) {
        self.total += 1;
        if self.named.len() < KEPT {
            if let Some((cut, _)) = skipped.reason.char_indices().nth(REASON_CHARS) {
                skipped.reason.truncate(cut);
                skipped.reason.push('…');
            }
            self.named.push(skipped);
        }
    }

    /// How many records were skipped.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The skipped records kept to be named, in the order they were met.
    pub fn named(&self) -> &[Skipped] {
        &self.named
    }

    /// Skipped records counted but not named.
    pub fn unnamed(&self) -> u64 {
        self.total - self.named.len() as u64
    }
}

impl Extend<Skipped> for Skips {
    fn extend<I: IntoIterator<Item = Skipped>>(&mut self, records: I) {
        for skipped in records {
            self.push(skipped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(n: u64, reason: String) -> Skipped {
        Skipped {
            line: Some(n),
            id: None,
            reason,
        }
    }

    #[test]
    fn all_are_counted_and_the_first_are_named() {
        let mut skips = Skips::default();
        skips.extend((1..=KEPT as u64 + 5).map(|n| skip(n, "bad".into())));
        assert_eq!(skips.total(), KEPT as u64 + 5);
        assert_eq!(skips.named().len(), KEPT);
        assert_eq!(skips.named()[0].line, Some(1));
        assert_eq!(skips.unnamed(), 5);
    }

    #[test]
    fn a_long_reason_is_cut() {
        let mut skips = Skips::default();
        skips.push(skip(1, "ạ".repeat(100_000)));
        let reason = &skips.named()[0].reason;
        assert_eq!(reason.chars().count(), REASON_CHARS + 1);
        assert!(reason.ends_with('…'));
    }
}
