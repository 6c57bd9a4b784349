//! Alerts: violations aggregated per edge, told once when first seen (JSON event, and
//! Alertmanager), then aggregated; re-notified at most once per interval while they go
//! on; resolved in Alertmanager when an edge has not been seen for a while.

pub mod alertmanager;
pub mod edges;
