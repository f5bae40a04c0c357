//! Where the objects of given types are held, from one snapshot: for the types a history of
//! censuses found growing (`heaplens run`'s report), the container that keeps them, with its
//! retaining path, and whether that container is bounded (a cache filling up to the bound it
//! declares is no leak, however steadily it grows).

use super::accumulation::{holders_of_types, DiffOptions, Holder, Suspect};
use super::paths::RetainingPaths;
use crate::graph::{Graph, NodeFlags};

/// Where the objects of a growing type are held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhereHeld {
    pub type_name: String,
    /// The rendered retaining path of the container (`module app -> .__dict__['CACHE'] -> dict`),
    /// or what holds them when it is not one container (`uncollected cyclic garbage`).
    pub holder: String,
    /// How many objects the container holds directly...
    pub entries: u64,
    /// ...and their type: the growing type itself, or the type of the objects it is part of
    /// (`app.Order` for the `list` of each order's lines).
    pub entry_type: String,
    /// How the container holds one of them (`['k42']`, `[17]`).
    pub sample_label: String,
    /// The container is within a bound it declares (`lru_cache(maxsize=N)`,
    /// `deque(maxlen=N)`) or the standard library keeps: it fills, and stops.
    pub bounded: bool,
    /// The address of one of the entries (of `entry_type`), to ask the live process where it
    /// was allocated...
    pub sample_address: u64,
    /// ...and the answer, oldest call first, when asked (`tracemalloc`); empty otherwise.
    pub allocated_at: Vec<String>,
    /// They are cyclic garbage and the collector is on: it will free them. A count sampled
    /// between collections rises and falls with such garbage (a sawtooth whose teeth climb while
    /// the older generations wait their turn): no leak.
    pub collectable: bool,
}

/// For each type named in `types` (display names: `dict`, `app.Order`) with how much it grew,
/// where its objects accumulate: the largest group that holds at least that many of them (one
/// container can explain the growth), else, when bounded containers together hold half as many
/// (the cursors each sqlite3 connection keeps, up to 200; the growth a history measures from
/// the program's start includes its imports), those, as bounded; else the largest group. Types
/// found nowhere are left out.
pub fn where_held(
    graph: &Graph,
    paths: &RetainingPaths,
    types: &[(String, u64)],
) -> Vec<WhereHeld> {
    let names: Vec<String> = types.iter().map(|(t, _)| t.clone()).collect();
    // All the growing types at once: objects that grow together (orders and the list of lines
    // inside each) are one group, held by the container of the outermost ones. Asked one type
    // at a time, each list would be "held" by its own order.
    let together = DiffOptions {
        min_objects: 1,
        min_bytes: u64::MAX,
        max_suspects: 64,
        keep_bounded: true,
        ..DiffOptions::default()
    };
    let collector_on = graph.meta().gc_enabled == Some(true);
    let garbage = |s: &Suspect| match s.holder {
        Holder::Garbage => true,
        Holder::Node(v) => graph.flags(v).contains(NodeFlags::UNREACHABLE),
        Holder::Roots => false,
    };
    let render = |s: &Suspect| match s.holder {
        Holder::Node(_) => s.holder_path.as_ref().map(|p| p.render(graph)),
        Holder::Garbage if collector_on => {
            Some("cyclic garbage the collector has not freed yet".into())
        }
        Holder::Garbage => {
            Some("uncollected cyclic garbage (the garbage collector is off?)".into())
        }
        Holder::Roots => Some("references from outside the Python heap".into()),
    };
    let groups = holders_of_types(graph, paths, &names, together.clone());
    types
        .iter()
        .filter_map(|(t, growth)| {
            // The groups holding this type's objects, else the groups of it alone.
            let holding = |groups: &[Suspect]| -> Vec<(u64, Suspect)> {
                groups
                    .iter()
                    .filter_map(|s| {
                        Some((s.types.iter().find(|(name, _, _)| name == t)?.1, s.clone()))
                    })
                    .collect()
            };
            let mut found = holding(&groups);
            if found.is_empty() {
                found = holding(&holders_of_types(
                    graph,
                    paths,
                    std::slice::from_ref(t),
                    together.clone(),
                ));
            }
            let largest = |enough: &dyn Fn(u64) -> bool| {
                found
                    .iter()
                    .filter(|(n, _)| enough(*n))
                    .max_by_key(|(n, _)| *n)
                    .map(|(_, s)| s.clone())
            };
            let in_bounds: u64 = found
                .iter()
                .filter(|(_, s)| s.bounded)
                .map(|(n, _)| n)
                .sum();
            let s = largest(&|n| n >= *growth)
                .or_else(|| {
                    (in_bounds.saturating_mul(2) >= *growth)
                        .then(|| {
                            found
                                .iter()
                                .find(|(_, s)| s.bounded)
                                .map(|(_, s)| s.clone())
                        })
                        .flatten()
                })
                .or_else(|| largest(&|_| true))?;
            Some(WhereHeld {
                type_name: t.clone(),
                holder: render(&s)?,
                entries: s.entries,
                entry_type: s.entry_type.clone(),
                sample_label: s.sample_label.clone(),
                bounded: s.bounded,
                sample_address: graph.addr(s.sample),
                allocated_at: graph.allocated_at(s.sample),
                collectable: collector_on && garbage(&s),
            })
        })
        .collect()
}
