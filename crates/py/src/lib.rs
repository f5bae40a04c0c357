//! heaplens-py: the extension module `heaplens._native`.
//!
//! It holds thin `#[pyclass]` wrappers over heaplens-capture (the only crate that reads CPython
//! memory) and heaplens-core's results, and the services built on them (the sampler, the live
//! dashboard's data source, per-request tracing). The Python package `heaplens` adds
//! argument handling and objgraph-compatible names on top; everything that walks or analyses a
//! heap happens here or in the core.
//!
//! Not here: analyses and renderers (heaplens-core), anything that needs the interpreter to run
//! Python code during a walk (nothing may).

mod allocated;
mod errors;
mod logging_bridge;
mod py_analysis;
mod py_census;
mod py_dashboard;
mod py_growth;
mod py_memory;
mod py_objgraph;
mod py_pictures;
mod py_sampler;
mod py_snapshot;
mod request_tracing;
mod take;

use heaplens_capture as capture;
use pyo3::prelude::*;

/// Large arrays in mappings of their own, given back whatever thread frees them
/// ([`heaplens_core::mapped_alloc`]).
#[global_allocator]
static ALLOCATOR: heaplens_core::mapped_alloc::MappedLarge =
    heaplens_core::mapped_alloc::MappedLarge;

/// The one export list of the extension.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    logging_bridge::install();
    capture::init(py);
    m.add("__version__", heaplens_core::VERSION)?;
    m.add("IMMORTAL_ROOT", capture::IMMORTAL_ROOT)?;
    m.add("HeapLensError", py.get_type::<errors::HeapLensError>())?;
    m.add("CaptureError", py.get_type::<errors::CaptureError>())?;
    m.add(
        "UnsupportedPythonError",
        py.get_type::<errors::UnsupportedPythonError>(),
    )?;
    m.add(
        "UnknownTypeError",
        py.get_type::<errors::UnknownTypeError>(),
    )?;
    m.add(
        "SnapshotFormatError",
        py.get_type::<errors::SnapshotFormatError>(),
    )?;
    m.add("LeakError", py.get_type::<errors::LeakError>())?;
    m.add_class::<py_census::PyCensus>()?;
    m.add_class::<py_growth::PyPeakTracker>()?;
    m.add_class::<py_growth::PySteadyGrowth>()?;
    m.add_class::<py_census::PyTypeStat>()?;
    m.add_class::<py_snapshot::PySnapshot>()?;
    m.add_class::<py_snapshot::PySnapshotObject>()?;
    m.add_class::<py_analysis::PyRetainingPath>()?;
    m.add_class::<py_analysis::PySnapshotDiff>()?;
    m.add_class::<py_analysis::PySuspect>()?;
    m.add_class::<py_memory::PyMemoryInfo>()?;
    m.add_class::<py_sampler::PySampler>()?;
    m.add_class::<py_dashboard::PyDashboard>()?;
    m.add_function(wrap_pyfunction!(py_census::census, m)?)?;
    m.add_function(wrap_pyfunction!(py_census::objects_of_type, m)?)?;
    m.add_function(wrap_pyfunction!(py_census::all_objects, m)?)?;
    m.add_function(wrap_pyfunction!(py_census::census_of, m)?)?;
    m.add_function(wrap_pyfunction!(py_census::objects_at, m)?)?;
    m.add_function(wrap_pyfunction!(py_objgraph::ref_chain, m)?)?;
    m.add_function(wrap_pyfunction!(py_objgraph::backref_chain, m)?)?;
    m.add_function(wrap_pyfunction!(py_objgraph::leaking_objects, m)?)?;
    m.add_class::<py_objgraph::PyNewIds>()?;
    m.add_function(wrap_pyfunction!(py_census::type_names, m)?)?;
    m.add_function(wrap_pyfunction!(py_census::type_matches, m)?)?;
    m.add_function(wrap_pyfunction!(py_growth::format_growth, m)?)?;
    m.add_function(wrap_pyfunction!(py_snapshot::snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(py_memory::memory, m)?)?;
    m.add_function(wrap_pyfunction!(capture_support, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(py_snapshot::load, m)?)?;
    m.add_function(wrap_pyfunction!(py_snapshot::snapshot_around, m)?)?;
    m.add_function(wrap_pyfunction!(py_pictures::render_picture, m)?)?;
    m.add_function(wrap_pyfunction!(py_pictures::reference_counts, m)?)?;
    Ok(())
}

/// Runs the `heaplens` command line with `argv` (without the program name); returns the exit
/// status. The GIL is released: the commands are pure Rust. `python_path` is the directory that
/// holds this `heaplens` package (for `heaplens attach`, see `heaplens_cli::Caller`).
#[pyfunction]
#[pyo3(signature = (argv, python_path=None))]
fn cli_main(
    py: Python<'_>,
    argv: Vec<String>,
    python_path: Option<std::path::PathBuf>,
) -> PyResult<i32> {
    let version = py.version_info();
    let caller = heaplens_cli::Caller {
        python_path,
        interrupted: Some(interrupted),
        python_version: Some((version.major, version.minor)),
    };
    let outcome = py.detach(|| {
        heaplens_cli::dispatch_from(
            &caller,
            std::iter::once("heaplens".to_string()).chain(argv),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )
    });
    match outcome {
        heaplens_cli::Outcome::Exit(status) => Ok(status),
        // `heaplens run` runs the program in this interpreter: the Python package does that.
        heaplens_cli::Outcome::RunPython(args) => {
            let kwargs = pyo3::types::PyDict::new(py);
            // A period the user asked for is kept up to a tenth of the time; the default one
            // stays under 1%.
            kwargs.set_item("period", args.period.unwrap_or(1.0))?;
            kwargs.set_item(
                "max_overhead",
                if args.period.is_some() { 0.1 } else { 0.01 },
            )?;
            kwargs.set_item("history", args.history)?;
            kwargs.set_item("no_history", args.no_history)?;
            kwargs.set_item("snapshot_at_exit", args.snapshot_at_exit)?;
            kwargs.set_item("all_objects", args.all_objects)?;
            kwargs.set_item("trace_alloc", args.trace_alloc)?;
            kwargs.set_item("module", args.module)?;
            kwargs.set_item("argv", args.argv)?;
            kwargs.set_item("serve", args.serve)?;
            kwargs.set_item("token", args.token)?;
            kwargs.set_item("report_children", args.report_children)?;
            py.import("heaplens._run")?
                .call_method("run", (), Some(&kwargs))?
                .extract()
        }
    }
}

/// Whether Ctrl-C was pressed while the command line ran without the GIL: Python's handler only
/// sets a flag, so the command line asks. The KeyboardInterrupt is consumed: the command stops
/// and says so itself.
fn interrupted() -> bool {
    Python::attach(|py| py.check_signals().is_err())
}

/// Why heap capture does not work in this interpreter, or None when it does.
#[pyfunction]
fn capture_support() -> Option<String> {
    capture::unsupported_reason()
}
