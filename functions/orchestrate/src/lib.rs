//! orchestrate as a library: the pieces its run engine is built from.

pub mod mcp;
