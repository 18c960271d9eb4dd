//! Live capture through libpcap (the `pcap` crate): the portable back end, and the fallback
//! where AF_PACKET is unavailable. One reader thread reads every interface's handle
//! (non-blocking, waiting in poll(2) when all are empty) and hands packets on as it does
//! for files.

use super::PacketRef;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How the handles are opened.
#[derive(Debug, Clone)]
pub struct PcapOpts {
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel buffer per handle, bytes.
    pub buffer_bytes: usize,
    pub filter: Option<String>,
}

struct Handle {
    name: Arc<str>,
    cap: pcap::Capture<pcap::Active>,
    linktype: u16,
    /// pcap_stats counters are 32-bit and wrap: the last reading, to add the difference.
    last: (u32, u32, u32),
}

/// Totals over every handle.
#[derive(Debug, Default, Clone, Copy)]
pub struct PcapTotals {
    /// Packets the filter accepted (pcap_stats ps_recv).
    pub packets: u64,
    /// Dropped for want of buffer room (ps_drop).
    pub drops: u64,
    /// Dropped by the interface or its driver (ps_ifdrop).
    pub ifdrops: u64,
}

/// Open libpcap handles, one per interface.
pub struct PcapLive {
    handles: Vec<Handle>,
    totals: PcapTotals,
}

/// How long a stopping capture keeps reading what is already buffered.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Milliseconds without a packet after which the packets held for batching are handed on:
/// the latency a quiet moment adds to an alert.
const HAND_ON_AFTER_MS: i32 = 2;
/// A stopping capture ends when no packet came for this long.
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(100);

impl PcapLive {
    /// Opens every interface; the first that fails is the error (with its name).
    pub fn open(ifaces: &[String], o: &PcapOpts) -> Result<PcapLive, String> {
        let mut handles = Vec::new();
        for name in ifaces {
            let fail = |e: pcap::Error| format!("cannot capture on {name} (libpcap): {e}");
            let cap = pcap::Capture::from_device(name.as_str())
                .map_err(fail)?
                .promisc(o.promisc)
                .snaplen(o.snaplen.min(i32::MAX as u32) as i32)
                .buffer_size(o.buffer_bytes.min(i32::MAX as usize) as i32)
                .precision(pcap::Precision::Nano)
                .immediate_mode(true)
                .open()
                .map_err(fail)?;
            let mut cap = cap.setnonblock().map_err(fail)?;
            if let Some(f) = &o.filter {
                cap.filter(f, true)
                    .map_err(|e| format!("--bpf {f:?} on {name}: {e}"))?;
            }
            let linktype = cap.get_datalink().0 as u16;
            handles.push(Handle {
                name: Arc::from(name.as_str()),
                cap,
                linktype,
                last: (0, 0, 0),
            });
        }
        Ok(PcapLive {
            handles,
            totals: PcapTotals::default(),
        })
    }

    /// Reads the handles' counters into the totals and returns them.
    pub fn stats(&mut self) -> PcapTotals {
        for h in &mut self.handles {
            if let Ok(s) = h.cap.stats() {
                let (r, d, i) = h.last;
                self.totals.packets += u64::from(s.received.wrapping_sub(r));
                self.totals.drops += u64::from(s.dropped.wrapping_sub(d));
                self.totals.ifdrops += u64::from(s.if_dropped.wrapping_sub(i));
                h.last = (s.received, s.dropped, s.if_dropped);
            }
        }
        self.totals
    }

    /// Calls `f(Some(packet), interface)` for every packet, and `f(None, _)` whenever every
    /// handle is empty (before waiting up to `idle_ms`), until `stop` is set. Then reads the
    /// counters, and drains what the handles still hold (bounded in time), so every packet
    /// the counters include is handed on. Returns a libpcap error that ends the capture.
    pub fn for_each_or_wait(
        &mut self,
        stop: &AtomicBool,
        idle_ms: i32,
        mut f: impl FnMut(Option<&PacketRef<'_>>, &Arc<str>),
    ) -> Result<(), String> {
        let fds: Vec<libc::c_int> = self
            .handles
            .iter()
            .map(|h| std::os::fd::AsRawFd::as_raw_fd(&h.cap))
            .collect();
        let mut drain_until: Option<std::time::Instant> = None;
        let mut quiet_since = std::time::Instant::now();
        let mut waited = false;
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                self.stats();
                drain_until = Some(std::time::Instant::now() + DRAIN_LIMIT);
            }
            let mut got = 0u32;
            for h in &mut self.handles {
                // At most a few thousand packets from one handle before looking at the
                // others and at the stop flag.
                for _ in 0..4096 {
                    match h.cap.next_packet() {
                        Ok(p) => {
                            got += 1;
                            let ts = &p.header.ts;
                            let ts_ns = (ts.tv_sec.max(0) as u64) * 1_000_000_000
                                + ts.tv_usec.max(0) as u64;
                            let caplen = (p.header.caplen as usize).min(p.data.len());
                            f(
                                Some(&PacketRef {
                                    ts_ns,
                                    linktype: h.linktype,
                                    iface: 0,
                                    orig_len: p.header.len,
                                    data: &p.data[..caplen],
                                    chunk: None,
                                }),
                                &h.name,
                            );
                        }
                        Err(pcap::Error::TimeoutExpired) => break,
                        Err(e) => return Err(format!("{}: {e}", h.name)),
                    }
                }
            }
            let now = std::time::Instant::now();
            if got > 0 {
                quiet_since = now;
                waited = false;
                continue;
            }
            if let Some(t) = drain_until {
                // Stopping: what the counters read at the stop include may still sit in a
                // block libpcap has not been handed yet; nothing for a while (or the time
                // limit) ends it.
                if now.duration_since(quiet_since) >= DRAIN_QUIET || now >= t {
                    return Ok(());
                }
                super::wait_readable(&fds, 5);
                continue;
            }
            if !waited {
                // A burst may have a gap of a moment: wait that long before handing on what
                // is held, so that batches are not one packet each (every handover may wake
                // a worker; at one packet each, a burst overflows the queues).
                waited = true;
                super::wait_readable(&fds, HAND_ON_AFTER_MS);
                continue;
            }
            if let Some(h) = self.handles.first() {
                f(None, &h.name);
            }
            super::wait_readable(&fds, idle_ms);
        }
    }
}
