//! Counting a reply marker in a byte stream that arrives in arbitrary chunks.

/// Counts non-overlapping occurrences of a pattern across chunks: a match split between two
/// reads is counted once, when it completes.
pub struct Scanner {
    pattern: Vec<u8>,
    /// The end of the previous chunk that could still start a match.
    carry: Vec<u8>,
    count: u64,
}

impl Scanner {
    pub fn new(pattern: &[u8]) -> Scanner {
        Scanner {
            pattern: pattern.to_vec(),
            carry: Vec::new(),
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let len = self.pattern.len();
        if len == 0 {
            return;
        }
        let mut hay = std::mem::take(&mut self.carry);
        hay.extend_from_slice(chunk);
        let mut at = 0;
        let mut consumed = 0;
        while at + len <= hay.len() {
            if hay[at..at + len] == self.pattern[..] {
                self.count = self.count.saturating_add(1);
                at += len;
                consumed = at;
            } else {
                at += 1;
            }
        }
        let keep_from = consumed.max(hay.len().saturating_sub(len - 1));
        self.carry = hay.split_off(keep_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_matches_split_across_chunks_once() {
        let mut s = Scanner::new(b"OK\n");
        s.feed(b"x OK\nO");
        assert_eq!(s.count(), 1);
        s.feed(b"K");
        assert_eq!(s.count(), 1);
        s.feed(b"\nOK\nOK");
        assert_eq!(s.count(), 3);
        s.feed(b"\n");
        assert_eq!(s.count(), 4);
    }

    #[test]
    fn self_overlapping_pattern_is_not_counted_twice() {
        let mut s = Scanner::new(b"aa");
        s.feed(b"a");
        s.feed(b"a");
        assert_eq!(s.count(), 1);
        s.feed(b"a");
        assert_eq!(s.count(), 1);
        s.feed(b"a");
        assert_eq!(s.count(), 2);
    }
}
