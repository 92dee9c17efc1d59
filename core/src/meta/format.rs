//! The frozen buffer's format (`writer` writes it, `reader` reads it):
//!
//! ```text
//! map    := count entry*            entry := key value
//! key    := varint (length << 1), UTF-8 bytes | varint (shared id << 1 | 1)
//! value  := NULL | FALSE | TRUE | UINT varint | INT i64-le | FLOAT f64-le | STR text
//!         | SHARED varint id | HEX varint n, n bytes (a lowercase hex text of 2n digits)
//!         | ARRAY count value* | OBJECT map
//! text   := varint length, UTF-8 bytes
//! ```
//!
//! Numbers keep serde_json's kind (unsigned, negative, float), so the map decoded compares
//! equal to the one encoded and prints the same.

pub(super) const NULL: u8 = 0;
pub(super) const FALSE: u8 = 1;
pub(super) const TRUE: u8 = 2;
pub(super) const UINT: u8 = 3;
pub(super) const INT: u8 = 4;
pub(super) const FLOAT: u8 = 5;
pub(super) const STR: u8 = 6;
pub(super) const ARRAY: u8 = 7;
pub(super) const OBJECT: u8 = 8;
pub(super) const SHARED_TEXT: u8 = 9;
pub(super) const HEX: u8 = 10;
