//! What the user declares not to be a leak: a cache they know to be bounded, a type they expect
//! to grow. heaplens cannot see every bound (a dict pruned by the code that fills it looks like
//! a leak while it fills), so the user can name it.
//!
//! A pattern names a type (`app.models.Order`) or a place (`app.cache.CACHE`, a module global;
//! `app.Registry.handlers`, a class attribute; `app.Service.cache`, an attribute of instances),
//! with `*` for any run of characters and `?` for one (`app.cache.*`). A suspect is ignored when
//! a pattern matches its entry type or a name on its holder's retaining path: the type of each
//! object on the path, the name of each module, class or function on it, and the place each
//! reference on it stands for. Whatever else a pattern matches is not touched: ignoring a cache
//! leaves every other suspect reported.

use super::paths::Path;
use crate::graph::Graph;
use crate::label::LabelKind;

/// The user's patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<String>,
}

impl Ignore {
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Ignore {
        Ignore {
            patterns: patterns
                .into_iter()
                .map(Into::into)
                .filter(|p: &String| !p.trim().is_empty())
                .map(|p| p.trim().to_string())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a pattern matches `name` whole.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| glob(p, name))
    }

    /// Whether a suspect of `entry_type` held at the end of `path` is ignored.
    pub fn matches_suspect(&self, graph: &Graph, entry_type: &str, path: Option<&Path>) -> bool {
        !self.is_empty()
            && (self.matches(entry_type)
                || path.is_some_and(|p| names_on_path(graph, p).iter().any(|n| self.matches(n))))
    }
}

/// The names a developer may call the objects and places on `path` by: each object's type, each
/// named object's name (`app`, `app.Registry`, `app.handle`), and for each reference the place
/// it stands for: `app.CACHE` for `module app -> .__dict__['CACHE']`, `app.Registry.handlers`
/// for a class's `__dict__` entry, `app.Service.cache` for an attribute of an instance.
pub fn names_on_path(graph: &Graph, path: &Path) -> Vec<String> {
    let nodes = path.nodes(graph);
    let owner = |v| {
        graph
            .name(v)
            .map_or_else(|| graph.type_name(v), str::to_string)
    };
    let mut names: Vec<String> = Vec::with_capacity(nodes.len() * 2);
    for &v in &nodes {
        names.push(graph.type_name(v));
        if let Some(name) = graph.name(v) {
            names.push(name.to_string());
        }
    }
    // `nodes[k + 1]` is reached from `nodes[k]` by `path.edges[k]`.
    debug_assert_eq!(nodes.len(), path.edges.len() + 1);
    let labels: Vec<_> = path.edges.iter().map(|&e| graph.edge(e).1).collect();
    for (k, label) in labels.iter().enumerate() {
        let (from, name) = (nodes[k], label.name().map(|s| graph.strings().get(s)));
        let Some(name) = name else { continue };
        match label.kind() {
            LabelKind::Attr => names.push(format!("{}.{name}", owner(from))),
            // An entry of a `__dict__`: the place is an attribute of the dict's owner.
            LabelKind::Key if k > 0 => {
                let into_from = labels[k - 1];
                let is_dict_of_owner = into_from.kind() == LabelKind::Field
                    && into_from
                        .name()
                        .is_some_and(|s| graph.strings().get(s) == "__dict__");
                if is_dict_of_owner {
                    names.push(format!("{}.{name}", owner(nodes[k - 1])));
                }
            }
            _ => {}
        }
    }
    names
}

/// Whether `pattern` matches all of `text`: `*` is any run of characters, `?` any one. Linear in
/// practice (one backtracking point: the last `*`), so a hostile pattern cannot stall a diff.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names_with_stars_and_question_marks() {
        assert!(glob("app.cache.CACHE", "app.cache.CACHE"));
        assert!(!glob("app.cache", "app.cache.CACHE"));
        assert!(glob("app.cache.*", "app.cache.CACHE"));
        assert!(glob("*.Order", "shop.models.Order"));
        assert!(!glob("*.Order", "shop.models.OrderLine"));
        assert!(glob("shop.*.Order?", "shop.models.Orders"));
        assert!(glob("*", ""));
        assert!(!glob("a*b*c", "abx"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn blank_patterns_are_dropped_and_others_trimmed() {
        let ignore = Ignore::new([" app.Cache ", "", "  "]);
        assert!(ignore.matches("app.Cache"));
        assert_eq!(ignore, Ignore::new(["app.Cache"]));
        assert!(Ignore::new([""; 0]).is_empty());
    }
}
