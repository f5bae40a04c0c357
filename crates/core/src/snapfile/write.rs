//! Writing a snapshot file: the header, then the body, encoded on one thread and compressed on
//! the caller's, which owns the output.

use super::{
    zigzag, CHUNK, CHUNKS_IN_FLIGHT, FORMAT_VERSION, MAGIC, MAX_HEADER_FIELDS, MAX_VARINT_LEN,
    PREFIX_LEN, SIZE_IN_BIG_SIZES, TYPE_BITS,
};
use crate::error::{Error, Result};
use crate::graph::{Allocations, Graph, NodeId, SnapshotMeta};
use crate::strings::StringTable;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// zstd level 1. Measured on a Python-shaped heap of ten million objects: levels 2 and 3 shrink
/// the file by under 2% for 20% to 60% more compression time; negative levels save 10% to 20%
/// of that time for a file 10% to 15% larger. The file is small either way (under 3 bytes per
/// node and edge); the time of a save is what users wait for.
const ZSTD_LEVEL: i32 = 1;

/// Writes the whole file to `out` and hands `out` back, flushed, for [`super::save`] to sync.
pub(super) fn write_named<W: Write>(graph: &Graph, mut out: W, path: &str) -> Result<W> {
    let io_error = |source| Error::Io {
        path: path.to_string(),
        source,
    };
    out.write_all(&encode_header(graph.meta())?)
        .map_err(io_error)?;
    let mut compressor = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(io_error)?;
    compressor.include_checksum(true).map_err(io_error)?;

    let (chunk_sender, chunks) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (recycler, recycled) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    std::thread::scope(|scope| {
        let encoding = scope.spawn(move || {
            let mut body = BodyWriter::new(chunk_sender, recycled);
            write_body(graph, &mut body)?;
            body.flush_chunk()
        });
        let mut compressed = Ok(());
        for chunk in chunks.iter() {
            compressed = compressor.write_all(&chunk);
            if compressed.is_err() {
                break;
            }
            // Sent back for reuse; when the encoder has enough buffers, this one is dropped.
            let _ = recycler.try_send(chunk);
        }
        // On a write error, closing the channel stops the encoder at its next chunk.
        drop(chunks);
        let encoded = encoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The encoder fails only when the channel closes, that is after a write error.
        compressed.and(encoded)
    })
    .map_err(io_error)?;
    let mut out = compressor.finish().map_err(io_error)?;
    out.flush().map_err(io_error)?;
    Ok(out)
}

/// The header: prefix, fields, checksum. See the layout in the module documentation.
fn encode_header(meta: &SnapshotMeta) -> Result<Vec<u8>> {
    let producer = format!("heaplens {}", crate::VERSION);
    let fields_len = 4 + producer.len() + 4 + meta.python_version.len() + 4 + 8 + 1;
    if fields_len > MAX_HEADER_FIELDS as usize {
        return Err(Error::TooLarge {
            what: "bytes of snapshot metadata (the Python version text)",
            limit: MAX_HEADER_FIELDS as u64,
        });
    }
    let mut header = Vec::with_capacity(PREFIX_LEN + fields_len + 4);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&(fields_len as u32).to_le_bytes());
    for text in [&producer, &meta.python_version] {
        header.extend_from_slice(&(text.len() as u32).to_le_bytes());
        header.extend_from_slice(text.as_bytes());
    }
    header.extend_from_slice(&meta.pid.to_le_bytes());
    header.extend_from_slice(&meta.taken_at_ms.to_le_bytes());
    header.push(match meta.gc_enabled {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    Ok(header)
}

/// The interned strings of a table; id 0 is the empty string in every table, so it is implied
/// rather than stored.
fn write_strings(body: &mut BodyWriter, strings: &StringTable) -> io::Result<()> {
    let count = strings.interned_len();
    body.varint(count as u64 - 1)?;
    for (_, text) in strings.iter().take(count).skip(1) {
        body.varint(text.len() as u64)?;
        body.bytes(text.as_bytes())?;
    }
    Ok(())
}

/// The unindexed strings of a table (format 5), laid out as the interned ones, none implied.
fn write_unindexed_strings(body: &mut BodyWriter, strings: &StringTable) -> io::Result<()> {
    body.varint(strings.unindexed_len() as u64)?;
    for (_, text) in strings.iter().skip(strings.interned_len()) {
        body.varint(text.len() as u64)?;
        body.bytes(text.as_bytes())?;
    }
    Ok(())
}

/// Where objects were allocated (format 4): strings, frames, tracebacks, then the objects.
fn write_allocations(body: &mut BodyWriter, a: &Allocations) -> io::Result<()> {
    write_strings(body, a.strings())?;
    body.varint(a.frames().len() as u64)?;
    for f in a.frames() {
        body.varint(f.file.0 as u64)?;
        body.varint(f.line as u64)?;
        body.varint(f.code.0 as u64)?;
    }
    body.varint(a.traceback_count() as u64)?;
    for w in a.starts.windows(2) {
        body.varint((w[1] - w[0]) as u64)?;
        for &f in &a.frame_ids[w[0] as usize..w[1] as usize] {
            body.varint(f as u64)?;
        }
    }
    write_sparse(body, a.by_node.iter().map(|&(n, t)| (n, t as u64)))
}

fn write_body(graph: &Graph, body: &mut BodyWriter) -> io::Result<()> {
    let strings = graph.strings();
    write_strings(body, strings)?;

    body.varint(graph.types().len() as u64)?;
    for (_, info) in graph.types().iter() {
        body.varint(info.module.0 as u64)?;
        body.varint(info.name.0 as u64)?;
        body.varint(info.qualname.0 as u64)?;
        body.bytes(&[info.flags.0])?;
    }

    let nodes = 0..graph.node_count() as NodeId;
    body.varint(graph.node_count() as u64)?;
    body.varint(graph.root() as u64)?;
    let mut previous_addr = 0u64;
    for n in nodes.clone() {
        let addr = graph.addr(n);
        body.varint(zigzag(addr.wrapping_sub(previous_addr) as i64))?;
        previous_addr = addr;
    }
    for n in nodes.clone() {
        let packed = graph.type_id(n).0 | ((graph.flags(n).0 as u32) << TYPE_BITS);
        body.bytes(&packed.to_le_bytes())?;
    }
    // Objects of 64 KiB and more are rare: their list is small.
    let mut big_sizes = Vec::new();
    for n in nodes.clone() {
        let size = graph.size(n);
        if size >= SIZE_IN_BIG_SIZES as u64 {
            big_sizes.push((n, size));
        }
        let column = u16::try_from(size).unwrap_or(SIZE_IN_BIG_SIZES);
        body.bytes(&column.to_le_bytes())?;
    }
    for n in nodes.clone() {
        body.varint(graph.targets(n).len() as u64)?;
    }

    body.varint(graph.edge_count() as u64)?;
    for n in nodes.clone() {
        for &target in graph.targets(n) {
            body.varint(zigzag(target as i64 - n as i64))?;
        }
    }
    for n in nodes.clone() {
        let mut previous = 0u32;
        for label in graph.labels(n) {
            body.varint(zigzag(label.0.wrapping_sub(previous) as i32 as i64))?;
            previous = label.0;
        }
    }

    // Named nodes (modules, classes, functions, synthetic nodes) are a small fraction of a heap.
    let names: Vec<(NodeId, u64)> = nodes
        .clone()
        .filter_map(|n| Some((n, graph.name_id(n)?.0 as u64)))
        .collect();
    write_sparse(body, names.into_iter())?;
    write_sparse(body, big_sizes.into_iter())?;
    // Containers that declare a bound (deques, lru_cache dicts) are few.
    let bounds: Vec<(NodeId, u64)> = nodes
        .clone()
        .filter_map(|n| Some((n, graph.declared_bound(n)?)))
        .collect();
    write_sparse(body, bounds.into_iter())?;
    write_allocations(body, graph.allocations())?;
    write_unindexed_strings(body, strings)
}

/// A section of values for some nodes, in increasing node order: the count, then per node the
/// gap since the previous one (`node - previous - 1`; the first: its id) and the value.
fn write_sparse(
    body: &mut BodyWriter,
    entries: impl ExactSizeIterator<Item = (NodeId, u64)>,
) -> io::Result<()> {
    body.varint(entries.len() as u64)?;
    let mut next = 0;
    for (n, value) in entries {
        body.varint((n - next) as u64)?;
        body.varint(value)?;
        next = n + 1;
    }
    Ok(())
}

/// Collects encoded bytes into chunks for the compressing thread, so that thread sees a few
/// large writes instead of a hundred million tiny ones.
struct BodyWriter {
    buf: Vec<u8>,
    chunks: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
}

impl BodyWriter {
    fn new(chunks: SyncSender<Vec<u8>>, recycled: Receiver<Vec<u8>>) -> BodyWriter {
        BodyWriter {
            buf: Vec::with_capacity(CHUNK),
            chunks,
            recycled,
        }
    }

    /// Hands the full chunk to the compressing thread. Cold, so that the encoding calls that
    /// reach it are small enough to inline.
    #[cold]
    fn flush_chunk(&mut self) -> io::Result<()> {
        let mut next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        next.clear();
        let full = std::mem::replace(&mut self.buf, next);
        self.chunks.send(full).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the compressing thread stopped")
        })
    }

    /// Encodes a varint, a byte at a time. (A branch-free version, spreading the 7-bit groups
    /// with shifts and storing 8 bytes at once, measured slower: most values here take one byte,
    /// and the byte loop predicts well.)
    #[inline]
    fn varint(&mut self, mut value: u64) -> io::Result<()> {
        if self.buf.len() + MAX_VARINT_LEN > CHUNK {
            self.flush_chunk()?;
        }
        while value >= 0x80 {
            self.buf.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
        Ok(())
    }

    /// Appends `bytes`, splitting them across chunks when they do not fit in this one.
    #[inline]
    fn bytes(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while self.buf.len() + bytes.len() > CHUNK {
            let (head, tail) = bytes.split_at(CHUNK - self.buf.len());
            self.buf.extend_from_slice(head);
            self.flush_chunk()?;
            bytes = tail;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}
