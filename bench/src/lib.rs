//! Weir's criterion micro-benchmarks live in `benches/`; see `docs/benchmarks.md`.
