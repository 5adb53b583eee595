//! `hearsay sim`: hearsay's membership (and broadcast) machines for
//! thousands of members in virtual time, over a seeded network model with
//! latency, loss, duplication, reordering, partitions, crashes, restarts
//! with state loss, CPU pauses and zones. The same sans-IO machines the
//! agent runs; one seed replays a run exactly (the report's trace hash).
//!
//! ```
//! use hearsay_sim::{Scenario, run};
//! let sc = Scenario { members: 20, crash: 2, ..Scenario::default() };
//! let report = run(&sc, &mut |_| {}).unwrap();
//! assert_eq!(report.crashes.count, 2);
//! assert_eq!(report.crashes.undetected, 0);
//! ```

mod member;
mod observe;
pub mod report;
pub mod scenario;
mod sim;

use hearsay_core::cluster::ClusterConfig;
use hearsay_core::membership::SwimConfig;
pub use report::Report;
pub use scenario::{Dur, Partition, Pause, Scenario};

/// Runs a scenario to its end. `progress` is called with the share of
/// simulated time done (0 to 1), about a hundred times.
pub fn run(sc: &Scenario, progress: &mut dyn FnMut(f64)) -> Result<Report, String> {
    let wall = std::time::Instant::now();
    let mut swim = SwimConfig::preset(sc.preset);
    swim.lifeguard = sc.lifeguard;
    swim.detector = sc.detector;
    swim.probe_order = sc.probes;
    let cfg = ClusterConfig {
        swim,
        dissemination: ClusterConfig::dissemination(sc.strategy, sc.broadcast_preset),
    };
    cfg.validate().map_err(|e| e.to_string())?;
    let cfg = member::AgentCfg {
        cluster: cfg,
        kv: sc.kv_rate > 0.0,
        sign: sc.sign,
    };
    let mut sim = sim::Sim::<member::Agent>::new(sc, cfg)?;
    sim.run(progress)?;
    Ok(sim.report(wall.elapsed()))
}
