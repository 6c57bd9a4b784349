//! Alerts: violations aggregated per edge (`edges`), told once when first seen (an event,
//! and Alertmanager), then aggregated; re-notified at most once per interval while they
//! go on; resolved in Alertmanager (`alertmanager`) when an edge has not been seen for a
//! while.

pub mod alertmanager;
pub mod edges;
