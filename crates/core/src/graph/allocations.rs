//! Where a snapshot's objects were allocated: the tracebacks `tracemalloc` recorded, kept with
//! the graph (and in its file) so that a report read anywhere, later, says where each suspect's
//! objects come from beside what keeps them.
//!
//! Tracebacks repeat (every object allocated on one line shares one), so they are stored once:
//! distinct frames (file, line, the line's source), distinct tracebacks as lists of frames, and
//! per object only the number of its traceback, in a sorted list of the objects that have one.
//! The capture fills it in ([`AllocationsBuilder`]); the source lines are added afterwards, by
//! whoever can read the files ([`Allocations::set_code`]).

use super::NodeId;
use crate::strings::{StringId, StringTable};
use hashbrown::HashMap;

/// One frame of a traceback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub file: StringId,
    pub line: u32,
    /// The line's source text, stripped (empty when unknown).
    pub code: StringId,
}

/// Allocation tracebacks of a snapshot's objects. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Allocations {
    pub(crate) strings: StringTable,
    pub(crate) frames: Vec<Frame>,
    /// Traceback `t` is `frame_ids[starts[t]..starts[t + 1]]`, the oldest call first.
    pub(crate) starts: Vec<u32>,
    pub(crate) frame_ids: Vec<u32>,
    /// (object, its traceback), by increasing object.
    pub(crate) by_node: Vec<(NodeId, u32)>,
}

impl Allocations {
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// Objects with a known traceback.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// How many distinct tracebacks.
    pub fn traceback_count(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub fn strings(&self) -> &StringTable {
        &self.strings
    }

    /// The distinct frames, by number.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Sets frame `frame`'s source line (read by a caller that can read the program's files).
    pub fn set_code(&mut self, frame: usize, code: &str) {
        if frame < self.frames.len() {
            self.frames[frame].code = self.strings.intern(code.trim());
        }
    }

    /// The frames of traceback `t`, oldest call first.
    pub fn traceback(&self, t: u32) -> impl Iterator<Item = &Frame> + '_ {
        let t = t as usize;
        let range = match (self.starts.get(t), self.starts.get(t + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        };
        self.frame_ids[range]
            .iter()
            .map(|&f| &self.frames[f as usize])
    }

    /// The traceback of object `n`, if it is known.
    pub fn traceback_of(&self, n: NodeId) -> Option<u32> {
        self.by_node
            .binary_search_by_key(&n, |&(node, _)| node)
            .ok()
            .map(|i| self.by_node[i].1)
    }

    /// Where object `n` was allocated, one line per frame (`file:line: source`), oldest call
    /// first; empty when unknown. Control characters are written as escapes, so a file name
    /// cannot move a terminal's cursor or hide what follows.
    pub fn render(&self, n: NodeId) -> Vec<String> {
        let Some(t) = self.traceback_of(n) else {
            return Vec::new();
        };
        self.traceback(t)
            .map(|f| {
                let file = self.strings.get(f.file);
                let code = self.strings.get(f.code);
                frame_text(&if code.is_empty() {
                    format!("{file}:{}", f.line)
                } else {
                    format!("{file}:{}: {code}", f.line)
                })
            })
            .collect()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.strings.heap_bytes()
            + self.frames.capacity() * std::mem::size_of::<Frame>()
            + (self.starts.capacity() + self.frame_ids.capacity()) * 4
            + self.by_node.capacity() * 8
    }

    /// Checks what a file may have got wrong; `node_count` is the graph's.
    pub(crate) fn check(&self, node_count: usize) -> Result<(), String> {
        let strings = &self.strings;
        if let Some(f) = self
            .frames
            .iter()
            .find(|f| !strings.contains(f.file) || !strings.contains(f.code))
        {
            return Err(format!("an allocation frame names string {:?}", f));
        }
        if self.starts.first().is_some_and(|&s| s != 0)
            || self.starts.windows(2).any(|w| w[0] > w[1])
            || self
                .starts
                .last()
                .is_some_and(|&s| s as usize != self.frame_ids.len())
            || (self.starts.is_empty() && !self.frame_ids.is_empty())
        {
            return Err("the allocation tracebacks' frame ranges are out of order".to_string());
        }
        if self
            .frame_ids
            .iter()
            .any(|&f| f as usize >= self.frames.len())
        {
            return Err("an allocation traceback names a frame that does not exist".to_string());
        }
        let tracebacks = self.traceback_count() as u32;
        if self.by_node.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("the objects with allocation tracebacks are out of order".to_string());
        }
        if let Some(&(n, t)) = self
            .by_node
            .iter()
            .find(|&&(n, t)| n as usize >= node_count || t >= tracebacks)
        {
            return Err(format!(
                "node {n} has allocation traceback {t}, of {tracebacks} for {node_count} nodes"
            ));
        }
        Ok(())
    }
}

/// A traceback line (`file:line: source`) with its control characters written as escapes, so a
/// file name or a line of source cannot move a terminal's cursor or hide what follows.
pub fn frame_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Builds [`Allocations`]: frames and tracebacks are added once each (the caller recognises
/// repeats, by whatever identity is cheap for it), then objects in increasing order.
#[derive(Debug, Default)]
pub struct AllocationsBuilder {
    allocations: Allocations,
    frames: HashMap<(StringId, u32), u32>,
    tracebacks: HashMap<Vec<u32>, u32>,
}

impl AllocationsBuilder {
    pub fn new() -> Self {
        let mut b = AllocationsBuilder::default();
        b.allocations.starts.push(0);
        b
    }

    /// The number of the frame `file:line`.
    pub fn frame(&mut self, file: &str, line: u32) -> u32 {
        let a = &mut self.allocations;
        let file = a.strings.intern(file);
        *self.frames.entry((file, line)).or_insert_with(|| {
            a.frames.push(Frame {
                file,
                line,
                code: StringId::EMPTY,
            });
            a.frames.len() as u32 - 1
        })
    }

    /// The number of the traceback made of `frames` (numbers from [`Self::frame`]), oldest call
    /// first.
    pub fn traceback(&mut self, frames: &[u32]) -> u32 {
        if let Some(&t) = self.tracebacks.get(frames) {
            return t;
        }
        let a = &mut self.allocations;
        a.frame_ids.extend_from_slice(frames);
        a.starts.push(a.frame_ids.len() as u32);
        let t = a.starts.len() as u32 - 2;
        self.tracebacks.insert(frames.to_vec(), t);
        t
    }

    /// Object `n` was allocated at traceback `t`. Objects come in increasing order; one out of
    /// order is ignored.
    pub fn object(&mut self, n: NodeId, t: u32) {
        let by_node = &mut self.allocations.by_node;
        if by_node.last().is_none_or(|&(last, _)| last < n) {
            by_node.push((n, t));
        }
    }

    pub fn finish(mut self) -> Allocations {
        self.allocations.by_node.shrink_to_fit();
        self.allocations.frame_ids.shrink_to_fit();
        self.allocations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracebacks_are_stored_once_and_found_per_object() {
        let mut b = AllocationsBuilder::new();
        let main = b.frame("app.py", 3);
        let make = b.frame("app.py", 11);
        let t = b.traceback(&[main, make]);
        assert_eq!(b.traceback(&[main, make]), t);
        let other = b.traceback(&[main]);
        b.object(4, t);
        b.object(9, t);
        b.object(12, other);
        let mut a = b.finish();
        a.set_code(make as usize, "    DONE.append(Job(n))\n");
        assert_eq!(a.traceback_count(), 2);
        assert_eq!(
            a.render(9),
            vec!["app.py:3", "app.py:11: DONE.append(Job(n))"]
        );
        assert_eq!(a.render(12), vec!["app.py:3"]);
        assert!(a.render(5).is_empty());
        assert!(a.check(13).is_ok());
        assert!(a.check(12).is_err(), "node 12 of 12 nodes");
    }

    #[test]
    fn a_file_name_cannot_move_the_cursor() {
        let mut b = AllocationsBuilder::new();
        let f = b.frame("evil\x1b[2J.py", 1);
        let t = b.traceback(&[f]);
        b.object(0, t);
        assert_eq!(b.finish().render(0), vec!["evil\\u{1b}[2J.py:1"]);
    }
}
