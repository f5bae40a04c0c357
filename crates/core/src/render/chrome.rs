//! Export to Chrome DevTools' `.heapsnapshot` format, so a Python heap opens in Chrome's Memory
//! panel: the Summary view lists Python types as "constructors" with counts, shallow and retained
//! sizes; Containment and Retainers show labelled references; two exports of one process can be
//! compared.
//!
//! Format (as V8's `HeapSnapshotJSONSerializer` writes it and DevTools' `HeapSnapshotLoader`
//! reads it): one JSON object with `snapshot` (the field layout in `meta`, then `node_count`,
//! `edge_count`, `trace_function_count`), then the flat number arrays `nodes` (7 fields a node:
//! type, name, id, self_size, edge_count, trace_node_id, detachedness) and `edges` (3 fields an
//! edge: type, name_or_index, to_node, where `to_node` is the target's offset in `nodes`, its
//! index times 7; a node's edges follow those of the node before it), the empty allocation-trace
//! arrays, and last the `strings` that names index into. The loader reads every number into a
//! `Uint32Array` (anything larger would silently wrap) and expects the root to be node 0.
//!
//! Mapping, chosen for what DevTools does with each field:
//! - A Python object is an `object` node named by its type (`dict`, `app.Order`): DevTools'
//!   Summary groups `object` nodes by name, so types become the constructors. Other node types
//!   would be renamed by DevTools (`closure` becomes `Function`, `string` `(string)`) and lose the
//!   Python type. Self size is `sys.getsizeof` (saturated at 4 GiB - 1).
//! - Synthetic nodes (threads, frames) are `synthetic` nodes named `(thread) MainThread`,
//!   `(frame) handle (app.py:12)`; their size is 0, which keeps them out of the Summary.
//! - The root is node 0, as DevTools assumes. Its edges do not point at the roots directly but at
//!   synthetic group nodes, `(modules)`, `(threads)`, `(external references)` and `(other
//!   roots)`, which hold heaplens' root edges (empty groups are left out). This is V8's
//!   `(GC roots)` shape, and it matters: DevTools' Retainers view hides edges that start at the
//!   root, so without the groups a module would show no retainer at all; and since every child of
//!   the root is synthetic, DevTools measures distances from the root itself, over non-weak edges,
//!   instead of classing objects that only thread stacks reach as "system" (its treatment of
//!   objects not reachable from a non-synthetic child of the root).
//! - Objects no root reaches ([`NodeFlags::UNREACHABLE`]: cyclic garbage the collector has not
//!   freed yet) hang from one more group, `(cyclic garbage)`, by `element` edges. DevTools treats
//!   an unreachable node as an error case: it gets no distance, and a single one turns its whole
//!   class's distance into "-" in the Summary. Through the group the garbage has distances, its
//!   real retainers (the rest of the cycle) still show, and the group's retained size says how
//!   much memory awaits the collector. A graph whose unreachable objects are not marked exports
//!   them unreachable, which DevTools also loads.
//! - Edges: an attribute, a str dict key, another key's short form, a set member and a named root
//!   are `property` edges named as the Retainers view should read them (`cache`, `CACHE`,
//!   `sys.modules['app']`); a frame local is a `context` edge named by the variable (DevTools'
//!   word for a variable held by a scope); a sequence index and a thread's frame depth are
//!   `element` edges carrying the number; structural members (`__dict__`, `__class__`, dict
//!   key objects, evaluation-stack values, outside references) are `internal` (DevTools greys
//!   them); weak references are `weak`, which DevTools skips for distances, dominators and
//!   retainers; unlabelled edges are `hidden` with their position as index.
//!
//! Ids: the loader keeps ids in 32 bits, the comparison view matches objects across snapshots by
//! id, and the grid uses ids to spot cycles, so ids must be unique, small and, for objects,
//! stable. Objects get odd ids (V8's convention for heap objects) derived from the address: the
//! address space is cut in 1 MiB chunks, each chunk of the heap gets one of the 2^14 slots of
//! the 31-bit id space (its chunk number modulo the slot count, or the next free slot after the
//! chunks of lower addresses that took it), and the id is the slot and the 8-byte word within
//! the chunk. Ids are unique whenever addresses are, and an object keeps its id across exports
//! while its chunk keeps its slot, which holds unless a newly used chunk of a lower address
//! takes it. A heap spread over more than 16 GiB of chunks cannot fit; its objects are then
//! numbered by position (unique, not stable). Synthetic nodes get small even ids.
//!
//! Strings: the `strings` array starts with the graph's own string table in id order, so labels
//! and names index it with no translation; then a few fixed names, the display names of types
//! that are not already interned, and one combined name per synthetic node (written on the fly,
//! never stored). Every string is JSON-escaped: quotes, backslashes, control characters, U+2028
//! and U+2029 (JavaScript line breaks), and `<`, `>`, `&` (so a file cannot close a `<script>`
//! it is embedded in); the rest is UTF-8 as is.
//!
//! Memory: everything streams through a `BufWriter` of 1 MiB; nothing is kept per node or per
//! edge. The extra memory is one `u32` per type (its name's index), the display names of types
//! not already in the string table, and a map of at most 16,384 address chunks to id slots. The
//! output is about 30 bytes a node and 17 an edge: 10 million objects with 25 million references
//! make 735 MB, written in 1.5 s (`examples/chrome_bench.rs`).
//!
//! Non-goals: reading `.heapsnapshot` files, allocation traces (heaplens has no allocation
//! stacks in a graph), and V8-specific node types.

use crate::error::{Error, Result};
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::{Label, LabelKind};
use crate::strings::StringId;
use hashbrown::{HashMap, HashSet};
use std::io::{BufWriter, Write};

/// The `meta` object: field layout and enumerations, in the order V8 writes them.
const META: &str = concat!(
    r#"{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"#,
    r#""node_types":[["hidden","array","string","object","code","closure","regexp","number","native","#,
    r#""synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"#,
    r#""string","number","number","number","number","number"],"#,
    r#""edge_fields":["type","name_or_index","to_node"],"#,
    r#""edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"#,
    r#""string_or_number","node"],"#,
    r#""trace_function_info_fields":["function_id","name","script_name","script_id","line","column"],"#,
    r#""trace_node_fields":["id","function_info_index","count","size","children"],"#,
    r#""sample_fields":["timestamp_us","last_assigned_id"],"#,
    r#""location_fields":["object_index","script_id","line","column"]}"#
);

const NODE_FIELDS: u64 = 7;

// Indexes into `node_types[0]` and `edge_types[0]` of `META`.
const NODE_OBJECT: u64 = 3;
const NODE_SYNTHETIC: u64 = 9;
const EDGE_CONTEXT: u32 = 0;
const EDGE_ELEMENT: u32 = 1;
const EDGE_PROPERTY: u32 = 2;
const EDGE_INTERNAL: u32 = 3;
const EDGE_HIDDEN: u32 = 4;
const EDGE_WEAK: u32 = 6;

/// Names the export adds after the graph's strings, at `Layout::fixed` + their position.
const FIXED: [&str; 13] = [
    "?",
    "<element>",
    "<frame>",
    "<ref>",
    "<stack>",
    "<member>",
    "<external>",
    "<weakref>",
    "(modules)",
    "(threads)",
    "(external references)",
    "(other roots)",
    "(cyclic garbage)",
];
const FIXED_UNKNOWN: u32 = 0;
const FIXED_ELEMENT: u32 = 1;
const FIXED_FRAME: u32 = 2;
const FIXED_REF: u32 = 3;
const FIXED_STACK: u32 = 4;
const FIXED_MEMBER: u32 = 5;
const FIXED_EXTERNAL: u32 = 6;
const FIXED_WEAKREF: u32 = 7;
/// The group nodes under the root, in output order; their names are `FIXED[FIXED_GROUPS + g]`.
const FIXED_GROUPS: u32 = 8;
const GROUP_MODULES: usize = 0;
const GROUP_THREADS: usize = 1;
const GROUP_EXTERNAL: usize = 2;
const GROUP_OTHER: usize = 3;
/// Not a root group: objects no root reaches ([`NodeFlags::UNREACHABLE`]).
const GROUP_GARBAGE: usize = 4;
const GROUPS: usize = 5;

/// Object ids: bits of the byte address that select a chunk, and bits of the id space.
const CHUNK_BITS: u32 = 20;
const ID_BITS: u32 = 31;
/// Addresses are divided by their common alignment, up to 8 bytes (every `PyObject` on a 64-bit
/// build), so a chunk spans 2^17 ids and the id space 2^14 chunks.
const MAX_ALIGN_BITS: u32 = 3;
const MAX_CHUNKS: usize = 1 << (ID_BITS - CHUNK_BITS + MAX_ALIGN_BITS);

/// Writes `graph` as a Chrome DevTools heap snapshot (JSON), streaming. See the module
/// documentation for the mapping. Fails with [`Error::TooLarge`] for a graph whose node offsets
/// or string indexes would not fit DevTools' 32-bit arrays (more than 613 million nodes), and
/// with [`Error::Io`] (path `<stream>`) when writing fails.
pub fn write_heapsnapshot(graph: &Graph, out: impl Write) -> Result<()> {
    let layout = Layout::new(graph)?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    layout.write(&mut w).map_err(io_error)?;
    w.flush().map_err(io_error)
}

fn io_error(source: std::io::Error) -> Error {
    Error::Io {
        path: "<stream>".into(),
        source,
    }
}

/// Everything decided before the first byte is written: where each node goes, what names index.
struct Layout<'g> {
    graph: &'g Graph,
    root: NodeId,
    /// Edges per group, and each group's node index in the output (0 when empty).
    group_edges: [u32; GROUPS],
    group_node: [u32; GROUPS],
    groups: u32,
    /// Index of `FIXED[0]` in `strings`: the graph's own strings come first.
    fixed: u32,
    /// Per type: the index of its display name in `strings`.
    type_names: Vec<u32>,
    /// Display names that are not in the graph's string table, indexed from `fixed + FIXED.len()`.
    extra_type_names: Vec<String>,
    /// Index of the first synthetic node's combined name; one follows per synthetic node.
    synthetic_names: u32,
    ids: ObjectIds,
}

impl<'g> Layout<'g> {
    fn new(graph: &'g Graph) -> Result<Self> {
        let nodes = graph.node_count() as u64;
        let root = graph.root();
        let mut group_edges = [0u32; GROUPS];
        for (&t, &l) in graph.targets(root).iter().zip(graph.labels(root)) {
            group_edges[group_of(graph, t, l)] += 1;
        }
        let mut synthetic = 0u64;
        for n in 0..graph.node_count() as NodeId {
            let flags = graph.flags(n);
            if flags.contains(NodeFlags::SYNTHETIC) {
                synthetic += u64::from(n != root);
            } else if flags.contains(NodeFlags::UNREACHABLE) {
                group_edges[GROUP_GARBAGE] += 1;
            }
        }
        let mut group_node = [0u32; GROUPS];
        let mut groups = 0;
        for g in 0..GROUPS {
            if group_edges[g] > 0 {
                groups += 1;
                group_node[g] = groups;
            }
        }
        let too_large = Error::TooLarge {
            what: "nodes for a Chrome heap snapshot",
            limit: u32::MAX as u64 / NODE_FIELDS - GROUPS as u64,
        };
        if (nodes + groups as u64) * NODE_FIELDS > u32::MAX as u64 {
            return Err(too_large);
        }

        let strings = graph.strings();
        let fixed = strings.len() as u64;
        let mut next = fixed + FIXED.len() as u64;
        let mut type_names = Vec::with_capacity(graph.types().len());
        let mut extra_type_names = Vec::new();
        for (id, _) in graph.types().iter() {
            let name = graph.types().display_name(id, strings);
            // Builtins are named by their interned qualname; only `module.qualname` is new.
            match strings.find(&name) {
                Some(s) => type_names.push(s.0),
                None => {
                    type_names.push(next as u32);
                    extra_type_names.push(name);
                    next += 1;
                }
            }
        }
        let ids = ObjectIds::new(graph);
        if next + synthetic > u32::MAX as u64 {
            return Err(Error::TooLarge {
                what: "strings for a Chrome heap snapshot",
                limit: u32::MAX as u64,
            });
        }
        Ok(Layout {
            graph,
            root,
            group_edges,
            group_node,
            groups,
            fixed: fixed as u32,
            type_names,
            extra_type_names,
            synthetic_names: next as u32,
            ids,
        })
    }

    /// The node's position in the output: the root first, then the groups, then the rest in
    /// graph order (so nodes before the root shift by one more than the groups).
    #[inline]
    fn position(&self, n: NodeId) -> u64 {
        let shift = self.groups as u64;
        match n.cmp(&self.root) {
            std::cmp::Ordering::Less => n as u64 + 1 + shift,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => n as u64 + shift,
        }
    }

    fn fixed(&self, i: u32) -> u32 {
        self.fixed + i
    }

    /// The string index of a label's name, or of `?` for a name the table does not hold.
    fn name_of(&self, id: Option<StringId>) -> u32 {
        id.and_then(|s| self.graph.strings().position(s))
            .unwrap_or(self.fixed(FIXED_UNKNOWN))
    }

    fn type_name(&self, n: NodeId) -> u32 {
        let t = self.graph.type_id(n).0 as usize;
        self.type_names
            .get(t)
            .copied()
            .unwrap_or(self.fixed(FIXED_UNKNOWN))
    }

    fn text(&self, index: u32) -> &str {
        if index < self.fixed {
            let strings = self.graph.strings();
            return strings.at_position(index).map_or("?", |id| strings.get(id));
        }
        let extra = (index - self.fixed) as usize;
        FIXED
            .get(extra)
            .copied()
            .or_else(|| {
                self.extra_type_names
                    .get(extra - FIXED.len())
                    .map(String::as_str)
            })
            .unwrap_or("?")
    }

    /// (edge type, name_or_index) for an edge with `label`, the `position`-th of its source.
    #[inline]
    fn edge_fields(&self, label: Label, position: u32) -> (u32, u32) {
        let kind = label.kind();
        if label.is_weak() {
            let name = match kind {
                LabelKind::Index => self.fixed(FIXED_ELEMENT),
                LabelKind::Frame => self.fixed(FIXED_FRAME),
                LabelKind::None => self.fixed(FIXED_REF),
                LabelKind::Stack => self.fixed(FIXED_STACK),
                LabelKind::Member => self.fixed(FIXED_MEMBER),
                LabelKind::External => self.fixed(FIXED_EXTERNAL),
                LabelKind::Referent => self.fixed(FIXED_WEAKREF),
                _ => self.name_of(label.name()),
            };
            return (EDGE_WEAK, name);
        }
        match kind {
            LabelKind::Index | LabelKind::Frame => match label.number() {
                Some(i) => (EDGE_ELEMENT, i),
                None => (EDGE_PROPERTY, self.fixed(FIXED_UNKNOWN)),
            },
            LabelKind::Attr | LabelKind::Key | LabelKind::KeyRepr | LabelKind::Root => {
                (EDGE_PROPERTY, self.name_of(label.name()))
            }
            LabelKind::Member => (EDGE_PROPERTY, self.fixed(FIXED_MEMBER)),
            LabelKind::Local => (EDGE_CONTEXT, self.name_of(label.name())),
            LabelKind::Field | LabelKind::DictKey | LabelKind::DictKeyStr => {
                (EDGE_INTERNAL, self.name_of(label.name()))
            }
            LabelKind::Stack => (EDGE_INTERNAL, self.fixed(FIXED_STACK)),
            LabelKind::External => (EDGE_INTERNAL, self.fixed(FIXED_EXTERNAL)),
            // A referent label is built weak; one that is not still names a weak reference.
            LabelKind::Referent => (EDGE_WEAK, self.fixed(FIXED_WEAKREF)),
            LabelKind::None => (EDGE_HIDDEN, position),
        }
    }

    fn write<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let g = self.graph;
        let node_count = g.node_count() as u64 + self.groups as u64;
        let garbage = self.group_edges[GROUP_GARBAGE] as u64;
        let edge_count = g.edge_count() as u64 + self.groups as u64 + garbage;
        w.write_all(b"{\"snapshot\":{\"meta\":")?;
        w.write_all(META.as_bytes())?;
        let mut line = Line::new();
        line.text(b",\"node_count\":");
        line.num(node_count);
        line.text(b",\"edge_count\":");
        line.num(edge_count);
        line.text(b",\"trace_function_count\":0},\n\"nodes\":[");
        w.write_all(line.take())?;
        self.write_nodes(w)?;
        w.write_all(b"],\n\"edges\":[")?;
        self.write_edges(w)?;
        w.write_all(
            b"],\n\"trace_function_infos\":[],\n\"trace_tree\":[],\n\"samples\":[],\n\
              \"locations\":[],\n\"strings\":[",
        )?;
        self.write_strings(w)?;
        w.write_all(b"]}\n")
    }

    fn write_nodes<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let g = self.graph;
        let mut line = Line::new();
        let mut synthetic_id = 0u64;
        let mut synthetic = |line: &mut Line, name: u32, edges: u64| {
            synthetic_id += 2;
            node(line, NODE_SYNTHETIC, name, synthetic_id, 0, edges);
        };
        synthetic(&mut line, self.type_name(self.root), self.groups as u64);
        w.write_all(line.take())?;
        for grp in 0..GROUPS {
            if self.group_edges[grp] > 0 {
                line.byte(b',');
                let name = self.fixed(FIXED_GROUPS + grp as u32);
                synthetic(&mut line, name, self.group_edges[grp] as u64);
                w.write_all(line.take())?;
            }
        }
        let mut ids = self.ids.cursor();
        let mut synthetic_name = self.synthetic_names;
        for n in 0..g.node_count() as NodeId {
            if n == self.root {
                continue;
            }
            line.byte(b',');
            let edges = g.targets(n).len() as u64;
            if g.flags(n).contains(NodeFlags::SYNTHETIC) {
                synthetic(&mut line, synthetic_name, edges);
                synthetic_name += 1;
            } else {
                let id = ids.id(g.addr(n), self.position(n));
                let size = g.size(n).min(u32::MAX as u64);
                node(&mut line, NODE_OBJECT, self.type_name(n), id, size, edges);
            }
            w.write_all(line.take())?;
        }
        Ok(())
    }

    fn write_edges<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let g = self.graph;
        let mut line = Line::new();
        let mut first = true;
        let mut edge = |w: &mut W, kind: u32, name: u32, to: u64| {
            if !first {
                line.byte(b',');
            }
            first = false;
            line.num(kind as u64);
            line.byte(b',');
            line.num(name as u64);
            line.byte(b',');
            line.num(to * NODE_FIELDS);
            line.byte(b'\n');
            w.write_all(line.take())
        };
        for (i, &position) in self.group_node.iter().filter(|&&p| p > 0).enumerate() {
            edge(w, EDGE_ELEMENT, i as u32, position as u64)?;
        }
        let root_edges = g.targets(self.root).iter().zip(g.labels(self.root));
        for grp in [GROUP_MODULES, GROUP_THREADS, GROUP_EXTERNAL, GROUP_OTHER] {
            let members = root_edges
                .clone()
                .filter(|&(&t, &l)| group_of(g, t, l) == grp);
            for (position, (&t, &l)) in members.enumerate() {
                let (kind, name) = self.edge_fields(l, position as u32);
                edge(w, kind, name, self.position(t))?;
            }
        }
        if self.group_edges[GROUP_GARBAGE] > 0 {
            let garbage = (0..g.node_count() as NodeId).filter(|&n| {
                let flags = g.flags(n);
                flags.contains(NodeFlags::UNREACHABLE) && !flags.contains(NodeFlags::SYNTHETIC)
            });
            for (i, n) in garbage.enumerate() {
                edge(w, EDGE_ELEMENT, i as u32, self.position(n))?;
            }
        }
        for n in 0..g.node_count() as NodeId {
            if n == self.root {
                continue;
            }
            let labelled = g.targets(n).iter().zip(g.labels(n));
            for (position, (&t, &l)) in labelled.enumerate() {
                let (kind, name) = self.edge_fields(l, position as u32);
                edge(w, kind, name, self.position(t))?;
            }
        }
        Ok(())
    }

    fn write_strings<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let g = self.graph;
        let own = g.strings().iter().map(|(_, s)| s);
        let extra = FIXED
            .iter()
            .copied()
            .chain(self.extra_type_names.iter().map(String::as_str));
        for (i, s) in own.chain(extra).enumerate() {
            if i > 0 {
                w.write_all(b",\n")?;
            }
            write_json_string(w, &[s])?;
        }
        // In the order `write_nodes` numbered them.
        for n in 0..g.node_count() as NodeId {
            if n == self.root || !g.flags(n).contains(NodeFlags::SYNTHETIC) {
                continue;
            }
            w.write_all(b",\n")?;
            let pseudo = self.text(self.type_name(n));
            match g.name(n) {
                Some(name) => write_json_string(w, &[pseudo, " ", name])?,
                None => write_json_string(w, &[pseudo])?,
            }
        }
        Ok(())
    }
}

/// Which group node under the root holds a root edge.
fn group_of(graph: &Graph, target: NodeId, label: Label) -> usize {
    let flags = graph.flags(target);
    if label.kind() == LabelKind::External {
        GROUP_EXTERNAL
    } else if flags.contains(NodeFlags::THREAD) {
        GROUP_THREADS
    } else if flags.contains(NodeFlags::MODULE) {
        GROUP_MODULES
    } else {
        GROUP_OTHER
    }
}

/// Appends one node's seven fields (trace node id and detachedness are always 0).
#[inline]
fn node(line: &mut Line, kind: u64, name: u32, id: u64, size: u64, edges: u64) {
    for v in [kind, name as u64, id, size, edges] {
        line.num(v);
        line.byte(b',');
    }
    line.text(b"0,0\n");
}

/// Odd object ids from addresses; see the module documentation.
struct ObjectIds {
    /// log2 of the addresses' common alignment, at most `MAX_ALIGN_BITS`.
    align: u32,
    /// Chunk (address >> `CHUNK_BITS`) to slot; empty when ids are by position.
    slots: HashMap<u64, u32>,
}

impl ObjectIds {
    fn new(graph: &Graph) -> Self {
        let mut align = MAX_ALIGN_BITS;
        let mut chunks = HashSet::new();
        let mut last = None;
        for n in graph.objects() {
            let addr = graph.addr(n);
            align = align.min(addr.trailing_zeros());
            let chunk = addr >> CHUNK_BITS;
            // Neighbouring nodes mostly share a chunk; past the limit the set stops growing.
            if last != Some(chunk) && chunks.len() <= MAX_CHUNKS {
                chunks.insert(chunk);
                last = Some(chunk);
            }
        }
        let slot_count = 1usize << (ID_BITS - CHUNK_BITS + align);
        let mut slots = HashMap::new();
        if chunks.len() <= slot_count {
            let mut sorted: Vec<u64> = chunks.into_iter().collect();
            sorted.sort_unstable();
            let mut taken = vec![false; slot_count];
            slots.reserve(sorted.len());
            for chunk in sorted {
                let mut slot = (chunk as usize) & (slot_count - 1);
                while taken[slot] {
                    slot = (slot + 1) & (slot_count - 1);
                }
                taken[slot] = true;
                slots.insert(chunk, slot as u32);
            }
        }
        ObjectIds { align, slots }
    }

    fn cursor(&self) -> IdCursor<'_> {
        IdCursor {
            ids: self,
            last: None,
        }
    }
}

/// Looks up ids, remembering the last chunk (consecutive objects often share one).
struct IdCursor<'a> {
    ids: &'a ObjectIds,
    last: Option<(u64, u64)>,
}

impl IdCursor<'_> {
    /// The id of the object at `addr`, written at `position` in the output.
    #[inline]
    fn id(&mut self, addr: u64, position: u64) -> u64 {
        let chunk = addr >> CHUNK_BITS;
        let slot = match self.last {
            Some((c, s)) if c == chunk => Some(s),
            _ => self.ids.slots.get(&chunk).map(|&s| s as u64),
        };
        match slot {
            Some(slot) => {
                self.last = Some((chunk, slot));
                let word_bits = CHUNK_BITS - self.ids.align;
                let word = (addr & ((1 << CHUNK_BITS) - 1)) >> self.ids.align;
                2 * ((slot << word_bits) | word) + 1
            }
            // Too many chunks to map: unique ids by position, which are below 2^32 since
            // positions times 7 are.
            None => 2 * position + 1,
        }
    }
}

/// A buffer for one line of numbers, written with one `write_all`.
struct Line {
    buf: [u8; 128],
    len: usize,
}

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 128],
            len: 0,
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn text(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Appends `v` in decimal, two digits at a time (`fmt` costs several times more here, on
    /// tens of millions of numbers).
    #[inline]
    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            let pair = v as usize * 2;
            i -= 2;
            digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            i -= 1;
            digits[i] = b'0' + v as u8;
        }
        self.text(&digits[i..]);
    }

    /// The line so far; the buffer starts over.
    fn take(&mut self) -> &[u8] {
        let len = std::mem::take(&mut self.len);
        &self.buf[..len]
    }
}

/// Writes the concatenation of `parts` as one JSON string. Object reprs and dict keys are
/// attacker-controlled text, so everything that could end the string, break a JavaScript line
/// or close an HTML `<script>` is escaped; other UTF-8 passes through.
fn write_json_string<W: Write>(w: &mut W, parts: &[&str]) -> std::io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    w.write_all(b"\"")?;
    for part in parts {
        let bytes = part.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let mut unicode = [b'\\', b'u', b'0', b'0', 0, 0];
            let (escape, len): (&[u8], usize) = match b {
                b'"' => (b"\\\"", 1),
                b'\\' => (b"\\\\", 1),
                b'\n' => (b"\\n", 1),
                b'\r' => (b"\\r", 1),
                b'\t' => (b"\\t", 1),
                0..=0x1f | b'<' | b'>' | b'&' => {
                    unicode[4] = HEX[(b >> 4) as usize];
                    unicode[5] = HEX[(b & 0xf) as usize];
                    (&unicode, 1)
                }
                // U+2028 and U+2029 (E2 80 A8/A9): line terminators to JavaScript.
                0xe2 if bytes.get(i + 1) == Some(&0x80)
                    && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
                {
                    let last = if bytes[i + 2] == 0xa8 { b'8' } else { b'9' };
                    unicode[2] = b'2';
                    unicode[3] = b'0';
                    unicode[4] = b'2';
                    unicode[5] = last;
                    (&unicode, 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            w.write_all(&bytes[start..i])?;
            w.write_all(escape)?;
            i += len;
            start = i;
        }
        w.write_all(&bytes[start..])?;
    }
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(parts: &[&str]) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, parts).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut line = Line::new();
        for v in [0, 7, 10, 99, 100, 12345, u32::MAX as u64, u64::MAX] {
            line.num(v);
            assert_eq!(line.take(), v.to_string().as_bytes());
        }
    }

    #[test]
    fn strings_are_escaped_for_json_javascript_and_html() {
        assert_eq!(json(&["a\"b\\c"]), r#""a\"b\\c""#);
        assert_eq!(json(&["\n\t\u{0}\u{1f}"]), r#""\n\t\u0000\u001f""#);
        assert_eq!(json(&["</script>"]), r#""\u003c/script\u003e""#);
        assert_eq!(json(&["x\u{2028}y\u{2029}"]), r#""x\u2028y\u2029""#);
        assert_eq!(json(&["é😀", " ", "€"]), "\"é😀 €\"");
    }

    #[test]
    fn ids_come_from_chunk_slots_and_the_word_in_the_chunk() {
        let (a, b) = (0x5555_5000_0008u64, 0x7f00_0000_0010u64);
        let ids = ObjectIds {
            align: 3,
            slots: [(a >> 20, 7), (b >> 20, 8)].into_iter().collect(),
        };
        let mut c = ids.cursor();
        assert_eq!(c.id(a, 0), 2 * ((7 << 17) | 1) + 1);
        assert_eq!(c.id(b, 0), 2 * ((8 << 17) | 2) + 1);
        assert_eq!(
            c.id(0x1234_0000_0000, 5),
            11,
            "an unmapped chunk falls back to position"
        );
    }
}
