//! `heaplens grafana-dashboard`: the fleet's Grafana dashboard, as JSON
//! ([`heaplens_dashboard::grafana`]).

use anyhow::Result;
use std::io::Write;

/// Print a Grafana dashboard (JSON) of heaplens' metrics: the fleet's memory (RSS and Python
/// object bytes per process), the growing types by instance and process, firing heaplens alerts
/// and the sampler's cost, each series linking to its instance's heaplens page.
///
/// Import it in Grafana (Dashboards > New > Import) and pick the Prometheus data source that
/// scrapes heaplens' /metrics.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Prints the dashboard.
pub fn run(_args: &Args, out: &mut impl Write) -> Result<i32> {
    out.write_all(heaplens_dashboard::grafana::dashboard_json().as_bytes())?;
    Ok(crate::OK)
}
