//! cloudtap: a network sensor for MITRE ATT&CK T1583.006 (Acquire Infrastructure: Web Services).
//!
//! Data flows one way, one module per stage:
//! `capture` -> `decode` -> `flow` (with TCP reassembly) -> `extract` -> `detect` -> `output`,
//! with `stats` beside. `pipeline` wires the stages to threads.

pub mod baseline;
pub mod capture;
pub mod cli;
pub mod config;
pub mod correlate;
pub mod decode;
pub mod detect;
pub mod extract;
pub mod flow;
pub mod output;
pub mod pipeline;
pub mod privs;
pub mod signals;
pub mod stats;
pub mod timefmt;
pub mod wire;
