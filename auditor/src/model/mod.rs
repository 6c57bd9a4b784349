//! The bottom of the vocabulary every output shares: the verdict, time, and the view of a
//! flow the judge reads. It imports nothing above `capture`, so every layer above can
//! name these without pulling in the layers that produce them.

pub mod flow;
pub mod time;
pub mod verdict;
pub mod vocabulary;

pub use flow::{FlowView, Resolution};
pub use time::Millis;
pub use verdict::Verdict;
