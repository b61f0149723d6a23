//! Attacks and faults a hostile tester tried (issue 8), each kept as a test that
//! fails if the defect comes back. One file per area.

mod audit;
mod certificates;
mod connections;
mod control;
mod faults;
mod input;
mod nodes;
mod outage;
mod proxy;
mod race;
pub(crate) mod support;
mod webhooks;
