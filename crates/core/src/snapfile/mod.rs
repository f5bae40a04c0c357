//! The `.hlsnap` snapshot file: a [`Graph`] on disk, compact, checksummed and versioned, so a
//! snapshot taken on a production machine can be analysed elsewhere, later, by a newer heaplens.
//! This documentation is the format's specification.
//!
//! Non-goals: random access (a snapshot is always loaded whole, as every analysis needs the
//! whole graph), appending to a file, and reading other tools' formats. Files of another format
//! version are refused with [`Error::Version`]; every released version keeps a golden file under
//! `tests/data/` that the tests load.
//!
//! Design: the file is one small uncompressed header followed by one zstd frame. The header can
//! be read (and its checksum checked) without decompressing anything, so a damaged header is
//! reported as such and a newer format version as that. The body is streamed: the writer encodes
//! it section by section into small chunks that go through the zstd encoder, and the reader
//! decodes it chunk by chunk straight into the graph's arrays, so neither side holds a copy of
//! the file or a second copy of the graph. Encoding and compression (decompression and decoding,
//! when reading) take about as long as each other, so each runs on its own thread, with a few
//! chunks in flight between them; on a heap of ten million objects that takes a third off the
//! time of a save and a fifth off a load (`examples/snapfile_bench.rs` measures both).
//!
//! Inside the body, per-node facts are stored column by column (all addresses, then all types,
//! ...) and each column in the form that compresses best: addresses and edge targets as small
//! signed deltas, labels as deltas from the previous label of the same node (list items `[0]`,
//! `[1]`, `[2]` become a run of ones, and objects of one class repeat one run). The encoding is
//! hand-written rather than derived (serde, bincode) because on a ten-million-object heap the
//! layout is the point.
//!
//! Reading never trusts the file: every count is checked against the limits of the graph model,
//! strings against [`MAX_STRING_BYTES`](crate::strings::MAX_STRING_BYTES), arrays grow as their
//! data decodes (a file that claims four billion nodes costs a few megabytes until it delivers
//! them), and since zstd turns kilobytes into gigabytes, every growth is also charged against the
//! memory the process can still get ([`crate::procmem::available_to_self`]) and allocated
//! fallibly: a file that asks for more is refused, it never aborts the process or wakes the OOM
//! killer. A declared count whose least memory passes that is refused before it is decoded. The
//! finished arrays go through
//! [`Graph::from_parts`], which checks every invariant the accessors rely on. Any damage or
//! inconsistency is an [`Error::Format`] whose detail says what was wrong and where.
//!
//! # Layout, format versions 1 to 5
//!
//! Fixed-width integers are little-endian. A *varint* is an unsigned LEB128 integer of at most
//! 10 bytes whose value fits in 64 bits (7 bits per byte, least significant group first, high
//! bit set on every byte but the last). A *zigzag varint* stores a signed `d` as the varint
//! `(d << 1) ^ (d >> 63)` (0, -1, 1, -2, ... become 0, 1, 2, 3, ...).
//!
//! ## Header (uncompressed)
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 8 | magic: [`MAGIC`], `89 48 4C 53 4E 41 50 0A` (`\x89HLSNAP\n`) |
//! | 8 | 4 | format version, u32 ([`FORMAT_VERSION`]) |
//! | 12 | 4 | `H`: length of the header fields that follow, u32, at most 65536 |
//! | 16 | `H` | header fields (below) |
//! | 16 + `H` | 4 | CRC-32 (IEEE, as computed by `crc32fast`) of bytes `0 .. 16 + H`, u32 |
//! | 20 + `H` | ... | body: exactly one zstd frame, then end of file |
//!
//! The first 16 bytes and the checksum after the header fields keep this shape in every format
//! version, so a reader checks the header of any version before it refuses a version it does not
//! read (a flipped bit in the version field is a damaged header, not a newer file).
//!
//! Header fields of version 1, which must fill exactly `H` bytes (they are the graph's
//! [`SnapshotMeta`](crate::graph::SnapshotMeta)):
//!
//! | field | encoding |
//! |---|---|
//! | producer | u32 byte length, UTF-8: the heaplens that wrote the file, `heaplens X.Y.Z` |
//! | python_version | u32 byte length, UTF-8: `sys.version` of the snapshotted process |
//! | pid | u32 |
//! | taken_at_ms | u64: milliseconds since the Unix epoch |
//!
//! Version 2 adds one field after those, and changes nothing else:
//!
//! | field | encoding |
//! |---|---|
//! | collector | u8: the cyclic garbage collector was 0 not recorded, 1 disabled, 2 enabled |
//!
//! The producer is always the writer ([`crate::VERSION`]), whatever the graph's
//! `meta.producer` says: the header records which program made these bytes.
//!
//! ## Body (one zstd frame)
//!
//! The frame must carry zstd's content checksum (frame header descriptor bit 2), so damage
//! anywhere in the body is detected, and its window may not exceed 8 MiB (window log 23), which
//! bounds the decompressor's memory whatever the file claims; nothing may follow the frame. Its
//! decompressed content is these sections, in this order, with nothing after the last:
//!
//! 1. **strings**: varint `S` (at most 2^26 - 1), then `S` strings, each a varint byte length and
//!    UTF-8 bytes (at most [`MAX_STRING_BYTES`](crate::strings::MAX_STRING_BYTES)). They are the
//!    string ids `1..=S` in order; id 0 is always the empty string and is not stored. No string
//!    may appear twice (an id names one string and a string one id). (Versions 1 to 4 allowed
//!    up to 2^32 - 2; no heaplens wrote more than 2^26 - 1, which would take a heap of tens of
//!    gigabytes, and a reader refuses such a file.)
//! 2. **types**: varint `T` (at most 2^24), then per type: varint module string id, varint name
//!    string id, varint qualname string id, one byte of [`crate::types::TypeFlags`]. Type ids are
//!    `0..T` in order.
//! 3. **nodes**: varint `N` (1 to 2^32 - 2: a graph holds at least its root), varint root node
//!    id, then four columns of `N` entries each:
//!    - addresses: zigzag varint of `addr[i] - addr[i - 1]` (wrapping, 64 bits; `addr[-1]` is
//!      0). Synthetic nodes have address 0.
//!    - type and flags: u32, type id in the low 24 bits,
//!      [`NodeFlags`](crate::graph::NodeFlags) in the high 8.
//!    - sizes: u16 shallow size; 65535 means "65535 or more, see big sizes".
//!    - out-degrees: varint number of outgoing edges.
//! 4. **edges**: varint `E`, which must equal the sum of the out-degrees (a sum that may not
//!    pass 2^32 - 1), then two columns of `E` entries, in node order (the edges of node 0, then
//!    those of node 1, ...):
//!    - targets: zigzag varint of `target - source` (node ids).
//!    - labels: zigzag varint of the packed [`crate::label::Label`] minus the previous label of
//!      the same node, both taken as u32 and the difference wrapped to an i32 (the first label
//!      of each node minus 0).
//! 5. **names**: varint `K`, then per named node, in increasing node order: varint
//!    `node - previous named node - 1` (the first: the node id itself), varint string id.
//! 6. **big sizes**: varint `B`, which must equal the number of 65535 entries in the sizes
//!    column, then per such node, in increasing node order: varint
//!    `node - previous node - 1` (the first: the node id itself), varint size (at least 65535).
//! 7. **bounds** (version 3 on; absent before): varint `D`, then per container that declares
//!    how many entries it holds at most ([`Graph::declared_bound`]: a deque's `maxlen`, an
//!    `lru_cache`'s `maxsize` on its dict), in increasing node order: varint
//!    `node - previous node - 1` (the first: the node id itself), varint bound.
//! 8. **allocations** (version 4 on; absent before): where objects were allocated, when
//!    `tracemalloc` traced ([`Graph::allocations`]; all counts 0 otherwise). A string table
//!    laid out as section 1; varint `F` frames, each varint file (a string id of that table),
//!    varint line, varint source line (a string id; 0 when unknown); varint `T` tracebacks,
//!    each a varint frame count (at most 65535) and that many varint frame numbers (below `F`),
//!    the oldest call first; then varint `A`, and per object that has a traceback, in
//!    increasing node order: varint `node - previous node - 1` (the first: the node id
//!    itself), varint traceback number (below `T`).
//! 9. **unindexed strings** (version 5 on; absent before): varint `U` (at most
//!    2^32 - 2^26 - 1), then `U` strings laid out as in section 1. They are the string ids
//!    [`UNINDEXED`](crate::strings::UNINDEXED) (2^26) to `2^26 + U - 1`, in order, and may
//!    repeat one another and the strings of section 1: the texts of dict keys that only their
//!    dict refers to, stored once per key without being interned (see [`crate::strings`]).
//!
//! # Example
//!
//! ```
//! use heaplens_core::graph::{GraphBuilder, NodeFlags};
//! use heaplens_core::snapfile;
//! let mut b = GraphBuilder::new();
//! let t = b.intern_type("builtins", "dict", "dict");
//! let n = b.add_node(0x7f00_0010);
//! b.set_node(n, t, 64, NodeFlags::GC_TRACKED);
//! b.end_node();
//! let graph = b.finish().unwrap();
//! let mut file = Vec::new();
//! snapfile::write(&graph, &mut file).unwrap();
//! assert!(file.starts_with(&snapfile::MAGIC));
//! let again = snapfile::read(&file[..]).unwrap();
//! assert_eq!(again.addr(n), 0x7f00_0010);
//! assert_eq!(again.type_name(n), "dict");
//! ```

mod read;
mod write;

use crate::error::{Error, Result};
use crate::graph::Graph;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// The first eight bytes of every snapshot file. The leading non-ASCII byte and the final
/// newline catch files mangled by text-mode transfers, as in PNG's signature.
pub const MAGIC: [u8; 8] = *b"\x89HLSNAP\n";

/// The format version this heaplens writes. It reads this one and every earlier one
/// ([`OLDEST_FORMAT_VERSION`] on).
pub const FORMAT_VERSION: u32 = 5;
/// The oldest format version this heaplens reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// How errors name a source or destination that is not a file.
const STREAM: &str = "<stream>";
/// The largest block of header fields a reader accepts and a writer produces.
const MAX_HEADER_FIELDS: u32 = 65536;
/// Bytes before the header fields: magic, version, length of the fields.
const PREFIX_LEN: usize = 16;
/// The zstd frame magic number, as it appears in the file.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// The bit of a zstd frame header descriptor that says the frame ends with a content checksum.
const ZSTD_CHECKSUM_FLAG: u8 = 0x04;
/// Size of the chunks passed between the two threads of a save or a load: large enough that
/// passing them costs nothing measurable, small enough to stay in cache.
const CHUNK: usize = 256 * 1024;
/// Chunks queued between the two threads: enough to absorb jitter, few enough that memory use
/// does not depend on the graph.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The longest varint: ten bytes of seven bits hold 64.
const MAX_VARINT_LEN: usize = 10;
/// The sizes-column value that sends the reader to the big sizes section.
const SIZE_IN_BIG_SIZES: u16 = u16::MAX;
/// Type id bits of a packed `type_and_flags` entry (the rest are node flags).
const TYPE_BITS: u32 = 24;

/// Writes `graph` as a `.hlsnap` file to `out`, streaming: memory use does not grow with the
/// graph. `out` is flushed at the end; errors name the destination `<stream>`.
pub fn write(graph: &Graph, out: impl Write) -> Result<()> {
    write::write_named(graph, out, STREAM).map(drop)
}

/// Reads a `.hlsnap` file from `input`, which must hold exactly one snapshot and nothing after
/// it. Errors name the source `<stream>`: [`Error::Format`] for bytes that are not a valid
/// snapshot (saying what was wrong and where), [`Error::Version`] for a file of another format
/// version, [`Error::Io`] when `input` itself fails.
pub fn read(input: impl Read) -> Result<Graph> {
    read::read_named(input, STREAM)
}

/// [`read`], with the decoded arrays limited to `max_bytes` of memory instead of what the
/// process can get: a file that needs more is refused with [`Error::Format`]. For a server that
/// loads uploaded files, and for tests.
pub fn read_limited(input: impl Read, max_bytes: u64) -> Result<Graph> {
    read::read_within(input, STREAM, max_bytes)
}

/// Saves `graph` to `path`, atomically (see [`crate::output`]): `path` never holds half a
/// snapshot, a failed save leaves no temporary file behind, a symbolic link is written through
/// to its target, and anything but a regular file is refused. Errors name `path`.
pub fn save(graph: &Graph, path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    crate::output::write_atomically(path, |file| write::write_named(graph, file, &shown))
}

/// Loads the snapshot saved at `path`. Errors name `path`; see [`read`] for their kinds.
pub fn load(path: &Path) -> Result<Graph> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    read::read_named(file, &shown)
}

/// Maps a signed value to an unsigned one with small magnitudes staying small.
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}
