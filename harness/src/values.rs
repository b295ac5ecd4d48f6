//! The bytes of values: a workload gives only their lengths.

/// Letters for values: never parsed as integers.
const LETTERS: &[u8; 26] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Digits for values, starting with 1 so that no value has a leading zero.
const DIGITS: &[u8; 10] = b"1234567890";

/// What value bytes look like.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueBytes {
    /// `ABC...Z` repeated: never an integer, so Redis stores every value as a string.
    #[default]
    Letters,
    /// `1234567890...` (a leading 1, never 0): values of up to 19 digits are integers, which
    /// Redis stores encoded (and shares below 10,000), and incr/decr succeed on them.
    Digits,
}

impl ValueBytes {
    /// The name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            ValueBytes::Letters => "letters",
            ValueBytes::Digits => "digits",
        }
    }

    /// Byte `i` of every value.
    #[inline]
    pub fn byte(self, i: usize) -> u8 {
        match self {
            ValueBytes::Letters => LETTERS[i % 26],
            ValueBytes::Digits => DIGITS[i % 10],
        }
    }

    /// A value of `len` bytes.
    pub fn value(self, len: usize) -> Vec<u8> {
        (0..len).map(|i| self.byte(i)).collect()
    }
}

/// Value bytes grown on demand: the value of every length is a prefix of the longest.
#[derive(Debug)]
pub struct Values {
    kind: ValueBytes,
    bytes: Vec<u8>,
}

impl Values {
    /// No bytes yet.
    pub fn new(kind: ValueBytes) -> Values {
        Values {
            kind,
            bytes: Vec::new(),
        }
    }

    /// The value of `len` bytes.
    #[inline]
    pub fn get(&mut self, len: u32) -> &[u8] {
        let len = len as usize;
        if len > self.bytes.len() {
            self.grow(len);
        }
        &self.bytes[..len]
    }

    #[cold]
    fn grow(&mut self, len: usize) {
        let start = self.bytes.len();
        let kind = self.kind;
        self.bytes.reserve(len - start);
        self.bytes.extend((start..len).map(|i| kind.byte(i)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_prefixes_of_one_pattern() {
        let mut v = Values::new(ValueBytes::Letters);
        assert_eq!(v.get(3), b"ABC");
        assert_eq!(v.get(28), b"ABCDEFGHIJKLMNOPQRSTUVWXYZAB");
        assert_eq!(v.get(2), b"AB");
        let mut d = Values::new(ValueBytes::Digits);
        assert_eq!(d.get(12), b"123456789012");
        assert_eq!(ValueBytes::Digits.value(3), b"123");
    }
}
