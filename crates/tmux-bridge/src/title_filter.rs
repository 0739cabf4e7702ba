//! Removes tmux's window-title sequence `ESC k … ESC \` from pane output,
//! keeping state across chunks (spec terminal-protocol §6 "output streaming").

/// A title longer than this many buffered bytes is given up on and passed through.
pub const MAX_TITLE_BYTES: usize = 512;

const ESC: u8 = 0x1b;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Passing bytes through.
    Normal,
    /// The previous byte was an ESC outside a title (held back).
    Esc,
    /// Inside `ESC k …`; the bytes are buffered.
    Title,
    /// Inside a title and the previous byte was ESC.
    TitleEsc,
}

/// Streaming filter for `ESC k … ESC \`.
///
/// Pure and byte-at-a-time in effect, so any split of the input into chunks gives the
/// same concatenated output as one chunk. A lone ESC at the end of a chunk is
/// held until the next chunk decides what it starts. A title that grows past
/// [`MAX_TITLE_BYTES`] buffered bytes (counting `ESC k`) is emitted unchanged
/// and filtering returns to pass-through, so a stray `ESC k` cannot swallow
/// the stream.
#[derive(Debug, Clone)]
pub struct TitleFilter {
    state: State,
    buf: Vec<u8>,
}

impl Default for TitleFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl TitleFilter {
    /// A filter in pass-through state.
    pub fn new() -> Self {
        TitleFilter {
            state: State::Normal,
            buf: Vec::new(),
        }
    }

    /// Filters one chunk; the result may be empty (skip sending it then).
    ///
    /// Outside a title the bytes up to the next ESC are copied as one run
    /// (found with `memchr`): bulk output has few ESCs, and stepping through
    /// it byte by byte cost a tenth of the agent's CPU at bulk rates. Only
    /// ESCs and titles go through the state machine byte by byte, so the
    /// result is the same as stepping through every byte.
    pub fn filter(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut rest = input;
        while let Some((&first, tail)) = rest.split_first() {
            if self.state == State::Normal && first != ESC {
                let run = memchr::memchr(ESC, rest).unwrap_or(rest.len());
                out.extend_from_slice(&rest[..run]);
                rest = &rest[run..];
                continue;
            }
            self.step(first, &mut out);
            rest = tail;
        }
        out
    }

    /// Bytes held back so far (a trailing ESC or an unfinished title), for
    /// the end of a stream; the filter returns to pass-through.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = match self.state {
            State::Normal => Vec::new(),
            State::Esc => vec![ESC],
            State::Title | State::TitleEsc => std::mem::take(&mut self.buf),
        };
        self.state = State::Normal;
        self.buf.clear();
        held
    }

    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Normal => {
                if b == ESC {
                    self.state = State::Esc;
                } else {
                    out.push(b);
                }
            }
            State::Esc => {
                if b == b'k' {
                    self.buf.clear();
                    self.buf.extend_from_slice(&[ESC, b'k']);
                    self.state = State::Title;
                } else {
                    out.push(ESC);
                    self.state = State::Normal;
                    self.step(b, out);
                }
            }
            State::Title | State::TitleEsc => {
                if self.state == State::TitleEsc && b == b'\\' {
                    self.buf.clear();
                    self.state = State::Normal;
                    return;
                }
                self.buf.push(b);
                self.state = if b == ESC {
                    State::TitleEsc
                } else {
                    State::Title
                };
                if self.buf.len() > MAX_TITLE_BYTES {
                    out.append(&mut self.buf);
                    self.state = State::Normal;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(input: &[u8]) -> Vec<u8> {
        TitleFilter::new().filter(input)
    }

    #[test]
    fn strips_titles() {
        assert_eq!(all(b"a\x1bkvim\x1b\\b"), b"ab");
        assert_eq!(all(b"\x1bk\x1b\\"), b"");
        assert_eq!(all(b"\x1b[31mred\x1b[0m"), b"\x1b[31mred\x1b[0m");
        assert_eq!(all(b"\x1b\x1bkt\x1b\\x"), b"\x1bx");
        // An ESC inside the title that is not ST stays part of the title.
        assert_eq!(all(b"\x1bka\x1bb\x1b\\c"), b"c");
    }

    #[test]
    fn split_title_and_trailing_esc() {
        let mut f = TitleFilter::new();
        assert_eq!(f.filter(b"x\x1b"), b"x");
        assert_eq!(f.filter(b"kti"), b"");
        assert_eq!(f.filter(b"tle\x1b"), b"");
        assert_eq!(f.filter(b"\\y\x1b"), b"y");
        assert_eq!(f.filter(b"[1m"), b"\x1b[1m");
        assert_eq!(f.filter(b"\x1b"), b"");
        assert_eq!(f.finish(), b"\x1b");
    }

    #[test]
    fn safety_valve_passes_long_title_through() {
        let mut input = b"\x1bk".to_vec();
        input.extend(std::iter::repeat_n(b'a', 600));
        input.extend_from_slice(b"\x1b\\z");
        let out = all(&input);
        // The first 513 bytes come out unchanged, the rest passes through too.
        assert_eq!(out, input);
        // Exactly at the limit the title is still stripped.
        let mut ok = b"\x1bk".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_TITLE_BYTES - 3));
        ok.extend_from_slice(b"\x1b\\z");
        assert_eq!(all(&ok), b"z");
    }

    fn bytes_with_escapes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\x1bk".to_vec()),
            Just(b"\x1b\\".to_vec()),
            Just(vec![ESC]),
            Just(b"k".to_vec()),
            Just(b"\\".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(Just(b'a'), 0..300),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    /// The reference: every byte through the state machine.
    fn stepped(input: &[u8]) -> Vec<u8> {
        let mut f = TitleFilter::new();
        let mut out = Vec::new();
        for &b in input {
            f.step(b, &mut out);
        }
        out.extend(f.finish());
        out
    }

    proptest! {
        #[test]
        fn runs_give_the_byte_at_a_time_output(input in bytes_with_escapes()) {
            let mut f = TitleFilter::new();
            let mut got = f.filter(&input);
            got.extend(f.finish());
            prop_assert_eq!(got, stepped(&input));
        }

        #[test]
        fn any_split_gives_the_same_output(
            input in bytes_with_escapes(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut whole = TitleFilter::new();
            let mut expected = whole.filter(&input);
            expected.extend(whole.finish());

            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut f = TitleFilter::new();
            let mut got = Vec::new();
            let mut start = 0;
            for p in points {
                got.extend(f.filter(&input[start..p]));
                start = p;
            }
            got.extend(f.filter(&input[start..]));
            got.extend(f.finish());
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn output_never_contains_a_short_complete_title(input in bytes_with_escapes()) {
            let out = all(&input);
            // Whatever is left never grows: filtering only removes or holds bytes.
            prop_assert!(out.len() <= input.len());
        }
    }
}
