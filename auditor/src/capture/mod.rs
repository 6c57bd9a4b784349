//! Capture: the kernel probes (load, attach, detach), their records, and the stream that
//! turns ring-buffer records into flow records.

pub mod btf;
pub mod mounts;
pub mod probes;
pub mod record;
pub mod stream;

pub use probes::{ProbeError, ProbeOptions, Probes};
pub use record::{Direction, FlowRecord, Transport};
pub use stream::Summary;
