//! objgraph's `get_new_ids`: which objects of each type are new since the previous look.
//!
//! A [`NewIds`] keeps the addresses of the objects it saw last time, per type name, and each
//! [`NewIds::update`] reports per name the old and current counts and the addresses that were not
//! there before. Addresses are kept as sorted vectors (8 bytes an object, no per-object
//! allocation) and compared by merging; objgraph keeps a set of Python ints per type and compares
//! sets, which costs far more per object. State lives in the value, never in a mutable default
//! argument.
//!
//! ```
//! use heaplens_core::new_ids::NewIds;
//! let mut ids = NewIds::new();
//! ids.update([("list".to_string(), vec![0x10, 0x20])]);
//! let rows = ids.update([("list".to_string(), vec![0x10, 0x20, 0x30])]);
//! assert_eq!((rows[0].old, rows[0].current, rows[0].new.clone()), (2, 3, vec![0x30]));
//! ```

use hashbrown::HashMap;

/// One type name in an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIdsRow {
    pub name: String,
    /// Objects of the name at the previous update.
    pub old: u64,
    /// Objects of the name now.
    pub current: u64,
    /// Addresses of the objects now that were not there at the previous update, ascending.
    pub new: Vec<u64>,
}

/// The addresses seen at the last update, per type name.
#[derive(Clone, Debug, Default)]
pub struct NewIds {
    current: HashMap<String, Vec<u64>>,
}

impl NewIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the objects alive now, as `(type name, addresses)` groups (a name may come in
    /// several groups: two types can share a name), and returns a row for every name alive now
    /// or at the previous update, in no particular order. The first update reports every object
    /// as new.
    pub fn update(
        &mut self,
        groups: impl IntoIterator<Item = (String, Vec<u64>)>,
    ) -> Vec<NewIdsRow> {
        let mut now: HashMap<String, Vec<u64>> = HashMap::new();
        for (name, mut addrs) in groups {
            now.entry(name).or_default().append(&mut addrs);
        }
        for addrs in now.values_mut() {
            addrs.sort_unstable();
        }
        let old = std::mem::replace(&mut self.current, now);
        let mut rows: Vec<NewIdsRow> = self
            .current
            .iter()
            .map(|(name, addrs)| {
                let before = old.get(name).map_or(&[][..], Vec::as_slice);
                NewIdsRow {
                    name: name.clone(),
                    old: before.len() as u64,
                    current: addrs.len() as u64,
                    new: sorted_difference(addrs, before),
                }
            })
            .collect();
        rows.extend(
            old.into_iter()
                .filter(|(name, _)| !self.current.contains_key(name))
                .map(|(name, addrs)| NewIdsRow {
                    name,
                    old: addrs.len() as u64,
                    current: 0,
                    new: Vec::new(),
                }),
        );
        rows
    }
}

/// The values of ascending `a` that ascending `b` lacks.
fn sorted_difference(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j == b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(items: &[(&str, &[u64])]) -> Vec<(String, Vec<u64>)> {
        items
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_vec()))
            .collect()
    }

    fn by_name(mut rows: Vec<NewIdsRow>) -> Vec<(String, u64, u64, Vec<u64>)> {
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows.into_iter()
            .map(|r| (r.name, r.old, r.current, r.new))
            .collect()
    }

    #[test]
    fn the_first_update_reports_every_object_as_new() {
        let mut ids = NewIds::new();
        let rows = by_name(ids.update(groups(&[("dict", &[0x30, 0x10]), ("list", &[0x20])])));
        assert_eq!(
            rows,
            vec![
                ("dict".into(), 0, 2, vec![0x10, 0x30]),
                ("list".into(), 0, 1, vec![0x20]),
            ]
        );
    }

    #[test]
    fn later_updates_report_only_addresses_not_seen_last_time() {
        let mut ids = NewIds::new();
        ids.update(groups(&[("list", &[0x10, 0x20, 0x30])]));
        let rows = by_name(ids.update(groups(&[("list", &[0x40, 0x10, 0x30, 0x50])])));
        assert_eq!(rows, vec![("list".into(), 3, 4, vec![0x40, 0x50])]);
        let rows = by_name(ids.update(groups(&[("list", &[0x10])])));
        assert_eq!(rows, vec![("list".into(), 4, 1, vec![])]);
    }

    #[test]
    fn a_name_that_died_out_is_reported_once_with_no_current_objects() {
        let mut ids = NewIds::new();
        ids.update(groups(&[("Order", &[0x10, 0x20]), ("dict", &[0x30])]));
        let rows = by_name(ids.update(groups(&[("dict", &[0x30])])));
        assert_eq!(
            rows,
            vec![
                ("Order".into(), 2, 0, vec![]),
                ("dict".into(), 1, 1, vec![]),
            ]
        );
        let rows = by_name(ids.update(groups(&[("dict", &[0x30])])));
        assert_eq!(rows, vec![("dict".into(), 1, 1, vec![])]);
    }

    #[test]
    fn groups_of_one_name_are_merged() {
        let mut ids = NewIds::new();
        let rows = by_name(ids.update(groups(&[("Item", &[0x20]), ("Item", &[0x10])])));
        assert_eq!(rows, vec![("Item".into(), 0, 2, vec![0x10, 0x20])]);
    }
}
