//! The `.hlsnap` snapshot file format (being written).
