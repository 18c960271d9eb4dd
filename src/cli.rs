//! Command line. Spellings follow tcpdump/Suricata habits and are a contract: `-r FILE...`,
//! `-i IFACE`, `--signatures DIR`, `--eve PATH`, `--types LIST`, `--threads N`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "cloudtap",
    version,
    about = "Network sensor for MITRE ATT&CK T1583.006: web-service endpoints and script agents in DNS, TLS SNI and HTTP, as Suricata EVE alerts",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read packets from capture files (pcap or pcapng), in order.
    #[arg(short = 'r', long = "read", value_name = "FILE", num_args = 1..)]
    pub read: Vec<PathBuf>,

    /// Capture live from an interface (reserved; not available yet).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Directory of signature packs (default: the packs bundled in the binary).
    #[arg(long, value_name = "DIR")]
    pub signatures: Option<PathBuf>,

    /// Where to write EVE JSON lines; `-` is standard output.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub eve: String,

    /// Reload signatures when a file in --signatures DIR changes (SIGHUP always reloads).
    #[arg(long)]
    pub watch: bool,

    /// EVE event types to write: any of alert,dns,tls,http,quic,stats (comma separated).
    #[arg(long, value_name = "LIST", default_value = "alert")]
    pub types: String,

    /// Seconds between EVE `stats` records (with `--types ...,stats`; one more at the end).
    #[arg(long, value_name = "SECS", default_value_t = 8.0)]
    pub stats_interval: f64,

    /// Cap on flows tracked per worker (oldest evicted first, counted).
    #[arg(long, value_name = "N", default_value_t = crate::flow::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,

    /// Cap on bytes held for TCP reassembly by all flows of one worker together.
    #[arg(long, value_name = "BYTES", default_value_t = crate::flow::DEFAULT_MAX_REASSEMBLY_BYTES)]
    pub reassembly_memcap: usize,

    /// Cap on IP datagrams being reassembled from fragments, per worker.
    #[arg(long, value_name = "N", default_value_t = crate::decode::defrag::DEFAULT_MAX_DATAGRAMS)]
    pub max_fragment_datagrams: usize,

    /// Cap on fragment bytes held, per worker.
    #[arg(long, value_name = "BYTES", default_value_t = crate::decode::defrag::DEFAULT_MAX_BYTES)]
    pub fragment_memcap: usize,

    /// Threads of packet work, the reading thread among them (default: number of cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// No summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect signature packs.
    Signatures {
        #[command(subcommand)]
        action: SigAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigAction {
    /// Validate packs and print every problem with file and line.
    Check {
        /// Directory to check (default: the bundled packs).
        dir: Option<PathBuf>,
    },
    /// List the loaded signatures.
    List {
        #[arg(long, value_name = "DIR")]
        signatures: Option<PathBuf>,
    },
    /// Print every signature matching a domain, an address or a user agent.
    Test {
        value: String,
        #[arg(long, value_name = "DIR")]
        signatures: Option<PathBuf>,
    },
}
