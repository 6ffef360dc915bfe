//! A small deterministic generator for the codecs' randomised tests
//! (xorshift64*): the same inputs on every run, so a failure reproduces.

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub(crate) fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
        (0..self.below(max_len))
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}
