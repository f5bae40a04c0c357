//! The census: how many objects of each type, and how many bytes they take.
//!
//! Rows are keyed by the type's display name (`dict`, `myapp.Order`), so two censuses of the same
//! process can be compared even though type ids differ between captures; two distinct classes
//! with the same module and qualified name share a row (objgraph merges them the same way).

use crate::graph::{Graph, NodeFlags};
use crate::strings::StringTable;
use crate::types::{TypeFlags, TypeId, TypeTable};
use hashbrown::HashMap;

/// One row of a census.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeStat {
    /// `dict`, `collections.OrderedDict`, `myapp.Order`.
    pub name: String,
    /// objgraph's short name, `type(o).__name__`.
    pub short_name: String,
    /// objgraph's long name, `module.__name__` (`builtins.dict`).
    pub long_name: String,
    pub count: u64,
    /// Sum of the shallow sizes (`sys.getsizeof`).
    pub bytes: u64,
    /// Some objects of this type override `__sizeof__` in a way heaplens does not replicate, so
    /// `bytes` is a lower bound (see [`TypeFlags::APPROXIMATE_SIZE`]).
    pub approximate_size: bool,
}

/// Per-type counts and bytes of one heap, sorted by count (then bytes, then name), largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    rows: Vec<TypeStat>,
    /// Whether only gc-tracked objects were counted (objgraph's view) rather than every object.
    pub gc_only: bool,
}

/// How one type changed between two censuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeDelta {
    pub name: String,
    pub count: u64,
    pub count_delta: i64,
    pub bytes: u64,
    pub bytes_delta: i64,
}

impl Census {
    /// Builds a census from per-type-id counts and bytes (`counts[t]` for `TypeId(t)`).
    pub fn from_counts(
        types: &TypeTable,
        strings: &StringTable,
        counts: &[u64],
        bytes: &[u64],
        gc_only: bool,
    ) -> Census {
        let mut by_name: HashMap<String, TypeStat> = HashMap::new();
        for (id, info) in types.iter() {
            let i = id.0 as usize;
            let count = counts.get(i).copied().unwrap_or(0);
            if count == 0 || info.flags.contains(TypeFlags::SYNTHETIC) {
                continue;
            }
            let b = bytes.get(i).copied().unwrap_or(0);
            let name = types.display_name(id, strings);
            let row = by_name.entry(name.clone()).or_insert_with(|| TypeStat {
                name,
                short_name: types.short_name(id, strings).to_string(),
                long_name: types.long_name(id, strings),
                count: 0,
                bytes: 0,
                approximate_size: false,
            });
            row.count += count;
            row.bytes += b;
            row.approximate_size |= info.flags.contains(TypeFlags::APPROXIMATE_SIZE);
        }
        Census::sorted(by_name, gc_only)
    }

    /// The rows of `by_name` in the census order: count, then bytes, largest first, then name.
    fn sorted(by_name: HashMap<String, TypeStat>, gc_only: bool) -> Census {
        let mut rows: Vec<TypeStat> = by_name.into_values().collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.bytes.cmp(&a.bytes))
                .then(a.name.cmp(&b.name))
        });
        Census { rows, gc_only }
    }

    /// A census from rows already counted by name (rows with the same name are added up), as
    /// a reader of a history file or a test builds one.
    pub fn from_rows(rows: impl IntoIterator<Item = TypeStat>, gc_only: bool) -> Census {
        let mut by_name: HashMap<String, TypeStat> = HashMap::new();
        for row in rows {
            match by_name.get_mut(&row.name) {
                Some(r) => {
                    r.count = r.count.saturating_add(row.count);
                    r.bytes = r.bytes.saturating_add(row.bytes);
                    r.approximate_size |= row.approximate_size;
                }
                None => {
                    by_name.insert(row.name.clone(), row);
                }
            }
        }
        Census::sorted(by_name, gc_only)
    }

    /// The census of a snapshot: every real object (synthetic nodes excluded), unreachable
    /// garbage included (it is still in memory).
    pub fn from_graph(graph: &Graph) -> Census {
        let n_types = graph.types().len();
        let mut counts = vec![0u64; n_types];
        let mut bytes = vec![0u64; n_types];
        for n in 0..graph.node_count() as u32 {
            if graph.flags(n).contains(NodeFlags::SYNTHETIC) {
                continue;
            }
            let TypeId(t) = graph.type_id(n);
            counts[t as usize] += 1;
            // Saturating: a snapshot file may hold sizes whose sum does not fit.
            bytes[t as usize] = bytes[t as usize].saturating_add(graph.size(n));
        }
        Census::from_counts(graph.types(), graph.strings(), &counts, &bytes, false)
    }

    /// Rows, largest count first.
    pub fn rows(&self) -> &[TypeStat] {
        &self.rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn total_count(&self) -> u64 {
        self.rows.iter().map(|r| r.count).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.bytes).sum()
    }

    /// The row for `name`: a display name (`myapp.Order`), an objgraph long name
    /// (`builtins.dict`) or a short name (`Order`, the first match when several types share it).
    pub fn get(&self, name: &str) -> Option<&TypeStat> {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .or_else(|| self.rows.iter().find(|r| r.long_name == name))
            .or_else(|| self.rows.iter().find(|r| r.short_name == name))
    }

    /// The count for `name` summed over every row it names (all types called `Order` for a short
    /// name; one type for a qualified name), 0 if none.
    pub fn count(&self, name: &str) -> u64 {
        if name.contains('.') {
            return self.get(name).map_or(0, |r| r.count);
        }
        let exact: u64 = self
            .rows
            .iter()
            .filter(|r| r.short_name == name)
            .map(|r| r.count)
            .sum();
        if exact > 0 {
            exact
        } else {
            self.get(name).map_or(0, |r| r.count)
        }
    }

    /// The `limit` rows with the most bytes.
    pub fn top_by_bytes(&self, limit: usize) -> Vec<&TypeStat> {
        let mut v: Vec<&TypeStat> = self.rows.iter().collect();
        v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        v.truncate(limit);
        v
    }

    /// What changed since `before`: every type whose count or bytes moved, largest count growth
    /// first (types that vanished have negative deltas).
    pub fn diff(&self, before: &Census) -> Vec<TypeDelta> {
        let old: HashMap<&str, &TypeStat> =
            before.rows.iter().map(|r| (r.name.as_str(), r)).collect();
        let mut out: Vec<TypeDelta> = Vec::new();
        for r in &self.rows {
            let (oc, ob) = old
                .get(r.name.as_str())
                .map_or((0, 0), |o| (o.count, o.bytes));
            if r.count != oc || r.bytes != ob {
                out.push(TypeDelta {
                    name: r.name.clone(),
                    count: r.count,
                    count_delta: r.count as i64 - oc as i64,
                    bytes: r.bytes,
                    bytes_delta: r.bytes as i64 - ob as i64,
                });
            }
        }
        let now: HashMap<&str, ()> = self.rows.iter().map(|r| (r.name.as_str(), ())).collect();
        for o in &before.rows {
            if !now.contains_key(o.name.as_str()) {
                out.push(TypeDelta {
                    name: o.name.clone(),
                    count: 0,
                    count_delta: -(o.count as i64),
                    bytes: 0,
                    bytes_delta: -(o.bytes as i64),
                });
            }
        }
        out.sort_by(|a, b| {
            b.count_delta
                .cmp(&a.count_delta)
                .then(b.bytes_delta.cmp(&a.bytes_delta))
                .then(a.name.cmp(&b.name))
        });
        out
    }

    /// A text table of the `limit` largest rows by count, with totals.
    pub fn render(&self, limit: usize) -> String {
        let shown: Vec<&TypeStat> = self.rows.iter().take(limit).collect();
        let width = shown.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        let mut out = format!("{:<width$} {:>12} {:>14}\n", "type", "count", "bytes");
        for r in &shown {
            let approx = if r.approximate_size { "~" } else { "" };
            out.push_str(&format!(
                "{:<width$} {:>12} {:>14}\n",
                r.name,
                r.count,
                format!("{approx}{}", r.bytes)
            ));
        }
        out.push_str(&format!(
            "{:<width$} {:>12} {:>14}\n",
            format!("({} types)", self.rows.len()),
            self.total_count(),
            self.total_bytes()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::sample;

    #[test]
    fn a_graph_census_counts_every_real_object_once() {
        let g = sample();
        let c = Census::from_graph(&g);
        assert_eq!(c.total_count(), 7);
        assert_eq!(c.count("list"), 3);
        assert_eq!(c.count("Order"), 2);
        assert_eq!(c.count("app.Order"), 2);
        assert_eq!(c.get("app.Order").unwrap().bytes, 112);
        assert_eq!(c.get("builtins.list").unwrap().count, 3);
        assert_eq!(c.count("nothing"), 0);
        assert_eq!(c.rows()[0].name, "list", "largest count first");
    }

    #[test]
    fn sizes_too_big_to_add_saturate_in_the_census_and_the_dominator_tree() {
        // Found by the dashboard_router fuzz target on the golden file: sizes read from a file
        // may sum past u64::MAX.
        use crate::graph::{GraphBuilder, NodeFlags};
        use crate::label::Label;
        let mut b = GraphBuilder::new();
        let t = b.intern_type("app", "Huge", "Huge");
        let parent = b.add_node(0x10);
        let child = b.add_node(0x20);
        b.set_node(
            parent,
            t,
            u64::MAX,
            NodeFlags::GC_TRACKED | NodeFlags::MODULE,
        );
        b.push_edge(child, Label::index(0));
        b.end_node();
        b.set_node(child, t, u64::MAX, NodeFlags::GC_TRACKED);
        b.end_node();
        b.add_root_node();
        let name = b.strings_mut().intern("sys.modules['huge']");
        b.push_edge(parent, Label::root(name));
        b.end_node();
        let g = b.finish().unwrap();
        assert_eq!(
            Census::from_graph(&g).get("app.Huge").unwrap().bytes,
            u64::MAX
        );
        crate::analysis::Analysed::new(g).compute_all();
    }

    #[test]
    fn a_diff_lists_growth_first_and_vanished_types_last() {
        let strings_and_types = |orders: u64, sets: u64| {
            let mut s = StringTable::new();
            let mut t = TypeTable::new();
            for (m, n) in [("app", "Order"), ("builtins", "set")] {
                t.push(crate::types::TypeInfo {
                    module: s.intern(m),
                    name: s.intern(n),
                    qualname: s.intern(n),
                    flags: TypeFlags::default(),
                })
                .unwrap();
            }
            Census::from_counts(&t, &s, &[orders, sets], &[orders * 56, sets * 216], true)
        };
        let before = strings_and_types(10, 3);
        let after = strings_and_types(110, 0);
        let d = after.diff(&before);
        assert_eq!(d[0].name, "app.Order");
        assert_eq!(d[0].count_delta, 100);
        assert_eq!(d[0].bytes_delta, 5600);
        assert_eq!(d[1].name, "set");
        assert_eq!(d[1].count_delta, -3);
        assert!(after.gc_only);
    }

    #[test]
    fn the_table_shows_totals_and_marks_approximate_sizes() {
        let mut s = StringTable::new();
        let mut t = TypeTable::new();
        t.push(crate::types::TypeInfo {
            module: s.intern("_io"),
            name: s.intern("BytesIO"),
            qualname: s.intern("BytesIO"),
            flags: TypeFlags::APPROXIMATE_SIZE,
        })
        .unwrap();
        let c = Census::from_counts(&t, &s, &[2], &[200], false);
        let text = c.render(10);
        assert!(text.contains("_io.BytesIO"), "{text}");
        assert!(text.contains("~200"), "{text}");
        assert!(text.contains("(1 types)"), "{text}");
    }
}
