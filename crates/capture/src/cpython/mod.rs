//! The supported CPython ABIs, one module each, and the one dispatch from the running
//! interpreter's version to the code and layout that read it.
//!
//! Each `vX_Y` module holds that minor version's generated layouts (`layout_X_Y_Z.rs`, one per
//! set of headers probed, see [`crate::layout`]) and its [`Abi`] implementation: the code that
//! differs between versions in more than offsets (reference counts and immortality, int and
//! instance-attribute representations, frames and their stack references, static types).
//!
//! Dispatch is on the full `PY_VERSION_HEX`, not the minor version alone: layouts change in
//! patch releases (3.13's generation lists moved; 3.14.0 to 3.14.4 flag `_gc_next` with the
//! incremental collector's space bit, 3.14.5 went back to generations). The layout whose headers
//! are the newest not newer than the running release is tried first, then the others; the first
//! that passes [`crate::env`]'s checks against live objects is used.
//!
//! # Free-threaded builds (3.13t, 3.14t)
//!
//! They are refused (see [`crate::env`]), and the [`Abi`] leaves room for them: a walk there
//! would stop the world for its whole length (there is no GIL to hold), enumerate objects by
//! walking the mimalloc heaps as the collector does (there are no GC lists, and `PyGC_Head` is
//! absent), read split reference counts (`ob_ref_local` + `ob_ref_shared`, with the owning
//! thread in `ob_tid`, which a collection reuses for its own bookkeeping) instead of
//! `ob_refcnt`, and could not stash node ids in `_gc_prev`: it would need an address map for
//! every object. None of that can be built and tested without such an interpreter.

#[cfg(feature = "python")]
mod common;
#[cfg(feature = "python")]
pub(crate) use common::{set_walk_interpreter, walk_interpreter};
pub mod v3_11;
pub mod v3_12;
pub mod v3_13;
pub mod v3_14;
pub mod v3_15;

use crate::layout::Layout;

/// The CPython ABIs the capture reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiId {
    V3_11,
    V3_12,
    V3_13,
    V3_14,
    V3_15,
}

/// Every supported `(major, minor)`, oldest first.
pub const SUPPORTED: &[(u8, u8)] = &[(3, 11), (3, 12), (3, 13), (3, 14), (3, 15)];

/// The supported versions as a sentence fragment: `3.11, 3.12, 3.13, 3.14 and 3.15`.
pub fn supported_list() -> String {
    let names: Vec<String> = SUPPORTED.iter().map(|(a, b)| format!("{a}.{b}")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// Whether `(major, minor)` is a version the capture reads.
pub fn is_supported(major: u32, minor: u32) -> bool {
    SUPPORTED
        .iter()
        .any(|&(a, b)| a as u32 == major && b as u32 == minor)
}

/// The ABI of `(major, minor)`, and its layouts.
pub fn abi_of(major: u8, minor: u8) -> Option<(AbiId, &'static [&'static Layout])> {
    Some(match (major, minor) {
        (3, 11) => (AbiId::V3_11, v3_11::LAYOUTS),
        (3, 12) => (AbiId::V3_12, v3_12::LAYOUTS),
        (3, 13) => (AbiId::V3_13, v3_13::LAYOUTS),
        (3, 14) => (AbiId::V3_14, v3_14::LAYOUTS),
        (3, 15) => (AbiId::V3_15, v3_15::LAYOUTS),
        _ => return None,
    })
}

/// The layouts to try for the release `version_hex`, best first: the newest whose headers are
/// not newer than it, then older ones (newest first), then newer ones (oldest first).
pub fn layouts_to_try(version_hex: u32, layouts: &[&'static Layout]) -> Vec<&'static Layout> {
    let release = version_hex >> 8;
    let (mut older, mut newer): (Vec<_>, Vec<_>) = layouts
        .iter()
        .copied()
        .partition(|l| l.version_hex >> 8 <= release);
    older.sort_by_key(|l| std::cmp::Reverse(l.version_hex));
    newer.sort_by_key(|l| l.version_hex);
    older.extend(newer);
    older
}

/// Runs `$body` with `$A` naming the [`crate::abi::Abi`] implementation of `$abi`.
#[cfg(feature = "python")]
macro_rules! with_abi {
    ($abi:expr, $A:ident => $body:expr) => {
        match $abi {
            $crate::cpython::AbiId::V3_11 => {
                type $A = $crate::cpython::v3_11::V3_11;
                $body
            }
            $crate::cpython::AbiId::V3_12 => {
                type $A = $crate::cpython::v3_12::V3_12;
                $body
            }
            $crate::cpython::AbiId::V3_13 => {
                type $A = $crate::cpython::v3_13::V3_13;
                $body
            }
            $crate::cpython::AbiId::V3_14 => {
                type $A = $crate::cpython::v3_14::V3_14;
                $body
            }
            $crate::cpython::AbiId::V3_15 => {
                type $A = $crate::cpython::v3_15::V3_15;
                $body
            }
        }
    };
}
#[cfg(feature = "python")]
pub(crate) use with_abi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_has_a_layout_generated_from_its_headers() {
        for &(major, minor) in SUPPORTED {
            let (_, layouts) = abi_of(major, minor).expect("an ABI");
            assert!(!layouts.is_empty(), "{major}.{minor}");
            for l in layouts {
                assert_eq!((l.headers.0, l.headers.1), (major, minor));
                assert_eq!(l.gc_head_size, 16);
            }
        }
        assert!(abi_of(3, 10).is_none());
        assert!(abi_of(3, 16).is_none());
    }

    #[test]
    fn the_closest_older_layout_is_tried_first() {
        let hex = |micro: u32| 0x030d_0000 | (micro << 8) | 0xf0;
        let (_, layouts) = abi_of(3, 13).unwrap();
        let order = |micro| {
            layouts_to_try(hex(micro), layouts)
                .iter()
                .map(|l| l.headers.2)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(0), vec![0, 18]);
        assert_eq!(order(5), vec![0, 18]);
        assert_eq!(order(18), vec![18, 0]);
        assert_eq!(order(30), vec![18, 0]);
    }

    #[test]
    fn the_supported_versions_read_as_a_sentence() {
        assert_eq!(supported_list(), "3.11, 3.12, 3.13, 3.14 and 3.15");
        assert!(is_supported(3, 14) && !is_supported(3, 10) && !is_supported(2, 7));
    }
}
