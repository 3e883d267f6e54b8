//! Operations below the engines: what a spawn and an update both do, so
//! that neither reaches into the other. [`git`] runs git for both;
//! [`record`] is the step after a tree is written (ledger, callback, and
//! later signing).

pub mod git;
pub mod record;
