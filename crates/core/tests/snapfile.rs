//! The `.hlsnap` format from the outside: round trips, the golden file of each released version,
//! atomic saves, and hostile input (every kind of damage is an error, never a panic).

use heaplens_core::graph::{AllocationsBuilder, Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::label::{Label, LabelKind};
use heaplens_core::snapfile::{self, FORMAT_VERSION, MAGIC};
use heaplens_core::strings::UNINDEXED;
use heaplens_core::types::{TypeFlags, TypeInfo};
use heaplens_core::Error;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A graph that uses every field of the format: all node flags, addresses that go up, down and
/// to the ends of the range, sizes on both sides of the big-size limit, every label kind (weak
/// ones too), names of synthetic and real nodes, type flags, odd text, and metadata.
///
/// `tests/data/golden-v1.hlsnap` was written from this graph, and its test compares the two:
/// leave it as it is (a later format version that needs more gets a graph of its own).
fn every_field_graph() -> Graph {
    let mut b = GraphBuilder::new();
    let t_module = b.intern_type("builtins", "module", "module");
    let t_dict = b.intern_type("builtins", "dict", "dict");
    let t_list = b.intern_type("builtins", "list", "list");
    let t_order = b.intern_type("shop.models", "Order", "Shop.Order");
    let (strings, types) = b.tables_mut();
    let t_blob = types
        .push(TypeInfo {
            module: strings.intern("native"),
            name: strings.intern("Blob"),
            qualname: strings.intern("Blob"),
            flags: TypeFlags::APPROXIMATE_SIZE,
        })
        .unwrap();
    let gc = NodeFlags::GC_TRACKED;

    let module = b.add_node(0x7f00_0000_1000);
    let dict = b.add_node(0x7f00_0000_1040);
    let list = b.add_node(0x10);
    let order = b.add_node(u64::MAX);
    let blob = b.add_node(0x7f00_0000_0ff0);
    let huge = b.add_node(0x5555_0000_0000);
    let garbage = b.add_node(0x7f00_0000_2000);
    let names: Vec<_> = [
        "cache",
        "é\u{202e}<b>'\"\\\n",
        "",
        "key 42",
        "x",
        "sys.modules['app']",
    ]
    .iter()
    .map(|s| b.strings_mut().intern(s))
    .collect();

    b.set_node(
        module,
        t_module,
        72,
        gc | NodeFlags::MODULE | NodeFlags::EXTERNAL,
    );
    b.set_name(module, "app");
    b.push_edge(dict, Label::field(names[0]));
    b.push_edge(module, Label::NONE);
    b.end_node();
    b.set_node(dict, t_dict, 65_534, gc);
    b.push_edge(list, Label::key(names[1]));
    b.push_edge(order, Label::key_repr(names[3]));
    b.push_edge(blob, Label::dict_key(names[3]));
    b.push_edge(huge, Label::dict_key_str(names[1]));
    b.push_edge(huge, Label::attr(names[2]).weak());
    b.end_node();
    b.set_node(list, t_list, 65_535, gc | NodeFlags::TYPE);
    for i in 0..4 {
        b.push_edge([order, blob, huge, dict][i], Label::index(i));
    }
    b.push_edge(order, Label::index(usize::MAX));
    b.end_node();
    b.set_node(order, t_order, 65_536, gc);
    b.push_edge(blob, Label::attr(names[4]));
    b.push_edge(list, Label::member());
    b.push_edge(dict, Label::referent());
    b.end_node();
    b.set_node(blob, t_blob, 5 << 30, NodeFlags::empty());
    b.end_node();
    b.set_node(huge, t_blob, u64::MAX, NodeFlags::empty());
    b.end_node();
    b.set_node(garbage, t_list, 0, gc | NodeFlags::UNREACHABLE);
    b.push_edge(garbage, Label::index(0));
    b.end_node();

    let thread = b.add_synthetic("(thread)", "MainThread", NodeFlags::THREAD);
    let frame = b.add_synthetic("(frame)", "handle (app.py:12)", NodeFlags::FRAME);
    b.push_edge(frame, Label::frame(0));
    b.end_node();
    b.push_edge(order, Label::local(names[4]));
    b.push_edge(list, Label::stack());
    b.push_edge(thread, Label::frame(usize::MAX));
    b.end_node();
    b.add_root_node();
    b.push_edge(module, Label::root(names[5]));
    b.push_edge(blob, Label::root_external());
    b.push_edge(thread, Label::root(names[1]).weak());
    b.end_node();

    let meta = b.meta_mut();
    meta.python_version = "3.12.3 (main, Apr 10 2024, 05:33:47) [GCC 13.2.0]".into();
    meta.producer = producer();
    meta.pid = 4242;
    meta.taken_at_ms = 1_717_171_717_171;
    meta.gc_enabled = Some(false);
    b.finish().unwrap()
}

/// What every file written by this heaplens names as its producer.
fn producer() -> String {
    format!("heaplens {}", heaplens_core::VERSION)
}

/// Asserts that two graphs hold the same facts, field by field, through the public accessors.
fn assert_same_graph(found: &Graph, expected: &Graph) {
    assert_eq!(found.node_count(), expected.node_count(), "node count");
    assert_eq!(found.edge_count(), expected.edge_count(), "edge count");
    assert_eq!(found.root(), expected.root(), "root");
    assert_eq!(found.meta(), expected.meta(), "metadata");
    let strings: Vec<_> = found.strings().iter().collect();
    assert_eq!(strings, expected.strings().iter().collect::<Vec<_>>());
    let types: Vec<_> = found.types().iter().map(|(id, t)| (id, *t)).collect();
    let expected_types: Vec<_> = expected.types().iter().map(|(id, t)| (id, *t)).collect();
    assert_eq!(types, expected_types);
    for n in 0..expected.node_count() as NodeId {
        assert_eq!(found.addr(n), expected.addr(n), "address of node {n}");
        assert_eq!(found.type_id(n), expected.type_id(n), "type of node {n}");
        assert_eq!(found.flags(n), expected.flags(n), "flags of node {n}");
        assert_eq!(found.size(n), expected.size(n), "size of node {n}");
        assert_eq!(found.name(n), expected.name(n), "name of node {n}");
        assert_eq!(
            found.declared_bound(n),
            expected.declared_bound(n),
            "bound of node {n}"
        );
        assert_eq!(
            found.allocated_at(n),
            expected.allocated_at(n),
            "allocation of node {n}"
        );
        assert_eq!(found.targets(n), expected.targets(n), "targets of node {n}");
        assert_eq!(found.labels(n), expected.labels(n), "labels of node {n}");
    }
}

fn to_bytes(graph: &Graph) -> Vec<u8> {
    let mut file = Vec::new();
    snapfile::write(graph, &mut file).unwrap();
    file
}

/// The detail of a format error, or a failure naming what came instead.
fn format_detail(result: heaplens_core::error::Result<Graph>) -> String {
    match result {
        Err(Error::Format { path, detail }) => {
            assert_eq!(path, "<stream>");
            detail
        }
        Err(other) => panic!("expected a format error, got {other:?}"),
        Ok(_) => panic!("expected a format error, got a graph"),
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("heaplens-snapfile-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_field_survives_a_round_trip() {
    let graph = every_field_graph_v3();
    let again = snapfile::read(&to_bytes(&graph)[..]).unwrap();
    assert_same_graph(&again, &graph);
    assert_eq!(again.size(5), u64::MAX);
    assert_eq!(again.name(again.root()), Some("roots"));
    assert_eq!(again.name(0), Some("app"));
    assert_eq!(again.describe_label(again.labels(1)[4]), ". (weak)");
    assert_eq!(again.describe_label(again.labels(2)[4]), "[?]");
    assert_eq!(again.declared_bound(1), Some(0));
}

#[test]
fn strings_keep_their_ids_so_interning_finds_each_at_its_own_id() {
    let graph = every_field_graph();
    let again = snapfile::read(&to_bytes(&graph)[..]).unwrap();
    for (id, text) in again.strings().iter() {
        assert_eq!(again.strings().find(text), Some(id), "{text:?}");
    }
}

#[test]
fn the_producer_is_the_heaplens_that_wrote_the_file() {
    let mut graph = every_field_graph();
    graph.meta_mut().producer = "something else 9.9".into();
    let again = snapfile::read(&to_bytes(&graph)[..]).unwrap();
    assert_eq!(again.meta().producer, producer());
}

#[test]
fn a_graph_with_only_its_root_round_trips() {
    let mut graph = GraphBuilder::new().finish().unwrap();
    graph.meta_mut().producer = producer();
    let again = snapfile::read(&to_bytes(&graph)[..]).unwrap();
    assert_same_graph(&again, &graph);
}

#[test]
fn a_larger_graph_round_trips_across_many_chunks() {
    // Enough data for many of the reader's and writer's chunks, with long strings that cross
    // chunk boundaries and edges to far nodes in both directions.
    let mut b = GraphBuilder::new();
    let t = b.intern_type("app", "Node", "Node");
    let long = b.strings_mut().intern(&"long text ".repeat(100_000));
    let nodes = 300_000u64;
    for i in 0..nodes {
        b.add_node(0x7f00_0000_0000 + 16 * i + (i % 7) * 4096);
    }
    for i in 0..nodes as NodeId {
        b.set_node(i, t, (i as u64 * 37) % 70_000, NodeFlags::GC_TRACKED);
        for k in 0..(i % 5) {
            let target = (i as u64 * 7919 + k as u64 * 104_729) % nodes;
            let label = if k % 2 == 0 {
                Label::index(k as usize)
            } else {
                Label::attr(long)
            };
            b.push_edge(target as NodeId, label);
        }
        b.end_node();
    }
    b.meta_mut().producer = producer();
    let graph = b.finish().unwrap();
    let file = to_bytes(&graph);
    let again = snapfile::read(&file[..]).unwrap();
    assert_same_graph(&again, &graph);
    // Fed a few bytes at a time, the reader gets the same graph.
    let again = snapfile::read(Trickle(&file[..])).unwrap();
    assert_same_graph(&again, &graph);
}

/// A reader that hands out at most 3 bytes per call, as pipes and sockets may.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(3).min(self.0.len());
        buf[..len].copy_from_slice(&self.0[..len]);
        self.0 = &self.0[len..];
        Ok(len)
    }
}

// ---------------------------------------------------------------------------------------------
// The golden files of each format version

fn golden_path(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/data/golden-v{version}.hlsnap"))
}

/// [`every_field_graph`] with what format version 3 added: containers that declare a bound
/// (the smallest and the largest a varint holds). `tests/data/golden-v3.hlsnap` holds it.
fn every_field_graph_v3() -> Graph {
    let mut g = every_field_graph();
    g.set_declared_bound(1, 0);
    g.set_declared_bound(2, u64::MAX);
    g
}

/// [`every_field_graph_v3`] with what format version 4 added: where objects were allocated (two
/// tracebacks sharing a frame, a hostile file name, a source line, the largest line number).
/// `tests/data/golden-v4.hlsnap` holds it.
fn every_field_graph_v4() -> Graph {
    let mut g = every_field_graph_v3();
    let mut b = AllocationsBuilder::new();
    let main = b.frame("/srv/app.py", 3);
    let make = b.frame("shop/models.py", u32::MAX);
    let hostile = b.frame("é\u{202e}<b>'\"\\\n.py", 0);
    let t = b.traceback(&[main, make]);
    let u = b.traceback(&[main, hostile]);
    b.object(2, t);
    b.object(3, t);
    b.object(5, u);
    let mut a = b.finish();
    a.set_code(main as usize, "main()");
    g.set_allocations(a).unwrap();
    g
}

/// [`every_field_graph_v4`] with what format version 5 added: unindexed strings, the texts of
/// dict keys only their dict refers to (a str key, an int key, an empty one, and one that
/// repeats an interned string), named by labels of every kind that names a key.
/// `tests/data/golden-v5.hlsnap` holds it.
fn every_field_graph_v5() -> Graph {
    let mut p = every_field_graph_v4().into_parts();
    let order = p.strings.add_unindexed("order-7");
    let id = p.strings.add_unindexed("140234567890123");
    let empty = p.strings.add_unindexed("");
    let hostile = p.strings.add_unindexed("é\u{202e}<b>'\"\\\n");
    // The dict (node 1): `[k]`, `[repr]`, `<key repr>`, `<key 'k'>`, then a weak attribute.
    let dict = p.offsets[1] as usize;
    p.labels[dict..dict + 5].copy_from_slice(&[
        Label::key(order),
        Label::key_repr(id),
        Label::dict_key(id),
        Label::dict_key_str(hostile),
        Label::attr(empty).weak(),
    ]);
    Graph::from_parts(p).unwrap()
}

#[test]
fn the_version_5_golden_file_loads_with_its_unindexed_key_texts() {
    let golden = snapfile::load(&golden_path(5)).unwrap();
    let mut expected = every_field_graph_v5();
    assert!(golden.meta().producer.starts_with("heaplens "));
    expected.meta_mut().producer = golden.meta().producer.clone();
    assert_same_graph(&golden, &expected);
    let dict_labels: Vec<String> = golden
        .labels(1)
        .iter()
        .map(|&l| golden.describe_label(l))
        .collect();
    assert_eq!(
        dict_labels,
        [
            "['order-7']",
            "[140234567890123]",
            "<key 140234567890123>",
            "<key 'é\u{202e}<b>\\'\"\\\\\\n'>",
            ". (weak)",
        ]
    );
    assert_eq!(golden.strings().unindexed_len(), 4);
    let first = golden.labels(1)[0].name().unwrap();
    assert_eq!(
        (first.0, golden.strings().get(first)),
        (UNINDEXED, "order-7")
    );
    assert_eq!(golden.allocations().traceback_count(), 2);
}

#[test]
fn unindexed_strings_survive_a_round_trip_with_their_ids() {
    let g = every_field_graph_v5();
    let again = snapfile::read(&to_bytes(&g)[..]).unwrap();
    assert_same_graph(&again, &g);
    assert_eq!(again.strings().unindexed_len(), 4);
    assert_eq!(
        again.describe_label(again.labels(1)[1]),
        "[140234567890123]"
    );
}

#[test]
fn the_version_4_golden_file_loads_with_the_allocation_tracebacks() {
    let golden = snapfile::load(&golden_path(4)).unwrap();
    let mut expected = every_field_graph_v4();
    assert!(golden.meta().producer.starts_with("heaplens "));
    expected.meta_mut().producer = golden.meta().producer.clone();
    assert_same_graph(&golden, &expected);
    assert_eq!(
        golden.allocated_at(3),
        [
            "/srv/app.py:3: main()",
            &format!("shop/models.py:{}", u32::MAX)
        ]
    );
    assert_eq!(golden.allocated_at(5)[1], "é\u{202e}<b>'\"\\\\n.py:0");
    assert!(golden.allocated_at(4).is_empty());
    assert_eq!(golden.allocations().traceback_count(), 2);
}

#[test]
fn allocation_tracebacks_survive_a_round_trip() {
    let g = every_field_graph_v4();
    let again = snapfile::read(&to_bytes(&g)[..]).unwrap();
    assert_same_graph(&again, &g);
    assert_eq!(again.allocations().len(), 3);
}

#[test]
fn the_version_3_golden_file_loads_with_the_declared_bounds() {
    let golden = snapfile::load(&golden_path(3)).unwrap();
    let mut expected = every_field_graph_v3();
    assert!(golden.meta().producer.starts_with("heaplens "));
    expected.meta_mut().producer = golden.meta().producer.clone();
    assert_same_graph(&golden, &expected);
    assert_eq!(golden.declared_bound(2), Some(u64::MAX));
    assert_eq!(golden.declared_bound(3), None);
}

#[test]
fn the_version_2_golden_file_loads_with_the_collector_state() {
    let golden = snapfile::load(&golden_path(2)).unwrap();
    let mut expected = every_field_graph();
    assert!(golden.meta().producer.starts_with("heaplens "));
    expected.meta_mut().producer = golden.meta().producer.clone();
    assert_same_graph(&golden, &expected);
    assert_eq!(golden.meta().gc_enabled, Some(false));
}

#[test]
fn the_version_1_golden_file_still_loads_with_every_field() {
    let golden = snapfile::load(&golden_path(1)).unwrap();
    let mut expected = every_field_graph();
    // Written by the heaplens of its day, whose version may differ from ours; version 1 did
    // not record the collector's state.
    assert!(golden.meta().producer.starts_with("heaplens "));
    expected.meta_mut().producer = golden.meta().producer.clone();
    expected.meta_mut().gc_enabled = None;
    assert_same_graph(&golden, &expected);
    // Spelled out as well, so that the test says what the file holds.
    assert_eq!(golden.node_count(), 10);
    assert_eq!(golden.edge_count(), 23);
    assert_eq!(golden.type_name(3), "shop.models.Shop.Order");
    assert_eq!(golden.addr(3), u64::MAX);
    assert_eq!(golden.size(4), 5 << 30);
    assert_eq!(golden.name(7), Some("MainThread"));
    assert_eq!(golden.name(8), Some("handle (app.py:12)"));
    assert_eq!(golden.meta().pid, 4242);
    let hostile = "é\u{202e}<b>'\"\\\n";
    let dict_labels: Vec<(LabelKind, bool, &str)> = golden
        .labels(1)
        .iter()
        .map(|l| {
            (
                l.kind(),
                l.is_weak(),
                l.name().map_or("?", |id| golden.strings().get(id)),
            )
        })
        .collect();
    assert_eq!(
        dict_labels,
        [
            (LabelKind::Key, false, hostile),
            (LabelKind::KeyRepr, false, "key 42"),
            (LabelKind::DictKey, false, "key 42"),
            (LabelKind::DictKeyStr, false, hostile),
            (LabelKind::Attr, true, ""),
        ]
    );
    let list_labels: Vec<String> = golden
        .labels(2)
        .iter()
        .map(|&l| golden.describe_label(l))
        .collect();
    assert_eq!(list_labels, ["[0]", "[1]", "[2]", "[3]", "[?]"]);
    let root_labels: Vec<String> = golden
        .labels(golden.root())
        .iter()
        .map(|&l| golden.describe_label(l))
        .collect();
    assert_eq!(root_labels[..2], ["sys.modules['app']", "<external>"]);
    assert!(golden.labels(golden.root())[2].is_weak());
}

/// Writes the golden file of the current format version. Run it only when a new format version
/// is released (old files stay beside it, and must keep loading):
/// `cargo test -p heaplens-core --test snapfile -- --ignored write_the_golden`.
#[test]
#[ignore = "writes tests/data/golden-vN.hlsnap; run by hand for a new format version"]
fn write_the_golden_file_of_this_version() {
    let path = golden_path(FORMAT_VERSION);
    assert!(
        !path.exists(),
        "{} exists: golden files are never rewritten",
        path.display()
    );
    snapfile::save(&every_field_graph_v5(), &path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Files: save and load

#[test]
fn save_and_load_round_trip_and_leave_no_temporary_file() {
    let dir = TempDir::new("round-trip");
    let path = dir.0.join("heap.hlsnap");
    snapfile::save(&every_field_graph(), &path).unwrap();
    // Saving again replaces the file whole.
    snapfile::save(&GraphBuilder::new().finish().unwrap(), &path).unwrap();
    assert_eq!(dir.entries(), ["heap.hlsnap"]);
    let again = snapfile::load(&path).unwrap();
    assert_eq!(again.node_count(), 1);
}

#[test]
fn saving_into_a_missing_directory_is_an_io_error_naming_the_path() {
    let dir = TempDir::new("missing-dir");
    let path = dir.0.join("no/such/dir/heap.hlsnap");
    match snapfile::save(&every_field_graph(), &path) {
        Err(Error::Io {
            path: shown,
            source,
        }) => {
            assert_eq!(shown, path.display().to_string());
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(dir.entries().is_empty());
}

#[test]
fn a_save_that_fails_midway_leaves_the_old_file_and_no_temporary_file() {
    let dir = TempDir::new("fails-midway");
    let path = dir.0.join("heap.hlsnap");
    snapfile::save(&every_field_graph(), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Metadata too large for a header: the save fails after its temporary file exists.
    let mut graph = every_field_graph();
    graph.meta_mut().python_version = "3".repeat(100_000);
    assert!(matches!(
        snapfile::save(&graph, &path),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(dir.entries(), ["heap.hlsnap"]);
}

#[test]
fn loading_a_missing_file_or_a_directory_is_an_io_error_naming_the_path() {
    let dir = TempDir::new("load-errors");
    for path in [dir.0.join("absent.hlsnap"), dir.0.clone()] {
        match snapfile::load(&path) {
            Err(Error::Io { path: shown, .. }) => assert_eq!(shown, path.display().to_string()),
            other => panic!("expected an I/O error for {path:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_damaged_file_on_disk_is_a_format_error_naming_the_path() {
    let dir = TempDir::new("damaged");
    let path = dir.0.join("heap.hlsnap");
    let mut file = to_bytes(&every_field_graph());
    let last = file.len() - 1;
    file[last] ^= 1;
    std::fs::write(&path, &file).unwrap();
    match snapfile::load(&path) {
        Err(Error::Format {
            path: shown,
            detail,
        }) => {
            assert_eq!(shown, path.display().to_string());
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// I/O errors of the caller's reader and writer

/// Delivers `good` bytes, then fails.
struct FailingReader<'a> {
    good: &'a [u8],
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the peer left",
            ));
        }
        let len = buf.len().min(self.good.len());
        buf[..len].copy_from_slice(&self.good[..len]);
        self.good = &self.good[len..];
        Ok(len)
    }
}

#[test]
fn a_failing_reader_is_an_io_error_in_the_header_and_in_the_body() {
    let file = to_bytes(&every_field_graph());
    for good in [0, 10, file.len() / 2, file.len()] {
        match snapfile::read(FailingReader {
            good: &file[..good],
        }) {
            Err(Error::Io { path, source }) => {
                assert_eq!(path, "<stream>");
                assert_eq!(source.kind(), io::ErrorKind::ConnectionReset);
                assert_eq!(source.to_string(), "the peer left");
            }
            other => panic!("after {good} bytes: expected an I/O error, got {other:?}"),
        }
    }
}

/// Accepts `room` bytes, then fails.
struct FailingWriter {
    room: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::other("disk full"));
        }
        let len = buf.len().min(self.room);
        self.room -= len;
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_is_an_io_error() {
    let graph = every_field_graph();
    let size = to_bytes(&graph).len();
    for room in [0, 20, size - 1] {
        match snapfile::write(&graph, FailingWriter { room }) {
            Err(Error::Io { path, source }) => {
                assert_eq!(path, "<stream>");
                assert_eq!(source.to_string(), "disk full");
            }
            other => panic!("with room for {room} bytes: expected an I/O error, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damage to a real file

#[test]
fn every_truncation_is_an_error() {
    let file = to_bytes(&every_field_graph_v5());
    assert_eq!(
        format_detail(snapfile::read(&file[..0])),
        "the file is empty"
    );
    for len in 1..file.len() {
        let detail = format_detail(snapfile::read(&file[..len]));
        assert!(detail.contains("truncated"), "cut at {len}: {detail}");
    }
}

#[test]
fn every_damaged_byte_is_an_error_or_changes_nothing() {
    let original = every_field_graph_v5();
    let file = to_bytes(&original);
    let mut errors = 0;
    let mut reads = 0;
    for i in 0..file.len() {
        // One bit (a different one from byte to byte) and then the whole byte.
        for flip in [1u8 << (i % 8), 0xff] {
            let mut damaged = file.clone();
            damaged[i] ^= flip;
            reads += 1;
            match snapfile::read(&damaged[..]) {
                Err(Error::Format { .. }) => errors += 1,
                Err(other) => panic!("byte {i} ^ {flip:#x}: unexpected {other:?}"),
                // A few bits of a zstd frame header do not change what it decodes to (the
                // window size, say); the content checksum vouches for the rest.
                Ok(graph) => assert_same_graph(&graph, &original),
            }
        }
    }
    assert!(
        errors >= reads * 99 / 100,
        "{errors} errors in {reads} reads"
    );
}

#[test]
fn a_damaged_header_is_reported_as_such() {
    let mut file = to_bytes(&every_field_graph());
    file[20] ^= 0x40; // in the producer text
    assert_eq!(
        format_detail(snapfile::read(&file[..])),
        "header checksum mismatch: the header is damaged"
    );
    let mut file = to_bytes(&every_field_graph());
    file[8] ^= 0x02; // the version: a damaged header, not a newer format
    assert_eq!(
        format_detail(snapfile::read(&file[..])),
        "header checksum mismatch: the header is damaged"
    );
    let mut file = to_bytes(&every_field_graph());
    file[15] = 0x7f; // a header length of two gigabytes
    let detail = format_detail(snapfile::read(&file[..]));
    assert!(
        detail.starts_with("damaged header: it declares"),
        "{detail}"
    );
}

#[test]
fn damage_to_the_body_is_a_checksum_mismatch_or_a_corrupt_body() {
    let file = to_bytes(&every_field_graph());
    let last = file.len() - 1; // the last byte of zstd's content checksum
    let mut damaged = file.clone();
    damaged[last] ^= 0x10;
    let detail = format_detail(snapfile::read(&damaged[..]));
    assert!(detail.starts_with("checksum mismatch"), "{detail}");
}

#[test]
fn anything_that_is_not_a_snapshot_is_refused_by_its_magic_number() {
    for not_a_snapshot in [
        &b"{\"snapshot\":{\"meta\":{}}}"[..],
        b"\x28\xb5\x2f\xfd",
        b"\x89PNG\r\n\x1a\n",
        b"x",
    ] {
        assert_eq!(
            format_detail(snapfile::read(not_a_snapshot)),
            "not a heaplens snapshot (it does not start with the .hlsnap magic number)"
        );
    }
}

#[test]
fn trailing_bytes_after_the_body_are_an_error() {
    let mut file = to_bytes(&every_field_graph());
    file.push(0);
    assert_eq!(
        format_detail(snapfile::read(&file[..])),
        "trailing bytes after the compressed body"
    );
    // A second snapshot appended is trailing bytes too, not a continuation of the first.
    let mut twice = to_bytes(&every_field_graph());
    let body_start = twice.len() - body_of(&twice).len();
    twice.extend_from_slice(&to_bytes(&every_field_graph())[body_start..]);
    assert_eq!(
        format_detail(snapfile::read(&twice[..])),
        "trailing bytes after the compressed body"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile files, made by hand

/// The compressed body of a file: what follows the header.
fn body_of(file: &[u8]) -> &[u8] {
    let fields = u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize;
    &file[16 + fields + 4..]
}

/// A valid header of format `version` (with a correct checksum) for the given fields.
fn header(version: u32, fields: &[u8]) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    header.extend_from_slice(fields);
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// Version 1 header fields.
fn fields(producer: &[u8], python: &[u8]) -> Vec<u8> {
    let mut fields = Vec::new();
    for text in [producer, python] {
        fields.extend_from_slice(&(text.len() as u32).to_le_bytes());
        fields.extend_from_slice(text);
    }
    fields.extend_from_slice(&7u32.to_le_bytes());
    fields.extend_from_slice(&8u64.to_le_bytes());
    fields
}

/// A file with a valid header and `body` compressed with a content checksum: only the body's
/// content is hostile.
fn file_with_body(body: &[u8]) -> Vec<u8> {
    let mut file = header(1, &fields(b"heaplens 0.1.0", b"3.12"));
    let mut encoder = zstd::Encoder::new(&mut file, 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap();
    file
}

/// A version 3 file with `body`: version 1's header fields, the collector's state, and a body
/// that ends with the bounds section.
fn file_with_body_v3(body: &[u8]) -> Vec<u8> {
    let mut fields = fields(b"heaplens 0.1.0", b"3.12");
    fields.push(2);
    let mut file = header(3, &fields);
    file.extend_from_slice(body_of(&file_with_body(body)));
    file
}

#[test]
fn declared_bounds_are_read_and_checked() {
    // Two nodes; node 1 declares a bound of 500.
    let two_nodes = Body::default()
        .varint(0)
        .nodes(&[0, 0])
        .varint(0)
        .varints(&[0, 0]);
    let good = two_nodes.clone().varints(&[1, 1, 500]);
    let graph = snapfile::read(&file_with_body_v3(&good.0)[..]).unwrap();
    assert_eq!(graph.declared_bound(1), Some(500));
    assert_eq!(graph.declared_bound(0), None);
    assert_eq!(graph.meta().gc_enabled, Some(true));
    for (bounds, why) in [
        (vec![1, 2, 500], "node"),
        (vec![3, 0, 1, 0, 1, 0, 1], "bounds"),
        (vec![1, 1], "truncated"),
    ] {
        let file = file_with_body_v3(&two_nodes.clone().varints(&bounds).0);
        let detail = format_detail(snapfile::read(&file[..]));
        assert!(
            detail.contains("bounds section") && detail.contains(why),
            "{bounds:?}: {detail}"
        );
    }
}

/// A version 5 file: `sections` up to the big sizes, no bounds, no allocations, then
/// `unindexed` (the unindexed strings section).
fn file_with_body_v5(sections: &Body, unindexed: &Body) -> Vec<u8> {
    let mut fields = fields(b"heaplens 0.1.0", b"3.12");
    fields.push(0);
    let mut file = header(5, &fields);
    let body = sections
        .clone()
        .varint(0)
        .varints(&[0, 0, 0, 0])
        .bytes(&unindexed.0);
    file.extend_from_slice(body_of(&file_with_body(&body.0)));
    file
}

#[test]
fn unindexed_strings_are_read_and_checked() {
    // One node whose one edge, to itself, is labelled by unindexed string 1.
    let label = Label::key(heaplens_core::strings::StringId(UNINDEXED + 1)).0;
    let labelled = Body::default()
        .varint(0)
        .nodes(&[1])
        .varints(&[1, 0, (label as i32 as i64 * 2) as u64])
        .varints(&[0, 0]);
    let good = Body::default().varint(2).varint(1).bytes(b"a").varint(0);
    let graph = snapfile::read(&file_with_body_v5(&labelled, &good)[..]).unwrap();
    assert_eq!(graph.describe_label(graph.labels(0)[0]), "['']");
    let a = graph.strings().at_position(1).unwrap();
    assert_eq!((a.0, graph.strings().get(a)), (UNINDEXED, "a"));
    let cases: [(Body, &str); 5] = [
        (
            Body::default().varint(1).varint(1).bytes(b"a"),
            "inconsistent graph: label 0x1c000001 names an unknown string",
        ),
        (
            Body::default().varints(&[1, 2]).bytes(b"\xc3\x28"),
            "in the unindexed strings section: unindexed string 0 is not valid UTF-8",
        ),
        (
            Body::default().varints(&[1, 20_000]),
            "in the unindexed strings section: unindexed string 0 is 20000 bytes long, more \
             than the 16384 a snapshot's string holds",
        ),
        (
            Body::default().varints(&[2, 1]).bytes(b"a"),
            "truncated in the unindexed strings section",
        ),
        (
            Body::default().varint(u32::MAX as u64),
            "in the unindexed strings section: it declares 4294967295 unindexed strings, more \
             than the 4227858430 a graph holds",
        ),
    ];
    for (unindexed, expected) in cases {
        let file = file_with_body_v5(&labelled, &unindexed);
        assert_eq!(format_detail(snapfile::read(&file[..])), expected);
    }
}

/// Builds a decompressed body by hand.
#[derive(Clone, Default)]
struct Body(Vec<u8>);

impl Body {
    fn varint(mut self, mut value: u64) -> Body {
        while value >= 0x80 {
            self.0.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
        self
    }

    fn varints(self, values: &[u64]) -> Body {
        values.iter().fold(self, |body, &v| body.varint(v))
    }

    fn bytes(mut self, bytes: &[u8]) -> Body {
        self.0.extend_from_slice(bytes);
        self
    }

    /// One type named by string 0, then `nodes` nodes of that type, root 0, at address 0, of
    /// size 16, with the given out-degrees (the edges section follows).
    fn nodes(self, degrees: &[u64]) -> Body {
        let n = degrees.len();
        let mut body = self
            .varints(&[1, 0, 0, 0])
            .bytes(&[0])
            .varints(&[n as u64, 0]);
        body = body.varints(&vec![0; n]);
        body = body.bytes(&vec![0; 4 * n]);
        body = (0..n).fold(body, |b, _| b.bytes(&16u16.to_le_bytes()));
        body.varints(degrees)
    }

    fn read(&self) -> heaplens_core::error::Result<Graph> {
        snapfile::read(&file_with_body(&self.0)[..])
    }
}

/// No strings, one type, one node with no edges, no names, no big sizes.
fn minimal_body() -> Body {
    Body::default()
        .varint(0)
        .nodes(&[0])
        .varint(0)
        .varints(&[0, 0])
}

#[test]
fn the_minimal_hand_made_body_is_valid() {
    let graph = minimal_body().read().unwrap();
    assert_eq!(graph.node_count(), 1);
    assert_eq!(graph.meta().python_version, "3.12");
    assert_eq!(graph.meta().pid, 7);
    assert_eq!(graph.meta().taken_at_ms, 8);
}

#[test]
fn another_format_version_is_a_version_error() {
    let next = FORMAT_VERSION + 1;
    let mut file = header(next, b"whatever the next version keeps here");
    file.extend_from_slice(body_of(&file_with_body(&minimal_body().0)));
    match snapfile::read(&file[..]) {
        Err(Error::Version {
            path,
            found,
            supported,
        }) => assert_eq!(
            (path.as_str(), found, supported),
            ("<stream>", next, FORMAT_VERSION)
        ),
        other => panic!("expected a version error, got {other:?}"),
    }
}

#[test]
fn malformed_header_fields_are_an_error() {
    for bad in [
        fields(b"heaplens", b"\xff\xfe"),
        fields(b"heaplens", b"3.12")[..20].to_vec(),
        [fields(b"heaplens", b"3.12"), vec![0]].concat(),
    ] {
        let mut file = header(1, &bad);
        file.extend_from_slice(body_of(&file_with_body(&minimal_body().0)));
        let detail = format_detail(snapfile::read(&file[..]));
        assert!(detail.starts_with("malformed header fields"), "{detail}");
    }
}

#[test]
fn a_body_that_is_not_a_checksummed_zstd_frame_is_an_error() {
    let mut file = header(1, &fields(b"heaplens", b"3.12"));
    assert_eq!(
        format_detail(snapfile::read(&file[..])),
        "truncated after the header: no body"
    );
    file.extend_from_slice(b"plain text");
    assert_eq!(
        format_detail(snapfile::read(&file[..])),
        "the body is not a zstd frame"
    );
    let mut file = header(1, &fields(b"heaplens", b"3.12"));
    file.extend_from_slice(&zstd::bulk::compress(&minimal_body().0, 3).unwrap());
    assert_eq!(
        format_detail(snapfile::read(&file[..])),
        "the body's zstd frame carries no content checksum"
    );
}

#[test]
fn a_frame_that_asks_for_a_huge_window_is_refused() {
    // 128 MiB of window for a body of a few bytes: the decompressor would allocate it.
    let mut file = header(1, &fields(b"heaplens", b"3.12"));
    let mut encoder = zstd::Encoder::new(&mut file, 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.window_log(27).unwrap();
    encoder.write_all(&minimal_body().0).unwrap();
    encoder.finish().unwrap();
    let detail = format_detail(snapfile::read(&file[..]));
    assert_eq!(
        detail,
        "the compressed body is corrupt, found in the strings section \
         (Frame requires too much memory for decoding)"
    );
}

#[test]
fn hostile_counts_are_errors_without_allocating_for_them() {
    // Four billion nodes declared, none delivered: an error, and no four-billion-entry arrays
    // (with no memory limit at all), or refused at once where they could not fit.
    let four_billion = Body::default()
        .varint(0)
        .varints(&[1, 0, 0, 0])
        .bytes(&[0])
        .varints(&[4_000_000_000, 0]);
    let file = file_with_body(&four_billion.0);
    let detail = format_detail(snapfile::read_limited(&file[..], u64::MAX));
    assert_eq!(detail, "truncated in the nodes section");
    let detail = format_detail(snapfile::read_limited(&file[..], 1 << 30));
    assert!(
        detail.starts_with(
            "in the nodes section: it declares 4000000000 nodes, which take at least 67.1 GiB \
             in memory, more than the 1.0 GiB this process can get"
        ),
        "{detail}"
    );
    let cases: [(Body, &str); 7] = [
        (
            Body::default().varint(1 << 26),
            "in the strings section: it declares 67108864 strings, more than the 67108863 a graph holds",
        ),
        (Body::default().varint(5_000_000_000), "in the strings section: it declares 5000000000 strings"),
        (Body::default().varints(&[0, 1 << 30]), "in the types section: it declares 1073741824 types"),
        (
            Body::default().varints(&[0, 0, 1 << 40]),
            "in the nodes section: it declares 1099511627776 nodes",
        ),
        (
            Body::default().varint(0).nodes(&[0]).varint(0).varints(&[1 << 33]),
            "in the names section: it declares 8589934592 names, more than the 1 a graph holds",
        ),
        (
            Body::default().varint(0).nodes(&[u32::MAX as u64, 1]),
            "in the nodes section: the out-degrees add up to more than 2^32 - 1 edges",
        ),
        // Found by fuzzing (snapshot_body): degrees whose sum overflows 64 bits.
        (
            Body::default().varint(0).nodes(&[1, u64::MAX]),
            "in the nodes section: the out-degrees add up to more than 2^32 - 1 edges",
        ),
    ];
    for (body, expected) in cases {
        let detail = format_detail(body.read());
        assert!(detail.starts_with(expected), "{detail}");
    }
    // A string that claims four gigabytes but holds three bytes: refused by its length.
    let detail = format_detail(
        Body::default()
            .varints(&[1, u32::MAX as u64])
            .bytes(b"abc")
            .read(),
    );
    assert_eq!(
        detail,
        "in the strings section: string 1 is 4294967295 bytes long, more than the 16384 a \
         snapshot's string holds"
    );
}

/// A file whose body is `prefix` and then `zeros` zero bytes, compressed as zstd compresses
/// runs: kilobytes on disk for gigabytes of body.
fn file_with_zeros_after(prefix: &Body, zeros: usize) -> Vec<u8> {
    let mut file = header(1, &fields(b"heaplens 0.1.0", b"3.12"));
    let mut encoder = zstd::Encoder::new(&mut file, 1).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(&prefix.0).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros / block.len() {
        encoder.write_all(&block).unwrap();
    }
    encoder.write_all(&block[..zeros % block.len()]).unwrap();
    encoder.finish().unwrap();
    file
}

#[test]
fn a_small_file_that_decodes_to_more_than_the_memory_limit_is_refused_not_allocated() {
    // 40 million nodes of zeros: 320 MB of body in a file of a few kilobytes, 720 MB of arrays.
    let nodes = 40_000_000u64;
    let prefix = Body::default()
        .varint(0)
        .varints(&[1, 0, 0, 0])
        .bytes(&[0])
        .varints(&[nodes, 0]);
    let file = file_with_zeros_after(&prefix, nodes as usize * 8);
    assert!(file.len() < 64 * 1024, "{} bytes", file.len());
    // Refused at once when the declared count cannot fit, before decoding anything more.
    let detail = format_detail(snapfile::read_limited(&file[..], 100 << 20));
    assert!(
        detail.starts_with("in the nodes section: it declares 40000000 nodes"),
        "{detail}"
    );
}

#[test]
fn a_few_kilobytes_may_not_decode_into_gigabytes_even_with_memory_to_spare() {
    // 80 million nodes of zeros: 640 MB of body in a file of tens of kilobytes, 1.4 GB of
    // arrays: refused once the arrays pass 64 MiB, at tens of thousands times the file.
    let nodes = 80_000_000u64;
    let prefix = Body::default()
        .varint(0)
        .varints(&[1, 0, 0, 0])
        .bytes(&[0])
        .varints(&[nodes, 0]);
    let file = file_with_zeros_after(&prefix, nodes as usize * 8);
    assert!(file.len() < 128 * 1024, "{} bytes", file.len());
    let detail = format_detail(snapfile::read_limited(&file[..], u64::MAX));
    assert!(
        detail.contains("over 10000 times their size") && detail.contains("crafted"),
        "{detail}"
    );
}

#[test]
fn many_distinct_strings_are_charged_against_the_memory_limit() {
    let mut body = Body::default().varint(20_000);
    for i in 0..20_000u32 {
        let text = format!("{i:0>1000}");
        body = body.varint(text.len() as u64).bytes(text.as_bytes());
    }
    let file = file_with_body(&body.0);
    let detail = format_detail(snapfile::read_limited(&file[..], 4 << 20));
    assert!(
        detail.starts_with("in the strings section: loading it needs more memory"),
        "{detail}"
    );
}

#[test]
fn a_file_within_its_memory_limit_still_loads() {
    let graph = every_field_graph();
    let bytes = to_bytes(&graph);
    let again = snapfile::read_limited(&bytes[..], 1 << 20).unwrap();
    assert_same_graph(&again, &graph);
}

#[test]
fn varints_that_overflow_64_bits_are_errors() {
    for overlong in [
        &[0xff; 11][..],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
    ] {
        let detail = format_detail(Body::default().bytes(overlong).read());
        assert_eq!(detail, "in the strings section: a varint overflows 64 bits");
    }
    // The largest 10-byte varint is fine as a varint (and then far too many strings).
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    let detail = format_detail(Body::default().bytes(&max).read());
    assert!(detail.contains("18446744073709551615 strings"), "{detail}");
}

#[test]
fn bad_strings_are_errors() {
    let cases: [(Body, &str); 4] = [
        (
            Body::default().varints(&[1, 2]).bytes(b"\xc3\x28"),
            "in the strings section: string 1 is not valid UTF-8",
        ),
        (
            Body::default()
                .varints(&[2, 1])
                .bytes(b"a")
                .varint(1)
                .bytes(b"a"),
            "in the strings section: string 2 repeats string 1",
        ),
        (
            Body::default().varints(&[1, 0]),
            "in the strings section: string 1 repeats string 0",
        ),
        (
            Body::default().varints(&[3, 1]).bytes(b"a"),
            "truncated in the strings section",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(format_detail(body.read()), expected);
    }
}

#[test]
fn counts_that_disagree_with_the_data_are_errors() {
    let cases: [(Body, &str); 5] = [
        (
            Body::default().varint(0).nodes(&[1]).varint(2),
            "in the edges section: it declares 2 edges, but the out-degrees add up to 1",
        ),
        (
            Body::default()
                .varint(0)
                .nodes(&[2])
                .varint(2)
                .varints(&[0]),
            "truncated in the edges section",
        ),
        (
            minimal_body().varint(0),
            "in the end of the body: trailing data after the last section",
        ),
        (
            Body::default()
                .varint(0)
                .nodes(&[0])
                .varint(0)
                .varints(&[0, 1, 0, 70_000]),
            "in the big sizes section: it holds 1 sizes, but 0 nodes have a size of 65535 or more",
        ),
        (
            Body::default().varint(0).nodes(&[0]).varint(0).varint(0),
            "truncated in the big sizes section",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(format_detail(body.read()), expected);
    }
}

#[test]
fn out_of_range_ids_are_errors() {
    let big_size_node = |size: u64| {
        let mut body = Body::default().varint(0).varints(&[1, 0, 0, 0]).bytes(&[0]);
        body = body
            .varints(&[1, 0, 0])
            .bytes(&[0; 4])
            .bytes(&u16::MAX.to_le_bytes());
        body.varints(&[0, 0, 0, 1, 0, size])
    };
    let cases: [(Body, &str); 9] = [
        (
            Body::default()
                .varint(0)
                .nodes(&[1])
                .varints(&[1, 2])
                .varint(0),
            "in the edges section: an edge of node 0 points outside the 1 nodes",
        ),
        (
            Body::default()
                .varint(0)
                .nodes(&[1])
                .varints(&[1, 1])
                .varint(0),
            "in the edges section: an edge of node 0 points outside the 1 nodes",
        ),
        (
            Body::default()
                .varint(0)
                .nodes(&[1])
                .varints(&[1, u64::MAX])
                .varint(0),
            "in the edges section: an edge of node 0 points outside the 1 nodes",
        ),
        (
            Body::default()
                .varint(0)
                .varints(&[1, 0, 0, 0])
                .bytes(&[0])
                .varints(&[1, 1]),
            "in the nodes section: the root is node 1 of 1",
        ),
        (
            Body::default()
                .varint(0)
                .varints(&[1, 0, 0, 0])
                .bytes(&[0])
                .varints(&[0, 0]),
            "in the nodes section: the root is node 0 of 0",
        ),
        (
            Body::default()
                .varint(0)
                .nodes(&[0])
                .varint(0)
                .varints(&[1, 1, 0]),
            "in the names section: node 1 of 1",
        ),
        (
            Body::default()
                .varint(0)
                .nodes(&[0])
                .varint(0)
                .varints(&[1, 0, 1 << 32]),
            "in the names section: string id 4294967296 is out of range",
        ),
        (
            big_size_node(65_534),
            "in the big sizes section: node 0 has a big size of 65534, below 65535",
        ),
        (
            Body::default()
                .varint(0)
                .varints(&[1, 0, 0, 0])
                .bytes(&[0])
                .varints(&[1, 0, 0])
                .bytes(&[0; 4]),
            "truncated in the nodes section",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(format_detail(body.read()), expected);
    }
    assert_eq!(big_size_node(65_535).read().unwrap().size(0), 65_535);
}

#[test]
fn ids_that_only_the_whole_graph_can_check_are_errors() {
    // Each is well-formed on its own; Graph::from_parts finds the inconsistency.
    let unknown_string_in_type = Body::default().varints(&[0, 1, 5, 0, 0]).bytes(&[0]);
    let unknown_type = Body::default()
        .varints(&[0, 1, 0, 0, 0])
        .bytes(&[0])
        .varints(&[1, 0, 0])
        .bytes(&7u32.to_le_bytes())
        .bytes(&[0, 0])
        .varints(&[0, 0, 0, 0]);
    let unknown_string_in_label = Body::default()
        .varint(0)
        .nodes(&[1])
        .varints(&[1, 0])
        .varint(((2u64 << 27) | 9) << 1)
        .varints(&[0, 0]);
    let unknown_string_in_name = Body::default()
        .varint(0)
        .nodes(&[0])
        .varint(0)
        .varints(&[1, 0, 3, 0]);
    for body in [
        unknown_string_in_type
            .varint(1)
            .varints(&[0, 0])
            .bytes(&[0; 6])
            .varints(&[0; 4]),
        unknown_type,
        unknown_string_in_label,
        unknown_string_in_name,
    ] {
        let detail = format_detail(body.read());
        assert!(detail.starts_with("inconsistent graph: "), "{detail}");
    }
}
