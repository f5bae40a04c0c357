//! Growth charts of a history (SVG and PNG). Drawn by `heaplens history -o`.
