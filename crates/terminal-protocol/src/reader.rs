//! A bounds-checked cursor over one MessagePack message, and the field path
//! used in error messages. Every length read from the input is checked against
//! the bytes that remain before anything is sliced, so nothing is allocated
//! from a claimed length and nothing can panic.

use rmp::Marker;

use crate::error::DecodeError;
use crate::limits::MAX_NESTING_DEPTH;

/// Where in the message a value sits, rendered like `attach.cols` or
/// `sessions.sessions[0].windows[1].id`. Lives on the stack; rendered only
/// when an error is built.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    /// The message itself; the name is its `type` ("" before it is known).
    Root(&'static str),
    /// A map entry.
    Key(&'p Path<'p>, &'p str),
    /// An array element.
    Index(&'p Path<'p>, usize),
}

/// Keys echoed into error messages are cut to this many bytes.
const MAX_KEY_ECHO: usize = 64;

impl Path<'_> {
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        if out.is_empty() {
            out.push_str("message");
        }
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root(name) => out.push_str(name),
            Path::Key(parent, key) => {
                parent.render_into(out);
                if !out.is_empty() {
                    out.push('.');
                }
                if key.len() <= MAX_KEY_ECHO && !key.chars().any(char::is_control) {
                    out.push_str(key);
                } else {
                    out.push_str("<key>");
                }
            }
            Path::Index(parent, i) => {
                parent.render_into(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }

    pub(crate) fn malformed(&self, reason: &'static str) -> DecodeError {
        DecodeError::Malformed {
            field: self.render(),
            reason,
        }
    }

    pub(crate) fn wrong(&self, expected: &'static str) -> DecodeError {
        DecodeError::WrongType {
            field: self.render(),
            expected,
        }
    }
}

const TRUNCATED: &str = "message ends early";

/// Cursor over the message bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, path: &Path<'_>) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(path.malformed(TRUNCATED));
        }
        let start = self.pos;
        self.pos += n;
        self.buf
            .get(start..self.pos)
            .ok_or_else(|| path.malformed(TRUNCATED))
    }

    fn byte(&mut self, path: &Path<'_>) -> Result<u8, DecodeError> {
        Ok(self.take(1, path)?[0])
    }

    fn be<const N: usize>(&mut self, path: &Path<'_>) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, path)?);
        Ok(out)
    }

    fn u8(&mut self, path: &Path<'_>) -> Result<usize, DecodeError> {
        Ok(usize::from(self.byte(path)?))
    }

    fn u16(&mut self, path: &Path<'_>) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.be(path)?)))
    }

    fn u32(&mut self, path: &Path<'_>) -> Result<usize, DecodeError> {
        let v = u32::from_be_bytes(self.be(path)?);
        // A length that does not fit usize cannot fit the remaining input either.
        usize::try_from(v).map_err(|_| path.malformed(TRUNCATED))
    }

    fn marker(&mut self, path: &Path<'_>) -> Result<Marker, DecodeError> {
        Ok(Marker::from_u8(self.byte(path)?))
    }

    /// Next marker without consuming it.
    pub(crate) fn peek(&self) -> Option<Marker> {
        self.buf.get(self.pos).map(|b| Marker::from_u8(*b))
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit.
    fn check_count(
        &self,
        count: usize,
        min_size: usize,
        path: &Path<'_>,
    ) -> Result<usize, DecodeError> {
        match count.checked_mul(min_size) {
            Some(need) if need <= self.remaining() => Ok(count),
            _ => Err(path.malformed(TRUNCATED)),
        }
    }

    /// A map header; returns the number of entries (each at least 2 bytes).
    pub(crate) fn map_len(&mut self, path: &Path<'_>) -> Result<usize, DecodeError> {
        let n = match self.marker(path)? {
            Marker::FixMap(n) => usize::from(n),
            Marker::Map16 => self.u16(path)?,
            Marker::Map32 => self.u32(path)?,
            _ => return Err(path.wrong("a map")),
        };
        self.check_count(n, 2, path)
    }

    /// An array header; returns the number of items (each at least 1 byte).
    pub(crate) fn array_len(&mut self, path: &Path<'_>) -> Result<usize, DecodeError> {
        let n = match self.marker(path)? {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => self.u16(path)?,
            Marker::Array32 => self.u32(path)?,
            _ => return Err(path.wrong("an array")),
        };
        self.check_count(n, 1, path)
    }

    /// Length of a str whose marker was just read, or `None` if it is not a str.
    fn str_len(&mut self, marker: Marker, path: &Path<'_>) -> Result<Option<usize>, DecodeError> {
        Ok(Some(match marker {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => self.u8(path)?,
            Marker::Str16 => self.u16(path)?,
            Marker::Str32 => self.u32(path)?,
            _ => return Ok(None),
        }))
    }

    /// A UTF-8 str, any width.
    pub(crate) fn str(&mut self, path: &Path<'_>) -> Result<&'a str, DecodeError> {
        let marker = self.marker(path)?;
        let Some(len) = self.str_len(marker, path)? else {
            return Err(path.wrong("a string"));
        };
        std::str::from_utf8(self.take(len, path)?).map_err(|_| path.malformed("invalid UTF-8"))
    }

    /// A map key: the raw bytes if it is a str; any other key is skipped and
    /// reported as `None` (such keys are unknown by definition).
    pub(crate) fn key(
        &mut self,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.peek() {
            Some(Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) => {
                let marker = self.marker(path)?;
                let len = self.str_len(marker, path)?.unwrap_or(0);
                Ok(Some(self.take(len, path)?))
            }
            _ => {
                self.skip(path, depth)?;
                Ok(None)
            }
        }
    }

    /// A bin payload (never a str), any width.
    pub(crate) fn bin(&mut self, path: &Path<'_>) -> Result<&'a [u8], DecodeError> {
        let len = match self.marker(path)? {
            Marker::Bin8 => self.u8(path)?,
            Marker::Bin16 => self.u16(path)?,
            Marker::Bin32 => self.u32(path)?,
            _ => return Err(path.wrong("bytes (msgpack bin)")),
        };
        self.take(len, path)
    }

    /// An integer of any width; floats and everything else are rejected.
    pub(crate) fn int(&mut self, path: &Path<'_>) -> Result<i128, DecodeError> {
        Ok(match self.marker(path)? {
            Marker::FixPos(v) => i128::from(v),
            Marker::FixNeg(v) => i128::from(v),
            Marker::U8 => i128::from(u8::from_be_bytes(self.be(path)?)),
            Marker::U16 => i128::from(u16::from_be_bytes(self.be(path)?)),
            Marker::U32 => i128::from(u32::from_be_bytes(self.be(path)?)),
            Marker::U64 => i128::from(u64::from_be_bytes(self.be(path)?)),
            Marker::I8 => i128::from(i8::from_be_bytes(self.be(path)?)),
            Marker::I16 => i128::from(i16::from_be_bytes(self.be(path)?)),
            Marker::I32 => i128::from(i32::from_be_bytes(self.be(path)?)),
            Marker::I64 => i128::from(i64::from_be_bytes(self.be(path)?)),
            _ => return Err(path.wrong("an integer")),
        })
    }

    /// msgpack true / false.
    pub(crate) fn bool(&mut self, path: &Path<'_>) -> Result<bool, DecodeError> {
        match self.marker(path)? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(path.wrong("a boolean")),
        }
    }

    /// Skips one value of any type. `depth` is how many containers enclose it;
    /// entering one more than [`MAX_NESTING_DEPTH`] is an error.
    pub(crate) fn skip(&mut self, path: &Path<'_>, depth: usize) -> Result<(), DecodeError> {
        let marker = self.marker(path)?;
        let len = match marker {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                0
            }
            Marker::U8 | Marker::I8 => 1,
            Marker::U16 | Marker::I16 => 2,
            Marker::U32 | Marker::I32 | Marker::F32 => 4,
            Marker::U64 | Marker::I64 | Marker::F64 => 8,
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 | Marker::Bin8 => self.u8(path)?,
            Marker::Str16 | Marker::Bin16 => self.u16(path)?,
            Marker::Str32 | Marker::Bin32 => self.u32(path)?,
            // Ext payloads carry a 1-byte type tag before the data.
            Marker::FixExt1 => 2,
            Marker::FixExt2 => 3,
            Marker::FixExt4 => 5,
            Marker::FixExt8 => 9,
            Marker::FixExt16 => 17,
            Marker::Ext8 => self.u8(path)?.saturating_add(1),
            Marker::Ext16 => self.u16(path)?.saturating_add(1),
            Marker::Ext32 => self.u32(path)?.saturating_add(1),
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                self.pos -= 1;
                let n = self.array_len(path)?;
                return self.skip_items(n, path, depth);
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                self.pos -= 1;
                let n = self.map_len(path)?;
                return self.skip_items(n.saturating_mul(2), path, depth);
            }
            Marker::Reserved => return Err(path.malformed("invalid msgpack byte 0xc1")),
        };
        self.take(len, path).map(|_| ())
    }

    fn skip_items(&mut self, n: usize, path: &Path<'_>, depth: usize) -> Result<(), DecodeError> {
        if depth >= MAX_NESTING_DEPTH {
            return Err(path.malformed("nested too deeply"));
        }
        for _ in 0..n {
            self.skip(path, depth + 1)?;
        }
        Ok(())
    }
}
