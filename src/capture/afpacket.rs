//! Linux AF_PACKET capture with a TPACKET_V3 ring (memory-mapped blocks of packets) and
//! PACKET_FANOUT in hash mode: one socket and ring per worker thread, the kernel spreading
//! flows over them by a symmetric hash, so both directions of a flow reach the same worker
//! and no thread copies packets to another.
//!
//! Written on libc rather than taken from a crate: the one maintained AF_PACKET crate that
//! does TPACKET_V3 and fanout is GPL-3, which cannot be linked into this Apache-2.0 project;
//! what is needed (one ring, one block walk) is about as long as its glue would be. The
//! kernel structures are declared here (`#[repr(C)]`, field for field from
//! `linux/if_packet.h`) so the layout is visible where it is read.
//!
//! Nothing the kernel writes into the ring is trusted further than the block it lies in:
//! every offset is checked against the block size before a byte is read.

use super::PacketRef;
use std::io;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_FANOUT: libc::c_int = 18;
const TPACKET_V3: libc::c_int = 2;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
/// Fanout by a symmetric flow hash (both directions to one socket).
const PACKET_FANOUT_HASH: u32 = 0;
/// Reassemble IP fragments before hashing, so every fragment of a datagram reaches the
/// worker that holds its flow.
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const ETH_P_ALL: u16 = 0x0003;
const ETH_P_8021Q: u16 = 0x8100;
const SO_ATTACH_FILTER: libc::c_int = 26;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 0xfffe;
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_IEEE80211_RADIOTAP: u16 = 803;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Default)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    kind: libc::c_ushort,
    alen: libc::c_ushort,
    address: [u8; 8],
}

/// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then `tpacket_hdr_v1`).
mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const FIRST: usize = 16;
}

/// Offsets in `struct tpacket3_hdr`.
mod pkt {
    pub const NEXT: usize = 0;
    pub const SEC: usize = 4;
    pub const NSEC: usize = 8;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    /// Size of the header, the smallest a packet entry can be.
    pub const HDR: usize = 48;
}

/// How a ring is set up.
#[derive(Debug, Clone)]
pub struct RingOpts {
    /// Bytes of ring per socket (rounded down to whole blocks, at least 4 blocks).
    pub ring_bytes: usize,
    pub snaplen: u32,
    pub promisc: bool,
    /// Classic BPF program (from libpcap's compiler), if a filter was given.
    pub filter: Option<Vec<libc::sock_filter>>,
    /// Fanout group id, shared by every socket of one interface in this process.
    pub group: u16,
}

/// Block size: 1 MiB holds hundreds of full-size packets and any single one up to 64 KiB.
const BLOCK_SIZE: usize = 1 << 20;
/// A block the kernel has started filling is handed over after this long even if not
/// full: the latency bound of a quiet link, and the drain time at shutdown.
pub const RETIRE_MS: u32 = 10;

/// Counters read from the kernel (PACKET_STATISTICS resets on every read; these are summed).
#[derive(Debug, Default, Clone, Copy)]
pub struct RingStats {
    /// Packets the socket's filter accepted (drops included, as the kernel counts them).
    pub packets: u64,
    /// Packets dropped because the ring was full.
    pub drops: u64,
    /// Times the ring froze (every block held by user space).
    pub freezes: u64,
}

/// One AF_PACKET socket with its mapped ring.
pub struct Ring {
    fd: libc::c_int,
    map: *mut u8,
    map_len: usize,
    blocks: usize,
    next: usize,
    pub name: Arc<str>,
    pub linktype: u16,
    stats: RingStats,
    /// Packet bytes with a VLAN tag put back (the kernel strips it into the header).
    scratch: Vec<u8>,
}

// SAFETY: the mapping is owned by this value alone and only touched through `&mut self`.
unsafe impl Send for Ring {}

fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn setsockopt<T>(fd: libc::c_int, level: libc::c_int, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live value of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Index and hardware type of an interface.
fn iface_info(name: &str) -> io::Result<(libc::c_int, u16)> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such interface"));
    }
    // SAFETY: a plain datagram socket for one ioctl, closed below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(os_err("socket"));
    }
    // SAFETY: ifreq is plain data; the name fits (checked above) and stays NUL-terminated.
    let hw = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, b) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = b as libc::c_char;
        }
        let r = libc::ioctl(s, libc::SIOCGIFHWADDR, &mut req);
        libc::close(s);
        if r != 0 {
            return Err(os_err("SIOCGIFHWADDR"));
        }
        req.ifr_ifru.ifru_hwaddr.sa_family
    };
    Ok((index as libc::c_int, hw))
}

/// LINKTYPE_* of what AF_PACKET (SOCK_RAW) delivers for a hardware type.
fn linktype_of(hw: u16) -> Option<u16> {
    match hw {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(1),
        ARPHRD_NONE | ARPHRD_RAWIP => Some(101),
        ARPHRD_IEEE80211_RADIOTAP => Some(127),
        _ => None,
    }
}

/// The LINKTYPE_* an interface's frames carry, for compiling its filter.
pub fn interface_linktype(name: &str) -> io::Result<u16> {
    supported(iface_info(name)?.1)
}

fn supported(hw: u16) -> io::Result<u16> {
    linktype_of(hw).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "hardware type {hw} is not supported by --capture afpacket; use --capture pcap"
            ),
        )
    })
}

/// Sets each accepting `ret #k` of a program to at most `snaplen` bytes (what libpcap does
/// for its own snap length), so the kernel copies no more than that into the ring.
pub fn cap_snaplen(prog: &mut [libc::sock_filter], snaplen: u32) {
    const BPF_RET_K: u16 = 0x06;
    for i in prog.iter_mut() {
        if i.code == BPF_RET_K && i.k != 0 {
            i.k = i.k.min(snaplen);
        }
    }
}

impl Ring {
    /// Opens a socket on `name`, maps its ring and joins the interface's fanout group.
    pub fn open(name: &str, o: &RingOpts) -> io::Result<Ring> {
        let (ifindex, hw) = iface_info(name)?;
        let linktype = supported(hw)?;
        // Protocol 0: nothing is received before the socket is bound to the interface
        // (ETH_P_ALL here would queue every interface's packets while the ring is set up).
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(os_err("socket(AF_PACKET)"));
        }
        let mut ring = Ring {
            fd,
            map: std::ptr::null_mut(),
            map_len: 0,
            blocks: 0,
            next: 0,
            name: Arc::from(name),
            linktype,
            stats: RingStats::default(),
            scratch: Vec::with_capacity(o.snaplen as usize + 4),
        };
        setsockopt(fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
            .map_err(|e| io::Error::new(e.kind(), format!("TPACKET_V3: {e}")))?;
        let mut prog = o.filter.clone().unwrap_or_else(|| {
            vec![libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: u32::MAX,
            }]
        });
        cap_snaplen(&mut prog, o.snaplen);
        ring.attach(&mut prog)?;
        let blocks = (o.ring_bytes / BLOCK_SIZE).max(4);
        let req = TpacketReq3 {
            block_size: BLOCK_SIZE as u32,
            block_nr: blocks as u32,
            frame_size: 2048,
            frame_nr: (blocks * (BLOCK_SIZE / 2048)) as u32,
            retire_blk_tov: RETIRE_MS,
            ..TpacketReq3::default()
        };
        setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req)
            .map_err(|e| io::Error::new(e.kind(), format!("PACKET_RX_RING ({blocks} MiB): {e}")))?;
        let len = blocks * BLOCK_SIZE;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(os_err("mmap of the ring"));
        }
        ring.map = map.cast();
        ring.map_len = len;
        ring.blocks = blocks;
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: a valid sockaddr_ll of the size given.
        let r = unsafe {
            libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os_err("bind"));
        }
        if o.promisc {
            let m = PacketMreq {
                ifindex,
                kind: PACKET_MR_PROMISC,
                alen: 0,
                address: [0; 8],
            };
            setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &m)
                .map_err(|e| io::Error::new(e.kind(), format!("promiscuous mode: {e}")))?;
        }
        let fanout: u32 =
            u32::from(o.group) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
        setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &fanout)
            .map_err(|e| io::Error::new(e.kind(), format!("PACKET_FANOUT: {e}")))?;
        Ok(ring)
    }

    fn attach(&self, prog: &mut [libc::sock_filter]) -> io::Result<()> {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        setsockopt(self.fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog)
            .map_err(|e| io::Error::new(e.kind(), format!("attaching the filter: {e}")))
    }

    /// Stops the socket taking packets (a filter that accepts none), so that what the ring
    /// holds can be drained and the kernel's count no longer moves.
    pub fn stop_receiving(&mut self) -> io::Result<()> {
        let mut none = [libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        self.attach(&mut none)
    }

    pub fn fd(&self) -> libc::c_int {
        self.fd
    }

    /// Reads the kernel's counters (which it then resets) into the running totals.
    pub fn stats(&mut self) -> RingStats {
        let mut s = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `s` is a live tpacket_stats_v3 of the length given.
        let r = unsafe {
            libc::getsockopt(
                self.fd,
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut s as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.stats.packets += u64::from(s.packets);
            self.stats.drops += u64::from(s.drops);
            self.stats.freezes += u64::from(s.freeze_q_cnt);
        }
        self.stats
    }

    fn block(&self, i: usize) -> &[u8] {
        // SAFETY: block `i` < `blocks` lies inside the mapping, which lives as long as self.
        unsafe { std::slice::from_raw_parts(self.map.add(i * BLOCK_SIZE), BLOCK_SIZE) }
    }

    fn status_ptr(&self, i: usize) -> *mut u32 {
        // SAFETY: inside block `i` of the mapping; the field is 4-byte aligned.
        unsafe { self.map.add(i * BLOCK_SIZE + block::STATUS).cast::<u32>() }
    }

    /// Hands every packet of the blocks the kernel has filled to `f`, giving each block back
    /// after it; returns the number of packets. Bounded: at most one pass over the ring.
    pub fn for_each_ready(&mut self, f: &mut impl FnMut(&PacketRef<'_>)) -> u64 {
        let mut n = 0;
        for _ in 0..self.blocks {
            let i = self.next;
            // SAFETY: a 4-byte field the kernel writes; read volatile, then order the reads
            // of the block's contents after it.
            let status = unsafe { std::ptr::read_volatile(self.status_ptr(i)) };
            if status & TP_STATUS_USER == 0 {
                break;
            }
            fence(Ordering::Acquire);
            n += self.walk_block(i, f);
            fence(Ordering::Release);
            // SAFETY: as above; the kernel may refill the block from here on.
            unsafe { std::ptr::write_volatile(self.status_ptr(i), TP_STATUS_KERNEL) };
            self.next = (i + 1) % self.blocks;
        }
        n
    }

    fn walk_block(&mut self, i: usize, f: &mut impl FnMut(&PacketRef<'_>)) -> u64 {
        let mut scratch = std::mem::take(&mut self.scratch);
        let b = self.block(i);
        let num = u32_at(b, block::NUM_PKTS).unwrap_or(0);
        let mut off = u32_at(b, block::FIRST).unwrap_or(0) as usize;
        let mut n = 0;
        for _ in 0..num {
            let Some(h) = b.get(off..off + pkt::HDR) else {
                break;
            };
            let field = |o: usize| u32_at(h, o).unwrap_or(0);
            let snap = field(pkt::SNAPLEN) as usize;
            let mac = u16::from_ne_bytes([h[pkt::MAC], h[pkt::MAC + 1]]) as usize;
            let Some(data) = b.get(off + mac..off + mac + snap) else {
                break;
            };
            let status = field(pkt::STATUS);
            let ts_ns = u64::from(field(pkt::SEC)) * 1_000_000_000 + u64::from(field(pkt::NSEC));
            let mut orig_len = field(pkt::LEN);
            let data: &[u8] = if status & TP_STATUS_VLAN_VALID != 0 && self.linktype == 1 {
                // The kernel took the 802.1Q tag off into the header: put it back where it
                // was on the wire, so decoding (and the `vlan` field) sees what -r would.
                let tci = field(pkt::VLAN_TCI) as u16;
                let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    u16::from_ne_bytes([h[pkt::VLAN_TPID], h[pkt::VLAN_TPID + 1]])
                } else {
                    ETH_P_8021Q
                };
                scratch.clear();
                let split = data.len().min(12);
                scratch.extend_from_slice(&data[..split]);
                scratch.extend_from_slice(&tpid.to_be_bytes());
                scratch.extend_from_slice(&tci.to_be_bytes());
                scratch.extend_from_slice(&data[split..]);
                orig_len += 4;
                &scratch
            } else {
                data
            };
            n += 1;
            f(&PacketRef {
                ts_ns,
                linktype: self.linktype,
                iface: 0,
                orig_len,
                data,
                chunk: None,
            });
            let next = field(pkt::NEXT) as usize;
            if next == 0 {
                break;
            }
            off += next;
        }
        self.scratch = scratch;
        n
    }
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps what `open` mapped and closes the socket it opened, once.
        unsafe {
            if !self.map.is_null() {
                libc::munmap(self.map.cast(), self.map_len);
            }
            libc::close(self.fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snaplen_caps_every_accepting_return() {
        let mut p = vec![
            libc::sock_filter {
                code: 0x28,
                jt: 0,
                jf: 0,
                k: 12,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 262144,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0,
            },
        ];
        cap_snaplen(&mut p, 1500);
        assert_eq!(p[0].k, 12, "a load is not a return");
        assert_eq!(p[1].k, 1500);
        assert_eq!(p[2].k, 0, "a rejecting return stays rejecting");
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = interface_linktype("ct-no-such0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    }
}
