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

    /// Capture live from an interface (repeat for several).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Vec<String>,

    /// Capture filter (libpcap syntax), compiled by libpcap for either back end.
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,

    /// Bytes kept of each live packet [default: 65535].
    #[arg(long, value_name = "N")]
    pub snaplen: Option<u32>,

    /// Put the interfaces in promiscuous mode (the default).
    #[arg(long, overrides_with = "no_promisc")]
    pub promisc: bool,

    /// Leave the interfaces' promiscuous mode alone.
    #[arg(long, overrides_with = "promisc")]
    pub no_promisc: bool,

    /// Capture buffer in MiB: the ring of each AF_PACKET worker per interface, or libpcap's
    /// kernel buffer per interface [default: 64].
    #[arg(long, value_name = "MB")]
    pub buffer_size: Option<usize>,

    /// Live capture back end: afpacket (Linux AF_PACKET ring with fanout, the default) or
    /// pcap (libpcap).
    #[arg(long, value_name = "BACKEND")]
    pub capture: Option<String>,

    /// After opening the capture, run as this user (and its groups), with no capability.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Seconds allowed, after SIGTERM/SIGINT, to drain queues and write every pending event
    /// before the process exits anyway (status 1) [default: 10].
    #[arg(long, value_name = "SECS")]
    pub shutdown_timeout: Option<f64>,

    /// Configuration file (TOML): every option below has a key of the same name (dashes as
    /// underscores), plus the detection stage's policy, hours, thresholds and windows; the
    /// command line wins.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory of signature packs (default: the packs bundled in the binary).
    #[arg(long, value_name = "DIR")]
    pub signatures: Option<PathBuf>,

    /// Where to write EVE JSON lines; `-` is standard output.
    #[arg(long, value_name = "PATH")]
    pub eve: Option<String>,

    /// Send events to a sink (repeat for several): file:PATH, -, unix+dgram:PATH,
    /// unix+stream:PATH, syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT,
    /// syslog+tls://HOST:PORT, redis://HOST:PORT/KEY, kafka://HOST:PORT[,HOST:PORT...]/TOPIC,
    /// each with ?format=eve|ecs&types=...&when_full=... and its own options (docs/sinks.md).
    #[arg(long = "output", value_name = "URL")]
    pub output: Vec<String>,

    /// Spool folder: a sink that is down or too slow spools its events here (one subfolder
    /// per sink) and replays them in order when it is back, this run or the next.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Size limit of each sink's spool: bytes, or with K, M, G (powers of 1024)
    /// [default: 1G].
    #[arg(long, value_name = "BYTES")]
    pub spool_max: Option<String>,

    /// What a sink does when its spool (or, without --spool, its queue) is full: block,
    /// drop_oldest or drop_newest [default: block reading files, drop_oldest live].
    #[arg(long, value_name = "POLICY")]
    pub when_full: Option<String>,

    /// Seconds the sinks get at exit to deliver what they hold; the rest stays in the spool
    /// [default: 10].
    #[arg(long, value_name = "SECS")]
    pub flush_timeout: Option<f64>,

    /// Reload signatures when a file in --signatures DIR changes (SIGHUP always reloads).
    #[arg(long)]
    pub watch: bool,

    /// EVE event types to write: any of alert,dns,tls,http,quic,flow,stats (comma separated)
    /// [default: alert].
    #[arg(long, value_name = "LIST")]
    pub types: Option<String>,

    /// Seconds between EVE `stats` records (with `--types ...,stats`; one more at the end)
    /// [default: 8].
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<f64>,

    /// Cap on flows tracked per worker (oldest evicted first, counted) [default: 262144].
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,

    /// Cap on bytes held for TCP reassembly by all flows of one worker together
    /// [default: 134217728].
    #[arg(long, value_name = "BYTES")]
    pub reassembly_memcap: Option<usize>,

    /// Cap on IP datagrams being reassembled from fragments, per worker [default: 4096].
    #[arg(long, value_name = "N")]
    pub max_fragment_datagrams: Option<usize>,

    /// Cap on fragment bytes held, per worker [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    pub fragment_memcap: Option<usize>,

    /// Directory of the baseline of normal use (which web services the organisation and each
    /// host use, and when), kept across runs; first-use detection is off without it.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// Learning period of a new --state, in packet time: first uses are recorded, not
    /// alerted [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub learning: Option<String>,

    /// `entity`: the playbook's detections, one alert per (host, detection, service) per
    /// window; `flow`: every alert-tier list hit once per flow [default: entity].
    #[arg(long, value_name = "MODE")]
    pub alert_mode: Option<String>,

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
    /// Review or seed the baseline kept in --state DIR, as JSON.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Write the baseline as JSON to standard output.
    Export {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
    },
    /// Merge a JSON baseline (as written by export) into DIR.
    Import {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// JSON file; `-` is standard input.
        file: PathBuf,
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
