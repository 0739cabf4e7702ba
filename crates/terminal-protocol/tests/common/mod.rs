//! A tiny MessagePack builder for tests that need encodings our encoder never
//! writes: non-shortest widths, reordered or unknown keys, wrong types.
#![allow(dead_code)]

/// Appends msgpack items one call at a time.
#[derive(Default)]
pub struct Mp(pub Vec<u8>);

impl Mp {
    pub fn new() -> Self {
        Mp(Vec::new())
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn tag_be(self, tag: u8, be: &[u8]) -> Self {
        self.raw(&[tag]).raw(be)
    }
    pub fn fixmap(self, n: u8) -> Self {
        self.raw(&[0x80 | n])
    }
    pub fn map16(self, n: u16) -> Self {
        self.tag_be(0xde, &n.to_be_bytes())
    }
    pub fn map32(self, n: u32) -> Self {
        self.tag_be(0xdf, &n.to_be_bytes())
    }
    pub fn fixarray(self, n: u8) -> Self {
        self.raw(&[0x90 | n])
    }
    pub fn array16(self, n: u16) -> Self {
        self.tag_be(0xdc, &n.to_be_bytes())
    }
    pub fn array32(self, n: u32) -> Self {
        self.tag_be(0xdd, &n.to_be_bytes())
    }
    /// Shortest str form.
    pub fn s(self, s: &str) -> Self {
        let mut buf = Vec::new();
        rmp::encode::write_str(&mut buf, s).unwrap();
        self.raw(&buf)
    }
    pub fn str8(self, s: &str) -> Self {
        self.tag_be(0xd9, &[s.len() as u8]).raw(s.as_bytes())
    }
    pub fn str16(self, s: &str) -> Self {
        self.tag_be(0xda, &(s.len() as u16).to_be_bytes())
            .raw(s.as_bytes())
    }
    pub fn str32(self, s: &str) -> Self {
        self.tag_be(0xdb, &(s.len() as u32).to_be_bytes())
            .raw(s.as_bytes())
    }
    pub fn bin8(self, b: &[u8]) -> Self {
        self.tag_be(0xc4, &[b.len() as u8]).raw(b)
    }
    pub fn bin16(self, b: &[u8]) -> Self {
        self.tag_be(0xc5, &(b.len() as u16).to_be_bytes()).raw(b)
    }
    pub fn bin32(self, b: &[u8]) -> Self {
        self.tag_be(0xc6, &(b.len() as u32).to_be_bytes()).raw(b)
    }
    /// Shortest integer form.
    pub fn int(self, v: i64) -> Self {
        let mut buf = Vec::new();
        rmp::encode::write_sint(&mut buf, v).unwrap();
        self.raw(&buf)
    }
    pub fn u8(self, v: u8) -> Self {
        self.tag_be(0xcc, &[v])
    }
    pub fn u16(self, v: u16) -> Self {
        self.tag_be(0xcd, &v.to_be_bytes())
    }
    pub fn u32(self, v: u32) -> Self {
        self.tag_be(0xce, &v.to_be_bytes())
    }
    pub fn u64(self, v: u64) -> Self {
        self.tag_be(0xcf, &v.to_be_bytes())
    }
    pub fn i8(self, v: i8) -> Self {
        self.tag_be(0xd0, &v.to_be_bytes())
    }
    pub fn i16(self, v: i16) -> Self {
        self.tag_be(0xd1, &v.to_be_bytes())
    }
    pub fn i32(self, v: i32) -> Self {
        self.tag_be(0xd2, &v.to_be_bytes())
    }
    pub fn i64(self, v: i64) -> Self {
        self.tag_be(0xd3, &v.to_be_bytes())
    }
    pub fn f32(self, v: f32) -> Self {
        self.tag_be(0xca, &v.to_be_bytes())
    }
    pub fn f64(self, v: f64) -> Self {
        self.tag_be(0xcb, &v.to_be_bytes())
    }
    pub fn t(self) -> Self {
        self.raw(&[0xc3])
    }
    pub fn f(self) -> Self {
        self.raw(&[0xc2])
    }
    pub fn nil(self) -> Self {
        self.raw(&[0xc0])
    }
    /// A `key: value` pair whose value is built by `value`.
    pub fn kv(self, key: &str, value: impl FnOnce(Mp) -> Mp) -> Self {
        value(self.s(key))
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}
