//! Reading a snapshot file: the header, then the body, decompressed on the caller's thread
//! (which owns the input) and decoded into the graph's arrays on another.

use super::{
    unzigzag, CHUNK, CHUNKS_IN_FLIGHT, FORMAT_VERSION, MAGIC, MAX_HEADER_FIELDS, MAX_VARINT_LEN,
    OLDEST_FORMAT_VERSION, PREFIX_LEN, SIZE_IN_BIG_SIZES, ZSTD_CHECKSUM_FLAG, ZSTD_MAGIC,
};
use crate::error::{Error, Result};
use crate::graph::allocations::{Allocations, Frame};
use crate::graph::{Graph, GraphParts, NodeId, SnapshotMeta};
use crate::label::Label;
use crate::strings::{StringId, StringTable, MAX_STRING_BYTES, UNINDEXED};
use crate::types::{TypeFlags, TypeId, TypeInfo, TypeTable};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Room at the start of each decompressed chunk for the unread end of the chunk before: more
/// than the longest value decoded in one piece, a varint.
const CARRY_ROOM: usize = 16;
/// The largest zstd window (as a power of two) a reader accepts: 8 MiB, which bounds what the
/// decompressor allocates whatever a frame header claims. heaplens writes 512 KiB windows.
const MAX_WINDOW_LOG: u32 = 23;
/// The fewest entries an array grows by. Arrays grow as their data decodes, doubling, so a count
/// the file declares costs memory only once the file backs it.
const MIN_GROWTH: usize = 4096;
/// The least memory one node takes once decoded (address, type and flags, size, edge offset),
/// and one edge (target, label): what a declared count is checked against before decoding.
const NODE_BYTES: u64 = 8 + 4 + 2 + 4;
const EDGE_BYTES: u64 = 4 + 4;
/// How many times its compressed size a body may take in memory once decoded, past
/// [`EXPANSION_FLOOR`]. A snapshot heaplens writes stays under about a thousand even when the
/// heap is one list of a hundred million references to `None` (its most regular shape); zstd's
/// runs let a crafted file claim over seventy thousand, so a few kilobytes are not allowed to
/// take gigabytes even on a machine that has them.
const MAX_EXPANSION: u64 = 10_000;
/// What any body may take in memory, whatever its compressed size: more than the arrays of a
/// file of a few kilobytes honestly need (a snapshot that small holds a few thousand objects).
const EXPANSION_FLOOR: u64 = 64 << 20;

/// The most frames one traceback may hold: `tracemalloc` keeps at most 65535.
const MAX_TRACEBACK_FRAMES: u64 = 65535;

pub(super) fn read_named(input: impl Read, path: &str) -> Result<Graph> {
    read_within(
        input,
        path,
        crate::procmem::available_to_self().unwrap_or(u64::MAX),
    )
}

/// Reads a snapshot whose decoded arrays may take at most `budget` bytes. zstd turns kilobytes
/// of a crafted file into gigabytes, so growing arrays "as the data arrives" bounds nothing by
/// itself: every growth is also charged against what the process can still allocate, and made
/// with a fallible allocation, so that a file asking for too much is refused with an
/// [`Error::Format`] rather than aborting the process or waking the OOM killer.
pub(super) fn read_within(input: impl Read, path: &str, budget: u64) -> Result<Graph> {
    let read_so_far = AtomicU64::new(0);
    let compressed = &read_so_far;
    let mut source = BufReader::with_capacity(
        CHUNK,
        TagSourceErrors {
            input,
            read: compressed,
        },
    );
    let (meta, version) = read_header(&mut source, path)?;

    let mut frame_start = [0u8; 5];
    let got = read_up_to(&mut source, &mut frame_start)
        .map_err(|e| classify(e, path, "the compressed body"))?;
    let magic_len = got.min(ZSTD_MAGIC.len());
    if got == 0 {
        return Err(format_error(path, "truncated after the header: no body"));
    }
    if frame_start[..magic_len] != ZSTD_MAGIC[..magic_len] {
        return Err(format_error(path, "the body is not a zstd frame"));
    }
    if got < frame_start.len() {
        return Err(format_error(path, "truncated in the compressed body"));
    }
    if frame_start[4] & ZSTD_CHECKSUM_FLAG == 0 {
        return Err(format_error(
            path,
            "the body's zstd frame carries no content checksum",
        ));
    }
    let frame = Cursor::new(frame_start).chain(source);
    let mut decompressor = zstd::stream::read::Decoder::with_buffer(frame)
        .and_then(|mut decoder| {
            decoder.window_log_max(MAX_WINDOW_LOG)?;
            Ok(decoder.single_frame())
        })
        .map_err(|e| classify(e, path, "the compressed body"))?;

    let (chunk_sender, chunks) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (recycler, recycled) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    let parts = std::thread::scope(|scope| {
        let decoding = scope.spawn(move || {
            let mut body = BodyReader {
                chunks,
                recycler,
                buf: Vec::new(),
                pos: 0,
                section: "the strings section",
                path,
                budget_left: budget,
                budget,
                compressed,
            };
            let parts = read_body(&mut body, meta, version)?;
            body.expect_end()?;
            Ok(parts)
        });
        loop {
            let mut chunk = recycled.try_recv().unwrap_or_default();
            chunk.resize(CARRY_ROOM + CHUNK, 0);
            let delivered = match read_up_to(&mut decompressor, &mut chunk[CARRY_ROOM..]) {
                Ok(0) => break,
                Ok(len) => {
                    chunk.truncate(CARRY_ROOM + len);
                    chunk_sender.send(Ok(chunk)).is_ok()
                }
                // The decoding thread reports it when it gets there, as a reader on one thread
                // would: damage in the nodes section is found after the strings are decoded.
                Err(e) => {
                    let _ = chunk_sender.send(Err(e));
                    false
                }
            };
            // Either the decoding thread stopped (bad data, or an error passed on above) and
            // nothing more is needed, or an error was passed on and nothing more can be read.
            if !delivered {
                break;
            }
        }
        // Closing the channel tells the decoding thread that the body ended.
        drop(chunk_sender);
        decoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;

    let mut after = decompressor.finish();
    let trailing = after
        .fill_buf()
        .map_err(|e| classify(e, path, "the bytes after the body"))?;
    if !trailing.is_empty() {
        return Err(format_error(
            path,
            "trailing bytes after the compressed body",
        ));
    }
    Graph::from_parts(parts).map_err(|e| match e {
        Error::InvalidGraph(why) => format_error(path, format!("inconsistent graph: {why}")),
        other => other,
    })
}

/// Reads and checks the header; returns the metadata it carries and the format version.
fn read_header(source: &mut impl Read, path: &str) -> Result<(SnapshotMeta, u32)> {
    let header_error = |e| classify(e, path, "the header");
    let mut prefix = [0u8; PREFIX_LEN];
    let got = read_up_to(source, &mut prefix).map_err(header_error)?;
    if got == 0 {
        return Err(format_error(path, "the file is empty"));
    }
    let magic_len = got.min(MAGIC.len());
    if prefix[..magic_len] != MAGIC[..magic_len] {
        return Err(format_error(
            path,
            "not a heaplens snapshot (it does not start with the .hlsnap magic number)",
        ));
    }
    if got < PREFIX_LEN {
        return Err(format_error(path, "truncated in the header"));
    }
    let version = u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes"));
    let fields_len = u32::from_le_bytes(prefix[12..16].try_into().expect("4 bytes"));
    if fields_len > MAX_HEADER_FIELDS {
        return Err(format_error(
            path,
            format!(
                "damaged header: it declares {fields_len} bytes of fields, \
                 more than the {MAX_HEADER_FIELDS} a header holds"
            ),
        ));
    }
    let mut rest = vec![0u8; fields_len as usize + 4];
    if read_up_to(source, &mut rest).map_err(header_error)? < rest.len() {
        return Err(format_error(path, "truncated in the header"));
    }
    let (fields, crc) = rest.split_at(fields_len as usize);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&prefix);
    hasher.update(fields);
    if hasher.finalize().to_le_bytes() != crc {
        return Err(format_error(
            path,
            "header checksum mismatch: the header is damaged",
        ));
    }
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::Version {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let meta = parse_header_fields(fields, version).ok_or_else(|| {
        format_error(
            path,
            "malformed header fields (their lengths disagree, or a text is not UTF-8)",
        )
    })?;
    Ok((meta, version))
}

/// The header fields of `version`, or `None` unless they fill their block exactly. The block's
/// checksum matched, so this fails only on a file made wrong on purpose.
fn parse_header_fields(mut fields: &[u8], version: u32) -> Option<SnapshotMeta> {
    let mut take = |len: usize| -> Option<&[u8]> {
        let (head, tail) = fields.split_at_checked(len)?;
        fields = tail;
        Some(head)
    };
    let mut text = || -> Option<String> {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?);
        String::from_utf8(take(len as usize)?.to_vec()).ok()
    };
    let producer = text()?;
    let python_version = text()?;
    let pid = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let taken_at_ms = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let gc_enabled = match version {
        1 => None,
        _ => match take(1)?[0] {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return None,
        },
    };
    fields.is_empty().then_some(SnapshotMeta {
        python_version,
        producer,
        pid,
        taken_at_ms,
        gc_enabled,
    })
}

/// A string table: the count (id 0, the empty string, is implied), then each string's length
/// and UTF-8 bytes. Repeats are refused (ids would shift).
fn read_strings(body: &mut BodyReader<'_>) -> Result<StringTable> {
    // Interned ids stop where the unindexed ones start (format 5); an older file holding more
    // strings than that would need tens of gigabytes of heap to have been taken.
    let string_count = body.count(UNINDEXED as u64 - 1, "strings")?;
    let mut strings = StringTable::new();
    let mut text = Vec::new();
    for expected in 1..=string_count as u32 {
        let len = body.varint()?;
        if len > MAX_STRING_BYTES as u64 {
            return Err(body.error(format!(
                "string {expected} is {len} bytes long, more than the {MAX_STRING_BYTES} a \
                 snapshot's string holds"
            )));
        }
        let before = strings.heap_bytes();
        if !strings.try_reserve_one(len as usize) {
            return Err(body.out_of_memory(len));
        }
        body.charge(strings.heap_bytes().saturating_sub(before) as u64)?;
        body.bytes_into(len, &mut text)?;
        let Ok(s) = std::str::from_utf8(&text) else {
            return Err(body.error(format!("string {expected} is not valid UTF-8")));
        };
        let id = strings.intern(s);
        if id.0 != expected {
            return Err(body.error(if strings.get(id) == s {
                format!("string {expected} repeats string {}", id.0)
            } else {
                format!("string {expected} does not fit: the strings exceed 4 GiB")
            }));
        }
    }
    Ok(strings)
}

/// The unindexed strings (format 5), added to `strings`: the count, then each string's length
/// and UTF-8 bytes. They may repeat each other and the interned strings.
fn read_unindexed_strings(body: &mut BodyReader<'_>, strings: &mut StringTable) -> Result<()> {
    let string_count = body.count((u32::MAX - UNINDEXED) as u64 - 1, "unindexed strings")?;
    let mut text = Vec::new();
    for i in 0..string_count as u32 {
        let len = body.varint()?;
        if len > MAX_STRING_BYTES as u64 {
            return Err(body.error(format!(
                "unindexed string {i} is {len} bytes long, more than the {MAX_STRING_BYTES} a \
                 snapshot's string holds"
            )));
        }
        let before = strings.heap_bytes();
        if !strings.try_reserve_one_unindexed(len as usize) {
            return Err(body.out_of_memory(len));
        }
        body.charge(strings.heap_bytes().saturating_sub(before) as u64)?;
        body.bytes_into(len, &mut text)?;
        let Ok(s) = std::str::from_utf8(&text) else {
            return Err(body.error(format!("unindexed string {i} is not valid UTF-8")));
        };
        if strings.add_unindexed(s).0 != UNINDEXED + i {
            return Err(body.error(format!(
                "unindexed string {i} does not fit: the strings exceed 4 GiB"
            )));
        }
    }
    Ok(())
}

/// The allocations section (format 4): its strings, the distinct frames (file, line, source),
/// the distinct tracebacks (a frame count, then frame numbers), then the objects that have one
/// (sparse, as the other per-node sections). Every count is bounded by what precedes it, and
/// [`Allocations::check`] checks every number against the graph.
fn read_allocations(body: &mut BodyReader<'_>, node_count: usize) -> Result<Allocations> {
    body.section = "the allocations section";
    let mut a = Allocations {
        strings: read_strings(body)?,
        ..Default::default()
    };
    let frame_count = body.count(u32::MAX as u64 - 1, "allocation frames")?;
    for _ in 0..frame_count {
        let file = body.string_id()?;
        let line = u32::try_from(body.varint()?).unwrap_or(u32::MAX);
        let code = body.string_id()?;
        body.push(&mut a.frames, Frame { file, line, code }, frame_count)?;
    }
    let traceback_count = body.count(u32::MAX as u64 - 2, "allocation tracebacks")?;
    body.push(&mut a.starts, 0, traceback_count + 1)?;
    for _ in 0..traceback_count {
        let len = body.count(MAX_TRACEBACK_FRAMES, "frames in one traceback")?;
        for _ in 0..len {
            let f = body.varint()?;
            if f >= frame_count as u64 {
                return Err(body.error(format!("frame {f} of {frame_count}")));
            }
            body.push(&mut a.frame_ids, f as u32, usize::MAX)?;
        }
        let end = u32::try_from(a.frame_ids.len())
            .map_err(|_| body.error("the tracebacks hold more than 2^32 - 1 frames"))?;
        body.push(&mut a.starts, end, traceback_count + 1)?;
    }
    let object_count = body.count(node_count as u64, "objects with a traceback")?;
    let mut next = 0u64;
    for _ in 0..object_count {
        let node = body.node_after(next, node_count)?;
        let t = body.varint()?;
        if t >= traceback_count as u64 {
            return Err(body.error(format!(
                "node {node} has traceback {t} of {traceback_count}"
            )));
        }
        body.push(&mut a.by_node, (node, t as u32), object_count)?;
        next = node as u64 + 1;
    }
    a.check(node_count).map_err(|e| body.error(e))?;
    Ok(a)
}

/// The sections of the body, in order. See the layout in the module documentation.
fn read_body(body: &mut BodyReader<'_>, meta: SnapshotMeta, version: u32) -> Result<GraphParts> {
    body.section = "the strings section";
    let mut strings = read_strings(body)?;

    body.section = "the types section";
    let type_count = body.count(TypeId::MAX as u64 + 1, "types")?;
    let mut types = TypeTable::new();
    for _ in 0..type_count {
        let module = body.string_id()?;
        let name = body.string_id()?;
        let qualname = body.string_id()?;
        let flags = TypeFlags(body.byte()?);
        types
            .push(TypeInfo {
                module,
                name,
                qualname,
                flags,
            })
            .map_err(|e| body.error(e))?;
    }

    body.section = "the nodes section";
    let node_count = body.count(NodeId::MAX as u64 - 1, "nodes")?;
    let root = body.varint()?;
    if root >= node_count as u64 {
        return Err(body.error(format!("the root is node {root} of {node_count}")));
    }
    body.afford(node_count as u64, NODE_BYTES, "nodes")?;
    let mut addrs = Vec::new();
    let mut addr = 0u64;
    for _ in 0..node_count {
        addr = addr.wrapping_add(unzigzag(body.varint()?) as u64);
        body.push(&mut addrs, addr, node_count)?;
    }
    let mut type_and_flags = Vec::new();
    body.fixed(node_count, &mut type_and_flags, u32::from_le_bytes)?;
    let mut sizes = Vec::new();
    body.fixed(node_count, &mut sizes, u16::from_le_bytes)?;
    let mut offsets = Vec::new();
    body.push(&mut offsets, 0u32, node_count + 1)?;
    let mut offset = 0u32;
    for _ in 0..node_count {
        let degree = body.varint()?;
        // Offsets are u32: a graph holds at most u32::MAX edges.
        let Some(next) = u32::try_from(degree)
            .ok()
            .and_then(|degree| offset.checked_add(degree))
        else {
            return Err(body.error("the out-degrees add up to more than 2^32 - 1 edges"));
        };
        offset = next;
        body.push(&mut offsets, offset, node_count + 1)?;
    }
    let edge_total = offset as u64;

    body.section = "the edges section";
    let edge_count = body.varint()?;
    if edge_count != edge_total {
        return Err(body.error(format!(
            "it declares {edge_count} edges, but the out-degrees add up to {edge_total}"
        )));
    }
    body.afford(edge_total, EDGE_BYTES, "edges")?;
    let edge_total = edge_total as usize;
    let mut targets = Vec::new();
    for (source, range) in offsets.windows(2).enumerate() {
        for _ in range[0]..range[1] {
            let target = (source as i64)
                .checked_add(unzigzag(body.varint()?))
                .filter(|&t| (0..node_count as i64).contains(&t));
            let Some(target) = target else {
                return Err(body.error(format!(
                    "an edge of node {source} points outside the {node_count} nodes"
                )));
            };
            body.push(&mut targets, target as NodeId, edge_total)?;
        }
    }
    let mut labels = Vec::new();
    for range in offsets.windows(2) {
        let mut previous = 0u32;
        for _ in range[0]..range[1] {
            previous = previous.wrapping_add(unzigzag(body.varint()?) as u32);
            body.push(&mut labels, Label(previous), edge_total)?;
        }
    }

    body.section = "the names section";
    let name_count = body.count(node_count as u64, "names")?;
    let mut names = Vec::new();
    let mut next = 0u64;
    for _ in 0..name_count {
        let node = body.node_after(next, node_count)?;
        let name = body.string_id()?;
        body.push(&mut names, (node, name), name_count)?;
        next = node as u64 + 1;
    }

    body.section = "the big sizes section";
    let marked = sizes.iter().filter(|&&s| s == SIZE_IN_BIG_SIZES).count();
    let big_count = body.count(node_count as u64, "big sizes")?;
    if big_count != marked {
        return Err(body.error(format!(
            "it holds {big_count} sizes, but {marked} nodes have a size of 65535 or more"
        )));
    }
    let mut big_sizes = Vec::new();
    let mut next = 0u64;
    for _ in 0..big_count {
        let node = body.node_after(next, node_count)?;
        let size = body.varint()?;
        if size < SIZE_IN_BIG_SIZES as u64 {
            return Err(body.error(format!("node {node} has a big size of {size}, below 65535")));
        }
        body.push(&mut big_sizes, (node, size), big_count)?;
        next = node as u64 + 1;
    }

    let mut bounds = Vec::new();
    if version >= 3 {
        body.section = "the bounds section";
        let bound_count = body.count(node_count as u64, "bounds")?;
        let mut next = 0u64;
        for _ in 0..bound_count {
            let node = body.node_after(next, node_count)?;
            let bound = body.varint()?;
            body.push(&mut bounds, (node, bound), bound_count)?;
            next = node as u64 + 1;
        }
    }

    let allocations = if version >= 4 {
        read_allocations(body, node_count)?
    } else {
        Allocations::default()
    };

    if version >= 5 {
        body.section = "the unindexed strings section";
        read_unindexed_strings(body, &mut strings)?;
    }

    // Arrays grown by doubling may hold up to twice their length; give the excess back.
    addrs.shrink_to_fit();
    type_and_flags.shrink_to_fit();
    sizes.shrink_to_fit();
    offsets.shrink_to_fit();
    targets.shrink_to_fit();
    labels.shrink_to_fit();
    Ok(GraphParts {
        addrs,
        type_and_flags,
        sizes,
        big_sizes,
        offsets,
        targets,
        labels,
        names,
        bounds,
        allocations,
        strings,
        types,
        root: root as NodeId,
        meta,
    })
}

/// Wraps the caller's reader so that its errors can be told apart, after they pass through the
/// zstd decoder, from the decoder's own complaints about corrupt data: the first are
/// [`Error::Io`], the second [`Error::Format`].
/// It also counts the bytes read, for [`MAX_EXPANSION`].
struct TagSourceErrors<'c, R> {
    input: R,
    read: &'c AtomicU64,
}

/// An error of the caller's reader, as tagged by [`TagSourceErrors`].
#[derive(Debug)]
struct SourceError(io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

impl<R: Read> Read for TagSourceErrors<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self
            .input
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), SourceError(e)))?;
        self.read.fetch_add(got as u64, Ordering::Relaxed);
        Ok(got)
    }
}

/// What an `io::Error` met while reading `place` means: the source failed, or the data is bad.
fn classify(error: io::Error, path: &str, place: &str) -> Error {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<SourceError>())
    {
        let kind = error.kind();
        let source = match error
            .into_inner()
            .map(|inner| inner.downcast::<SourceError>())
        {
            Some(Ok(tagged)) => tagged.0,
            _ => io::Error::from(kind),
        };
        return Error::Io {
            path: path.to_string(),
            source,
        };
    }
    // zstd reports a frame cut short as UnexpectedEof, and a content checksum that does not
    // match as "Restored data doesn't match checksum".
    let detail = if error.kind() == io::ErrorKind::UnexpectedEof {
        format!("truncated in {place}")
    } else if error.to_string().contains("checksum") {
        format!("checksum mismatch in the compressed body, found in {place} ({error})")
    } else {
        format!("the compressed body is corrupt, found in {place} ({error})")
    };
    format_error(path, detail)
}

fn format_error(path: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        detail: detail.into(),
    }
}

/// Joins the low 7 bits of each byte of `word` (least significant first) into one number.
fn pack_7bit_groups(word: u64) -> u64 {
    let x = word & 0x7f7f_7f7f_7f7f_7f7f;
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

/// Reads until `buf` is full or the source ends; returns how many bytes it got.
fn read_up_to(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(len) => got += len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The decoding thread's end of the pipeline: decodes the body's primitives straight from the
/// decompressed chunks, and names the section being read in every error.
struct BodyReader<'p> {
    /// Decompressed chunks, or the decompressor's error; the end of the channel is the end of
    /// the body.
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Read chunks go back to the decompressing thread for reuse.
    recycler: SyncSender<Vec<u8>>,
    /// The chunk being decoded. Its first [`CARRY_ROOM`] bytes are room for the unread end of
    /// the chunk before, so values that straddle two chunks are decoded from one slice.
    buf: Vec<u8>,
    pos: usize,
    /// Where decoding is, for errors: "the nodes section".
    section: &'static str,
    path: &'p str,
    /// Bytes the decoded arrays may still take (see [`read_within`]), and all they could.
    budget_left: u64,
    budget: u64,
    /// Bytes read from the file so far, for [`MAX_EXPANSION`].
    compressed: &'p AtomicU64,
}

impl BodyReader<'_> {
    fn error(&self, detail: impl std::fmt::Display) -> Error {
        format_error(self.path, format!("in {}: {detail}", self.section))
    }

    /// Refuses a file that asks for more memory than the process can get.
    #[cold]
    fn out_of_memory(&self, more: u64) -> Error {
        let used = self.budget - self.budget_left;
        self.error(format!(
            "loading it needs more memory than this process can get ({} more after {}, with {} \
             available when the load began): the file is damaged or crafted, or the snapshot \
             is larger than this machine can load",
            crate::analysis::report::bytes(more),
            crate::analysis::report::bytes(used),
            crate::analysis::report::bytes(self.budget),
        ))
    }

    /// Counts `bytes` more of decoded arrays against the budget, and against the file's size.
    fn charge(&mut self, bytes: u64) -> Result<()> {
        if bytes > self.budget_left {
            return Err(self.out_of_memory(bytes));
        }
        self.budget_left -= bytes;
        let used = self.budget - self.budget_left;
        let compressed = self.compressed.load(Ordering::Relaxed);
        if used > EXPANSION_FLOOR && used / MAX_EXPANSION > compressed {
            return Err(self.error(format!(
                "{} of file decode to more than {} of arrays, over {MAX_EXPANSION} times their \
                 size, which no snapshot heaplens writes does: the file is damaged or crafted",
                crate::analysis::report::bytes(compressed),
                crate::analysis::report::bytes(used),
            )));
        }
        Ok(())
    }

    /// Refuses at once a declared count whose least memory passes the budget, before decoding
    /// gigabytes to find out.
    fn afford(&self, count: u64, bytes_each: u64, what: &str) -> Result<()> {
        let least = count.saturating_mul(bytes_each);
        if least > self.budget_left {
            return Err(self.error(format!(
                "it declares {count} {what}, which take at least {} in memory, more than the \
                 {} this process can get: the file is damaged or crafted, or the snapshot is \
                 larger than this machine can load",
                crate::analysis::report::bytes(least),
                crate::analysis::report::bytes(self.budget_left),
            )));
        }
        Ok(())
    }

    /// Appends to an array of a declared length `expected`, growing it through [`Self::grow`].
    #[inline(always)]
    fn push<T>(&mut self, v: &mut Vec<T>, value: T, expected: usize) -> Result<()> {
        if v.len() == v.capacity() {
            self.grow(v, 1, expected)?;
        }
        v.push(value);
        Ok(())
    }

    /// Makes room in `v` for `additional` more values: its capacity doubles (at least
    /// [`MIN_GROWTH`], never past `expected`, the length the file declared), charged against
    /// the budget and allocated fallibly.
    #[cold]
    fn grow<T>(&mut self, v: &mut Vec<T>, additional: usize, expected: usize) -> Result<()> {
        let needed = v.len().saturating_add(additional);
        if needed <= v.capacity() {
            return Ok(());
        }
        let target = v
            .capacity()
            .saturating_mul(2)
            .max(MIN_GROWTH)
            .min(expected)
            .max(needed);
        let bytes =
            ((target - v.capacity()) as u64).saturating_mul(std::mem::size_of::<T>() as u64);
        self.charge(bytes)?;
        v.try_reserve_exact(target - v.len())
            .map_err(|_| self.out_of_memory(bytes))
    }

    fn truncated(&self) -> Error {
        format_error(self.path, format!("truncated in {}", self.section))
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Moves on to the next chunk, carrying over the unread bytes of this one (fewer than
    /// [`CARRY_ROOM`]: callers ask for at most [`MAX_VARINT_LEN`] bytes at a time). Returns
    /// false at the end of the body. Cold, so that the decoding calls that reach it are small
    /// enough to inline.
    #[cold]
    fn refill(&mut self) -> Result<bool> {
        let mut next = match self.chunks.recv() {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => return Err(classify(e, self.path, self.section)),
            Err(_) => return Ok(false),
        };
        let carried = self.available();
        next[CARRY_ROOM - carried..CARRY_ROOM].copy_from_slice(&self.buf[self.pos..]);
        let done = std::mem::replace(&mut self.buf, next);
        // Back to the decompressor for reuse; if it has enough, this one is dropped.
        let _ = self.recycler.try_send(done);
        self.pos = CARRY_ROOM - carried;
        Ok(true)
    }

    /// Makes at least `len` bytes available (at most [`MAX_VARINT_LEN`]), or fails as
    /// truncated.
    fn need(&mut self, len: usize) -> Result<()> {
        while self.available() < len {
            if !self.refill()? {
                return Err(self.truncated());
            }
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8> {
        self.need(1)?;
        self.pos += 1;
        Ok(self.buf[self.pos - 1])
    }

    /// Decodes a varint. Most fit in 8 bytes, and those are decoded from one 64-bit load without
    /// a branch per byte: the length comes from the first clear high bit, and the 7-bit groups
    /// are packed together with three shifts. On a big heap this is the decoder's inner loop,
    /// and varint lengths vary too much from one value to the next for branches to predict.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        if let Some(bytes) = self.buf.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
            let last_bytes = !word & 0x8080_8080_8080_8080;
            if last_bytes != 0 {
                let bits = last_bytes.trailing_zeros() + 1;
                self.pos += bits as usize / 8;
                return Ok(pack_7bit_groups(word & (u64::MAX >> (64 - bits))));
            }
        }
        self.varint_bytewise()
    }

    /// [`BodyReader::varint`] for varints longer than 8 bytes or near the end of the buffer.
    #[cold]
    fn varint_bytewise(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let b = self.byte()?;
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                if i == MAX_VARINT_LEN - 1 && b > 1 {
                    break;
                }
                return Ok(value);
            }
        }
        Err(self.error("a varint overflows 64 bits"))
    }

    /// An element count, refused if it passes what the graph model holds.
    fn count(&mut self, limit: u64, what: &str) -> Result<usize> {
        let count = self.varint()?;
        if count > limit {
            return Err(self.error(format!(
                "it declares {count} {what}, more than the {limit} a graph holds"
            )));
        }
        usize::try_from(count)
            .map_err(|_| self.error(format!("{count} {what} do not fit in memory")))
    }

    fn string_id(&mut self) -> Result<StringId> {
        let id = self.varint()?;
        u32::try_from(id)
            .map(StringId)
            .map_err(|_| self.error(format!("string id {id} is out of range")))
    }

    /// A node id stored as its distance from `next`, the first id it may take.
    fn node_after(&mut self, next: u64, node_count: usize) -> Result<NodeId> {
        let node = next.saturating_add(self.varint()?);
        if node >= node_count as u64 {
            return Err(self.error(format!("node {node} of {node_count}")));
        }
        Ok(node as NodeId)
    }

    /// Reads `len` bytes into `out`, which grows only as the bytes arrive.
    fn bytes_into(&mut self, len: u64, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        let mut left = len;
        while left > 0 {
            if self.available() == 0 && !self.refill()? {
                return Err(self.truncated());
            }
            let take = self
                .available()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            left -= take as u64;
        }
        Ok(())
    }

    /// Reads `count` little-endian fixed-width values, decoding whole runs from the buffer.
    fn fixed<T, const W: usize>(
        &mut self,
        count: usize,
        out: &mut Vec<T>,
        decode: fn([u8; W]) -> T,
    ) -> Result<()> {
        let mut left = count;
        let expected = out.len().saturating_add(count);
        while left > 0 {
            self.need(W)?;
            let run = (self.available() / W).min(left);
            if out.capacity() - out.len() < run {
                self.grow(out, run, expected)?;
            }
            let bytes = &self.buf[self.pos..self.pos + run * W];
            out.extend(
                bytes
                    .chunks_exact(W)
                    .map(|c| decode(c.try_into().expect("chunks of W bytes"))),
            );
            self.pos += run * W;
            left -= run;
        }
        Ok(())
    }

    /// Checks that the body ends here. Reading to the end is also what makes zstd verify the
    /// frame's content checksum.
    fn expect_end(&mut self) -> Result<()> {
        self.section = "the end of the body";
        if self.available() > 0 || self.refill()? {
            return Err(self.error("trailing data after the last section"));
        }
        Ok(())
    }
}
