//! Helpers for the real-kernel tests.
