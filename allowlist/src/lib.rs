//! The documented connection allowlist: the policy model the auditor judges flows against.
