//! Where a set of objects accumulates: the leak suspects of a diff, or the holders of the
//! instances of given types.
//!
//! Every object of the set is attributed to the nearest object outside the set (or thread
//! frame) on its shortest retaining path; the objects attributed to one outside object form a
//! group. A group's *accumulation point* is the container that holds the most of its objects
//! directly: the outside object itself (the dict that is the cache, the list of handlers, the
//! set of tasks), or a container of the set under it (a new list of orders stored in an old
//! dict). A group's *entry type* is the type of the objects the accumulation point holds
//! directly (the leaked objects, not their payload of str, dict and bytes), so the leaking type
//! comes first even when its payload grows just as fast; dict keys count as payload, and when
//! what is held directly is plain data (str, int, bytes, tuple...) while the group holds as many
//! objects of some other type (an `lru_cache` keeping instances in its keys), that type is the
//! entry type. Objects of the set no root reaches (cyclic garbage) form one group of their own.

use super::churn;
use super::ignore::Ignore;
use super::paths::{Path, RetainingPaths};
use super::ranking;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::LabelKind;
use crate::own;
use crate::reach::NodeSet;
use hashbrown::HashMap;

const NONE: u32 = u32::MAX;

/// How many of a group's types a suspect lists.
pub const MAX_TYPES: usize = 32;

/// Thresholds for what counts as a suspect, and what the user declared not to be a leak.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// A group with at least this many new objects is a suspect...
    pub min_objects: u64,
    /// ...and so is a group whose new objects take at least this many bytes.
    pub min_bytes: u64,
    /// At most this many suspects are reported (largest first).
    pub max_suspects: usize,
    /// Suspects the user declared not to be leaks ([`Ignore`]).
    pub ignore: Ignore,
    /// Keep groups whose container is within a bound ([`churn::within_known_bound`]), marked
    /// [`Suspect::bounded`], instead of leaving them out: to say where a growing type is held,
    /// bounded or not.
    pub keep_bounded: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            min_objects: 10,
            min_bytes: 1 << 20,
            max_suspects: 10,
            ignore: Ignore::default(),
            keep_bounded: false,
        }
    }
}

/// Where a group of new objects hangs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// An old object (or a thread frame) of `after`.
    Node(NodeId),
    /// The new objects are roots themselves (new modules, objects held from outside the heap).
    Roots,
    /// The new objects are cyclic garbage no root reaches.
    Garbage,
}

/// One accumulation point and the growth it holds.
#[derive(Clone, Debug)]
pub struct Suspect {
    pub holder: Holder,
    /// The shortest retaining path to the holder (for [`Holder::Node`]).
    pub holder_path: Option<Path>,
    /// The type of the new objects held directly: the leaking type.
    pub entry_type: String,
    /// New objects held directly by the holder.
    pub entries: u64,
    /// All new objects attributed to the holder (entries and what they hold).
    pub objects: u64,
    /// Their shallow bytes.
    pub bytes: u64,
    /// The largest types among them (at most [`MAX_TYPES`]; reports show the first five):
    /// (name, count, bytes), by count.
    pub types: Vec<(String, u64, u64)>,
    /// One of the entries, and the label of the reference to it (`['k42']`, `[17]`, `.cache`).
    pub sample: NodeId,
    pub sample_label: String,
    /// The container is within a bound it declares or the standard library keeps (only with
    /// [`DiffOptions::keep_bounded`]; such groups are no suspects otherwise).
    pub bounded: bool,
    /// Where the sample was allocated, oldest call first (`shop/models.py:12: self.lines = []`),
    /// when the process traced allocations (`tracemalloc`): filled in by whoever can still ask
    /// the live process; empty otherwise.
    pub allocated_at: Vec<String>,
    /// The groups folded into this one, as they read: the weak references registries keep to
    /// its objects (`300 weakref.ReferenceType held by module logging -> ... -> list`).
    pub also: Vec<String>,
    /// The group's key in [`groups_of_types`]' answer: the objects of the group are those whose
    /// key it is (for a type's instances, to list the ones this holder keeps).
    pub group: u32,
}

/// How a suspect's group is the bookkeeping of another one's.
#[derive(Clone, Copy)]
enum Bookkeeping {
    /// Weak references to the other group's objects (the `logging` module's list of every
    /// handler, a `WeakSet` of tasks).
    Weak,
    /// Entries keyed by the `id()` of the other group's objects (blinker's `_by_receiver`, a
    /// registry's reverse index `{id(obj): ...}`).
    ById,
}

/// The object whose `id()` keys the entry of `holder` at `entry`, when its key is an integer
/// that is the address of an object of the snapshot.
fn keyed_by_id(after: &Graph, holder: NodeId, entry: NodeId) -> Option<NodeId> {
    let (_, label) = after.edges(holder).find(|&(t, _)| t == entry)?;
    if !matches!(label.kind(), LabelKind::Key | LabelKind::KeyRepr) {
        return None;
    }
    let key: u64 = after.strings().get(label.name()?).parse().ok()?;
    after.node_by_addr(key)
}

/// Folds groups that are another group's bookkeeping into that group ([`Bookkeeping`]): they
/// die with its objects and grow with them, so they are that leak, not one of their own.
/// `found` pairs each suspect with its group key in `group_of` (the group of each node).
fn fold_bookkeeping(after: &Graph, group_of: &[u32], found: Vec<(u32, Suspect)>) -> Vec<Suspect> {
    let index_of: HashMap<u32, usize> = found
        .iter()
        .enumerate()
        .map(|(i, (h, _))| (*h, i))
        .collect();
    let group_index = |v: NodeId| {
        group_of
            .get(v as usize)
            .and_then(|g| index_of.get(g))
            .copied()
    };
    let is_weak = |s: &Suspect| ranking::WEAK_BOOKKEEPING.contains(&s.entry_type.as_str());
    let mut into: Vec<Option<(usize, Bookkeeping)>> = vec![None; found.len()];
    for (i, (_, s)) in found.iter().enumerate() {
        let target = if is_weak(s) {
            after
                .edges(s.sample)
                .find(|(_, l)| l.is_weak())
                .and_then(|(t, _)| group_index(t))
                .map(|j| (j, Bookkeeping::Weak))
        } else if let Holder::Node(h) = s.holder {
            keyed_by_id(after, h, s.sample)
                .and_then(group_index)
                .map(|j| (j, Bookkeeping::ById))
        } else {
            None
        };
        // Folded into a group that is no bookkeeping itself, so no chain nor cycle forms.
        into[i] = target.filter(|&(j, _)| j != i && !is_weak(&found[j].1));
    }
    for i in 0..found.len() {
        if into[i].is_some_and(|(j, _)| into[j].is_some()) {
            into[i] = None;
        }
    }
    let mut also: Vec<Vec<String>> = vec![Vec::new(); found.len()];
    for (i, (_, s)) in found.iter().enumerate() {
        if let Some((j, how)) = into[i] {
            let held_by = match &s.holder_path {
                Some(p) => p.render(after),
                None => "references from outside the Python heap".into(),
            };
            let why = match how {
                Bookkeeping::Weak => "weak references to them",
                Bookkeeping::ById => "kept by their id()",
            };
            also[j].push(format!(
                "{} {} held by {held_by} ({why})",
                super::report::count(s.entries),
                s.entry_type
            ));
        }
    }
    found
        .into_iter()
        .zip(also)
        .enumerate()
        .filter(|(i, _)| into[*i].is_none())
        .map(|(_, ((_, mut s), also))| {
            s.also = also;
            s
        })
        .collect()
}

/// Per-group running totals.
#[derive(Default)]
struct Group {
    /// Entries per type, with the first one met (the sample).
    entries_by_type: HashMap<u32, (u64, NodeId)>,
    /// Objects per type: count, bytes, and the first one met.
    types: HashMap<u32, (u64, u64, NodeId)>,
    objects: u64,
    bytes: u64,
}

impl Group {
    /// Keeps `part` of every count, out of `whole` (the share of a group that is growth).
    fn scale(&mut self, part: u64, whole: u64) {
        let of = |n: u64| (n as u128 * part as u128 / whole.max(1) as u128) as u64;
        self.objects = of(self.objects);
        self.bytes = of(self.bytes);
        for (c, b, _) in self.types.values_mut() {
            (*c, *b) = (of(*c), of(*b));
        }
        self.types.retain(|_, (c, _, _)| *c > 0);
        for (c, _) in self.entries_by_type.values_mut() {
            *c = of(*c);
        }
    }
}

/// What [`suspects`] found.
pub struct Accumulation {
    /// The groups worth reporting, largest first.
    pub suspects: Vec<Suspect>,
    /// New objects and their bytes in all, heaplens' own left out.
    pub new_objects: u64,
    pub new_bytes: u64,
    /// The new objects kept alive by heaplens' own code, per type name index: (count, bytes).
    /// A comparison takes them out of its per-type changes.
    pub own: HashMap<u32, (u64, u64)>,
    /// Suspects left out because the user declared them no leak ([`DiffOptions::ignore`]).
    pub ignored: usize,
}

/// The group key of a node no group has.
pub const NO_GROUP: u32 = NONE;
/// The group of the objects of the set that are roots themselves.
const ROOTS: u32 = NONE - 1;
/// The group of the objects of the set no root reaches.
const GARBAGE: u32 = NONE - 2;

/// The group of each object of `new`: the nearest node above it on its shortest retaining path
/// that is not in the set (past up to four steps of plain data), [`ROOTS`] or [`GARBAGE`];
/// [`NO_GROUP`] for the objects outside the set. Parents come first in the search order, so one
/// pass suffices.
fn group_keys(
    after: &Graph,
    paths: &RetainingPaths,
    new: &NodeSet,
    is_plain_data: &dyn Fn(NodeId) -> bool,
) -> Vec<u32> {
    let above_plain_data = |mut p: NodeId| {
        for _ in 0..4 {
            match paths.parent(after, p) {
                Some(q) if is_plain_data(p) => p = q,
                _ => break,
            }
        }
        p
    };
    let mut holder = vec![NONE; after.node_count()];
    for &v in paths.order() {
        if !new.contains(v) {
            continue;
        }
        holder[v as usize] = match paths.parent(after, v) {
            Some(p) if holder[p as usize] != NONE => holder[p as usize],
            Some(p) => above_plain_data(p),
            None if after.flags(v).contains(NodeFlags::UNREACHABLE) => GARBAGE,
            None => ROOTS,
        };
    }
    holder
}

/// The groups of `new` (a set of objects of `after`) worth reporting, largest first, with how many
/// objects and bytes the set holds in all. `name_of(v)` numbers each node's type name, and
/// `type_names` gives the names back. Groups kept alive by heaplens' own code are left out; with
/// `before` (the snapshot `new` is new against), so is churn, and a group counts only by how
/// much its container grew (see [`super::churn`]).
pub fn suspects(
    after: &Graph,
    before: Option<&Graph>,
    paths: &RetainingPaths,
    new: &NodeSet,
    name_of: impl Fn(NodeId) -> u32,
    type_names: &[String],
    options: DiffOptions,
) -> Accumulation {
    let after_name = name_of;
    // Attribute each new object to the nearest old node above it on its shortest path (its
    // group), counting for every node how many new objects it holds directly. Parents come first
    // in the search order, so one pass suffices.
    let n = after.node_count();
    // An object of the set held inside plain data that is not (the instance in the key tuple of
    // a method's cache) belongs to the container of that data: the tuple holds one, the cache
    // all of them.
    let is_plain_data = |v: NodeId| {
        type_names
            .get(after_name(v) as usize)
            .is_some_and(|n| ranking::is_payload(n))
    };
    let holder = group_keys(after, paths, new, &is_plain_data);
    let mut groups: HashMap<u32, Group> = HashMap::new();
    // New objects each node holds directly (not as dict keys), per type.
    let mut direct_new: HashMap<(NodeId, u32), u64> = HashMap::new();
    let mut new_in_order: Vec<(NodeId, Option<NodeId>, bool)> = Vec::new();
    let (mut new_objects, mut new_bytes) = (0u64, 0u64);
    for &v in paths.order() {
        if !new.contains(v) {
            continue;
        }
        let parent = paths.parent(after, v);
        // A dict's keys are payload, not entries: the values are what the container collects.
        let via_key = paths.via(v).is_some_and(|e| {
            matches!(
                after.edge(e).1.kind(),
                LabelKind::DictKey | LabelKind::DictKeyStr
            )
        });
        let h = holder[v as usize];
        match (parent, via_key) {
            (Some(p), false) => *direct_new.entry((p, after_name(v))).or_default() += 1,
            // The entries of the garbage and root groups hang from the group itself.
            (None, _) => *direct_new.entry((h, after_name(v))).or_default() += 1,
            (Some(_), true) => {}
        }
        new_in_order.push((v, parent, via_key));
        let size = after.size(v);
        new_objects += 1;
        new_bytes += size;
        let g = groups.entry(h).or_default();
        let slot = g.types.entry(after_name(v)).or_insert((0, 0, v));
        slot.0 += 1;
        slot.1 += size;
        g.objects += 1;
        g.bytes += size;
    }
    // The accumulation point of a group is the node that collects the most new objects of one
    // type directly: its old holder, or a new container under it (a new list of new orders hung
    // on an old dict). Of one type, because a container collects its entries, while a new
    // object holds its own few parts (a new handler its lock, its filters and its dict): three
    // handlers added to an old list are the list's growth, not one handler's.
    let mut collects: HashMap<NodeId, u64> = HashMap::new();
    for (&(v, _), &n) in &direct_new {
        let most = collects.entry(v).or_default();
        *most = (*most).max(n);
    }
    let mut accumulator: HashMap<u32, (NodeId, u64)> = groups
        .keys()
        .map(|&h| (h, (h, collects.get(&h).copied().unwrap_or(0))))
        .collect();
    for &(v, _, _) in &new_in_order {
        let fanout = collects.get(&v).copied().unwrap_or(0);
        let best = accumulator
            .get_mut(&holder[v as usize])
            .expect("every group has an entry");
        if fanout > best.1 {
            *best = (v, fanout);
        }
    }
    for &(v, parent, via_key) in &new_in_order {
        let h = holder[v as usize];
        let point = accumulator[&h].0;
        let direct = match parent {
            Some(p) => p == point,
            None => point == h,
        };
        if direct && !via_key {
            let g = groups.get_mut(&h).expect("grouped above");
            g.entries_by_type.entry(after_name(v)).or_insert((0, v)).0 += 1;
        }
    }

    // Only the largest groups become suspects: a set of a million objects can fall into a
    // million groups of one (the list inside each of a million dicts), and a suspect's path and
    // tables are not free. The holder id breaks ties, so the choice does not depend on the
    // hash map's order.
    let passes = |g: &Group| g.objects >= options.min_objects || g.bytes >= options.min_bytes;
    // What is held from outside the heap is mostly an extension module's state and the
    // arguments of calls in progress, a few objects of many types: it counts by the most
    // objects of one type, as a leak through C code keeps what it keeps (six default contexts
    // and their dicts, made by a module just imported, are no leak).
    let roots_pass = |g: &Group| {
        let most = g
            .entries_by_type
            .values()
            .map(|(c, _)| *c)
            .max()
            .unwrap_or(0);
        most >= options.min_objects || g.bytes >= options.min_bytes
    };
    let mut kept: Vec<(u32, Group)> = groups
        .into_iter()
        .filter(|(h, g)| {
            if *h == ROOTS {
                roots_pass(g)
            } else {
                passes(g)
            }
        })
        .collect();
    let is_node = |h: u32| (h as usize) < n;
    let mut own: HashMap<u32, (u64, u64)> = HashMap::new();
    kept.retain(|(h, g)| {
        let mine = is_node(*h)
            && (own::is_own_code_frame(after, *h)
                || own::is_held_by_attach_script(after, paths, *h));
        if mine {
            for (t, (c, b, _)) in &g.types {
                let slot = own.entry(*t).or_default();
                (slot.0, slot.1) = (slot.0 + c, slot.1 + b);
            }
            new_objects -= g.objects;
            new_bytes -= g.bytes;
        }
        // Growth within a bound the standard library keeps is not growth without bound.
        let bounded = is_node(*h) && churn::within_known_bound(after, paths, accumulator[h].0);
        !mine && (!bounded || options.keep_bounded)
    });
    if let Some(before) = before {
        // The new objects each kept holder holds directly, for the entry-by-entry comparison.
        let holders: hashbrown::HashSet<u32> = kept.iter().map(|(h, _)| *h).collect();
        let mut children: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for &(v, parent, via_key) in &new_in_order {
            if let Some(p) = parent.filter(|p| !via_key && holders.contains(p)) {
                children.entry(p).or_default().push(v);
            }
        }
        for (h, g) in kept.iter_mut().filter(|(h, _)| is_node(*h)) {
            let entries: u64 = g.entries_by_type.values().map(|(c, _)| c).sum();
            let growth = churn::net_entries(
                before,
                after,
                paths,
                *h,
                accumulator[h].0,
                entries,
                children.get(h).map_or(&[], |c| c.as_slice()),
            );
            if growth < entries {
                g.scale(growth, entries);
            }
        }
        kept.retain(|(_, g)| g.objects > 0 && passes(g));
    }
    let by_size = |a: &(u32, Group), b: &(u32, Group)| {
        b.1.objects
            .cmp(&a.1.objects)
            .then(b.1.bytes.cmp(&a.1.bytes))
            .then(a.0.cmp(&b.0))
    };
    // With patterns to ignore, more groups are judged than are kept, so that ignored ones
    // leave room for others.
    let judged = if options.ignore.is_empty() {
        options.max_suspects
    } else {
        options.max_suspects.saturating_mul(20).max(1000)
    };
    if kept.len() > judged {
        kept.select_nth_unstable_by(judged, by_size);
        kept.truncate(judged);
    }
    let found: Vec<(u32, Suspect)> = kept
        .into_iter()
        .map(|(h, g)| {
            let holder = match accumulator[&h].0 {
                ROOTS => Holder::Roots,
                GARBAGE => Holder::Garbage,
                node => Holder::Node(node),
            };
            let (mut entry, entries, mut sample) = g
                .entries_by_type
                .iter()
                .max_by_key(|(t, (c, _))| (*c, std::cmp::Reverse(**t)))
                .map(|(t, (c, s))| (*t, *c, *s))
                .unwrap_or((NONE, 0, 0));
            let name = |t: u32| type_names.get(t as usize).map_or("", String::as_str);
            // The type a developer would name: entries of a builtin type (payload, or the
            // dicts, lists, closures and cells that carry objects) that come with at least as
            // many objects of a class are that class (a cache of (key, result) tuples holding
            // the instances, closures each keeping a checkout); entries of plain data are the
            // most numerous other type the group holds as many of.
            // "As many": one per entry, give or take the few a comparison takes for old (new
            // objects at the addresses of freed ones of their type).
            let as_many = entries.saturating_sub(entries / 20 + 1).max(1);
            let carried = |keep: &dyn Fn(u32) -> bool| {
                g.types
                    .iter()
                    .filter(|(t, (c, _, _))| keep(**t) && *c >= as_many)
                    .max_by_key(|(t, (c, _, _))| (*c, std::cmp::Reverse(**t)))
                    .map(|(t, (_, _, s))| (*t, *s))
            };
            let substitute = if !ranking::is_generic(name(entry)) {
                None
            } else if let Some(class) = carried(&|t| !ranking::is_generic(name(t))) {
                Some(class)
            } else if ranking::is_payload(name(entry)) {
                carried(&|t| !ranking::is_payload(name(t)))
            } else {
                None
            };
            let mut entries = entries;
            if let Some((t, s)) = substitute {
                (entry, sample) = (t, s);
                // Held through plain data only, none of them directly: count them all.
                if entries == 0 {
                    entries = g.types.get(&t).map_or(0, |(c, _, _)| *c);
                }
            }
            let mut types: Vec<(String, u64, u64)> = g
                .types
                .iter()
                .map(|(t, (c, b, _))| (type_names[*t as usize].clone(), *c, *b))
                .collect();
            // The classes first, as in every table of types ([`ranking`]), then by count.
            types.sort_by(|a, b| {
                ranking::is_generic(&a.0)
                    .cmp(&ranking::is_generic(&b.0))
                    .then(b.1.cmp(&a.1))
                    .then(b.2.cmp(&a.2))
                    .then(a.0.cmp(&b.0))
            });
            types.truncate(MAX_TYPES);
            // How the holder holds the sample: one reference (`['k42']`), or the hops down to
            // it when it is carried by an entry (`[12] -> function app.f.<locals>.done.__closure__
            // [0] -> cell.cell_contents -> app.Checkout`).
            let sample_label = match holder {
                Holder::Node(h) => match after
                    .edge_range(h)
                    .map(|e| after.edge(e))
                    .find(|(t, l)| *t == sample && !l.is_weak())
                {
                    Some((_, l)) => after.describe_label(l),
                    None => paths
                        .edges_below(after, h, sample, 8)
                        .map(|edges| super::paths::render_tail(after, &edges))
                        .unwrap_or_default(),
                },
                _ => String::new(),
            };
            let suspect = Suspect {
                holder_path: match holder {
                    Holder::Node(h) => paths.path(after, h),
                    _ => None,
                },
                holder,
                entry_type: type_names.get(entry as usize).cloned().unwrap_or_default(),
                entries,
                objects: g.objects,
                bytes: g.bytes,
                types,
                sample,
                sample_label,
                bounded: match holder {
                    Holder::Node(point) => churn::within_known_bound(after, paths, point),
                    _ => false,
                },
                allocated_at: Vec::new(),
                also: Vec::new(),
                group: h,
            };
            (h, suspect)
        })
        .collect();
    let mut suspects = fold_bookkeeping(after, &holder, found);
    let found = suspects.len();
    suspects.retain(|s| {
        !options
            .ignore
            .matches_suspect(after, &s.entry_type, s.holder_path.as_ref())
    });
    let ignored = found - suspects.len();
    suspects.sort_by(|a, b| {
        b.objects
            .cmp(&a.objects)
            .then(b.bytes.cmp(&a.bytes))
            .then(a.entry_type.cmp(&b.entry_type))
    });
    suspects.truncate(options.max_suspects);
    Accumulation {
        suspects,
        new_objects,
        new_bytes,
        own,
        ignored,
    }
}

/// Where the objects of the types named `names` accumulate ([`crate::types::TypeTable::display_name`]
/// names: `dict`, `myapp.Order`): the containers holding most of them, with their retaining
/// paths. For a type known to grow (from a history of censuses), this says what keeps it.
pub fn holders_of_types(
    graph: &Graph,
    paths: &RetainingPaths,
    names: &[String],
    options: DiffOptions,
) -> Vec<Suspect> {
    let (set, type_names) = instances_of(graph, names);
    let name_of = |v: NodeId| graph.type_id(v).0;
    suspects(graph, None, paths, &set, name_of, &type_names, options).suspects
}

/// The group of each instance of the types named `names`, as [`holders_of_types`] groups them
/// ([`Suspect::group`]); [`NO_GROUP`] for every other node. To list the instances one holder
/// keeps.
pub fn groups_of_types(graph: &Graph, paths: &RetainingPaths, names: &[String]) -> Vec<u32> {
    let (set, type_names) = instances_of(graph, names);
    let is_plain_data = |v: NodeId| {
        type_names
            .get(graph.type_id(v).0 as usize)
            .is_some_and(|n| ranking::is_payload(n))
    };
    group_keys(graph, paths, &set, &is_plain_data)
}

/// The instances of the types named `names`, and every type's display name by type id.
fn instances_of(graph: &Graph, names: &[String]) -> (NodeSet, Vec<String>) {
    let type_names: Vec<String> = graph
        .types()
        .iter()
        .map(|(id, _)| graph.types().display_name(id, graph.strings()))
        .collect();
    let wanted: Vec<bool> = type_names.iter().map(|n| names.contains(n)).collect();
    let mut set = NodeSet::new(graph.node_count());
    for v in graph.objects() {
        if wanted[graph.type_id(v).0 as usize] {
            set.insert(v);
        }
    }
    (set, type_names)
}
