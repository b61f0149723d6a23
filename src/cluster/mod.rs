//! Several nodes, one truth: every node follows the change feed (the `changes`
//! table every committed change appends to), applies each change to its
//! admission snapshot one object at a time, and cuts the live tunnels the
//! change forbids. See `docs/cluster.md`.

mod apply;
mod compare;
mod cuts;
mod feed;

pub use apply::{Indexed, Reread};
pub use compare::{differences, Skip};
pub use cuts::{forbids, forbids_on};
pub use feed::{Feed, FeedSettings, OnStale, Stale};
