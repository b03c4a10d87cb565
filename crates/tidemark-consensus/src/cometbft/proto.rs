//! A tiny protobuf writer and reader: just what canonical sign bytes need.
//!
//! Invariants: the writer emits fields in the order it is called, omits
//! proto3 default scalars only where the caller asks (`*_nonzero` /
//! non-empty methods) and never fails; the reader never panics and never
//! reads past its input, whatever the bytes.

/// Protobuf wire types used here.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Appends protobuf fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.uvarint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A varint field (int32/int64/uint32/enum; negatives as 10 bytes),
    /// omitted when zero.
    pub(crate) fn varint_nonzero(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, VARINT);
            self.uvarint(v as u64);
        }
    }

    /// An sfixed64 field, omitted when zero.
    pub(crate) fn sfixed64_nonzero(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A bytes or string field, omitted when empty.
    pub(crate) fn bytes_nonempty(&mut self, field: u32, v: &[u8]) {
        if !v.is_empty() {
            self.message(field, v);
        }
    }

    /// An embedded message, always emitted (even when empty).
    pub(crate) fn message(&mut self, field: u32, encoded: &[u8]) {
        self.key(field, LEN);
        self.uvarint(encoded.len() as u64);
        self.buf.extend_from_slice(encoded);
    }
}

/// `encoded` with its uvarint length prefix (protobuf's length-delimited form).
pub(crate) fn length_delimited(encoded: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.uvarint(encoded.len() as u64);
    w.buf.extend_from_slice(encoded);
    w.buf
}

/// A field's value as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Reads protobuf fields from a slice.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.rest.split_first()?;
            self.rest = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    /// Reads a length-delimited envelope and returns its body; `None`
    /// unless the length covers the rest of the input exactly.
    pub(crate) fn length_delimited(mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.uvarint()?).ok()?;
        (self.rest.len() == len).then_some(self.rest)
    }

    /// True when every field was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next field; `None` on malformed input (call only while
    /// [`Reader::is_empty`] is false).
    pub(crate) fn field(&mut self) -> Option<(u32, Value<'a>)> {
        let key = self.uvarint()?;
        let field = u32::try_from(key >> 3).ok()?;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.uvarint()?),
            FIXED64 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            FIXED32 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            LEN => {
                let len = usize::try_from(self.uvarint()?).ok()?;
                Value::Bytes(self.take(len)?)
            }
            _ => return None,
        };
        Some((field, value))
    }
}
