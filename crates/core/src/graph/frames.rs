//! The frame nodes of a snapshot's thread stacks, by the code they run: frames are named
//! `qualname (file:line)`, and a picture leaves out the frames of heaplens' own code.

use super::{Graph, NodeFlags, NodeId};

/// The file of a frame named `qualname (file:line)`.
pub fn frame_file(name: &str) -> Option<&str> {
    let (_, place) = name.split_once(" (")?;
    Some(
        place
            .strip_suffix(')')
            .and_then(|p| p.rsplit_once(':'))
            .map_or(place, |(f, _)| f),
    )
}

/// Whether a frame named `qualname (file:line)` runs code from one of `files`.
pub fn runs_code_from(name: Option<&str>, files: &[String]) -> bool {
    name.and_then(frame_file)
        .is_some_and(|file| files.iter().any(|f| f == file))
}

impl Graph {
    /// The frames, on any thread's stack, that run code from `files`.
    pub fn frames_running(&self, files: &[String]) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (thread, _) in self.edges(self.root()) {
            if !self.flags(thread).contains(NodeFlags::THREAD) {
                continue;
            }
            for (frame, _) in self.edges(thread) {
                if self.flags(frame).contains(NodeFlags::FRAME)
                    && runs_code_from(self.name(frame), files)
                {
                    out.push(frame);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_matched_by_the_file_they_run() {
        let files = vec!["/srv/heaplens/_pictures.py".to_string()];
        assert!(runs_code_from(
            Some("_show (/srv/heaplens/_pictures.py:120)"),
            &files
        ));
        assert!(!runs_code_from(Some("run (/srv/app.py:12)"), &files));
        assert!(!runs_code_from(Some("<frame>"), &files));
        assert!(!runs_code_from(None, &files));
        // A file name with parentheses and colons of its own.
        let odd = vec!["/tmp/a (1):b.py".to_string()];
        assert!(runs_code_from(Some("f (/tmp/a (1):b.py:3)"), &odd));
    }
}
