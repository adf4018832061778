//! Health scores per service (and overall), from check results: the `penalty` model of the
//! inspection seed and the `weighted` model of the SSE seeds (DESIGN §3).

pub mod normalize;

pub use normalize::Normalizer;
