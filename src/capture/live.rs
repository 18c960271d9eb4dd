//! The packet source interface the pipeline reads from: capture files, AF_PACKET rings (one
//! per worker) or libpcap handles. Live sources are opened here, before anything else runs,
//! so that an interface that cannot be opened is the first and only thing reported, and so
//! that privileges can be dropped once they are open.

use super::pcap_live::{PcapLive, PcapOpts};
use std::path::PathBuf;

/// Which live back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Linux AF_PACKET TPACKET_V3 rings with hash fanout (the default on Linux).
    AfPacket,
    /// libpcap.
    Pcap,
}

impl Backend {
    pub fn parse(s: &str) -> Result<Backend, String> {
        match s {
            "afpacket" | "af-packet" => Ok(Backend::AfPacket),
            "pcap" | "libpcap" => Ok(Backend::Pcap),
            _ => Err(format!("--capture {s:?}: expected afpacket or pcap")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "afpacket",
            Backend::Pcap => "pcap",
        }
    }
}

impl Default for Backend {
    fn default() -> Self {
        if cfg!(target_os = "linux") {
            Backend::AfPacket
        } else {
            Backend::Pcap
        }
    }
}

/// Default snap length: whole packets up to 64 KiB (GRO/LRO should be off on a tap port,
/// see the README, so nothing larger arrives).
pub const DEFAULT_SNAPLEN: u32 = 65535;
/// Default ring (AF_PACKET, per worker and interface) or kernel buffer (libpcap, per
/// interface), MiB.
pub const DEFAULT_BUFFER_MB: usize = 64;

/// A live capture's settings.
#[derive(Debug, Clone)]
pub struct LiveCfg {
    pub interfaces: Vec<String>,
    pub bpf: Option<String>,
    pub snaplen: u32,
    pub promisc: bool,
    pub buffer_mb: usize,
    pub backend: Backend,
}

/// What a run reads.
pub enum Input {
    /// Capture files, read in order by the reader thread.
    Files(Vec<PathBuf>),
    /// libpcap handles, read by the reader thread.
    Pcap(PcapLive),
    /// AF_PACKET rings: for each worker thread, one ring per interface.
    #[cfg(target_os = "linux")]
    Rings(Vec<Vec<super::afpacket::Ring>>),
}

impl Input {
    pub fn is_live(&self) -> bool {
        !matches!(self, Input::Files(_))
    }
}

/// Compiles a filter with libpcap for an interface's link type (the same compiler libpcap
/// uses for its own handles), as a program for SO_ATTACH_FILTER.
#[cfg(target_os = "linux")]
pub fn compile_filter(linktype: u16, expr: &str) -> Result<Vec<libc::sock_filter>, String> {
    let dead = pcap::Capture::dead(pcap::Linktype(i32::from(linktype)))
        .map_err(|e| format!("libpcap: {e}"))?;
    let prog = dead.compile(expr, true).map_err(|e| e.to_string())?;
    let ins = prog.get_instructions();
    // SAFETY: `pcap::BpfInstruction` is `#[repr(transparent)]` over libpcap's `bpf_insn`
    // {u16 code, u8 jt, u8 jf, u32 k}, which has the layout of the kernel's `sock_filter`.
    let raw: &[libc::sock_filter] =
        unsafe { std::slice::from_raw_parts(ins.as_ptr().cast(), ins.len()) };
    Ok(raw.to_vec())
}

/// Opens the live capture: for AF_PACKET, `threads` sockets per interface in one fanout
/// group per interface; for libpcap, one handle per interface. Errors name the interface.
pub fn open(cfg: &LiveCfg, threads: usize) -> Result<Input, String> {
    if cfg.interfaces.is_empty() {
        return Err("no interface given".into());
    }
    match cfg.backend {
        Backend::Pcap => PcapLive::open(
            &cfg.interfaces,
            &PcapOpts {
                snaplen: cfg.snaplen,
                promisc: cfg.promisc,
                buffer_bytes: cfg.buffer_mb << 20,
                filter: cfg.bpf.clone(),
            },
        )
        .map(Input::Pcap),
        #[cfg(target_os = "linux")]
        Backend::AfPacket => {
            use super::afpacket::{interface_linktype, Ring, RingOpts};
            let mut per_worker: Vec<Vec<Ring>> = (0..threads.max(1)).map(|_| Vec::new()).collect();
            for (n, name) in cfg.interfaces.iter().enumerate() {
                let lt = interface_linktype(name)
                    .map_err(|e| format!("cannot capture on {name}: {e}"))?;
                let filter = match &cfg.bpf {
                    Some(f) => Some(
                        compile_filter(lt, f).map_err(|e| format!("--bpf {f:?} on {name}: {e}"))?,
                    ),
                    None => None,
                };
                // One fanout group per interface, unique to this process.
                let group = ((std::process::id() as u16) ^ 0x5a00).wrapping_add(n as u16);
                let opts = RingOpts {
                    ring_bytes: cfg.buffer_mb << 20,
                    snaplen: cfg.snaplen,
                    promisc: cfg.promisc,
                    filter,
                    group,
                };
                for w in per_worker.iter_mut() {
                    w.push(
                        Ring::open(name, &opts)
                            .map_err(|e| format!("cannot capture on {name} (AF_PACKET): {e}"))?,
                    );
                }
            }
            Ok(Input::Rings(per_worker))
        }
        #[cfg(not(target_os = "linux"))]
        Backend::AfPacket => Err("--capture afpacket needs Linux; use --capture pcap".into()),
    }
}
