//! The integration tests: one binary, one module per area. Every test runs
//! the real `spawn-elite` in a `support::Sandbox`; servers listen on
//! 127.0.0.1 only and are started and stopped by the test that uses them.

mod support;

mod callback;
mod callback_tls;
mod doctor;
mod httpsig_rfc;
mod install_sh;
mod interactive;
mod ledger;
mod load_callback;
mod messages;
mod proof;
mod provenance;
mod readme;
mod receipt;
mod receiver_hostile;
mod registry;
mod reliability_callback;
mod reliability_spawn;
mod reliability_store;
mod snapshots;
mod spawn;
mod templates_sets;
mod timestamp;
mod timestamp_ledger;
mod timestamp_outbox;
mod update;
mod update_safety;
