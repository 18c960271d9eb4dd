//! DNS message parser (RFC 1035), our own.
//!
//! Why not `dns-parser`: version 0.8 rejects the whole message when a question's type is one it
//! does not know (`InvalidQueryType(65)` for HTTPS, which browsers send beside every A/AAAA;
//! likewise SVCB/64 and CAA/257), and `simple-dns` 0.11 still rejects unassigned types. A
//! sensor must get the name out of a query of any type, so this parser treats types and
//! classes as plain numbers. It is strict about the wire format instead: a name follows at most
//! MAX_POINTER_HOPS compression pointers (so a loop ends in an error), labels are at most 63
//! bytes, names at most 255, and every read is bounds-checked. Pointers may point forward:
//! RFC 1035 only says "a prior occurrence", but real resolvers and tshark accept forward ones.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("message shorter than the 12-byte header")]
    ShortHeader,
    #[error("name runs past the end of the message")]
    NameTruncated,
    #[error("compression pointer outside the message, or a chain of pointers (a loop)")]
    BadPointer,
    #[error("label longer than 63 bytes")]
    LabelTooLong,
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("record runs past the end of the message")]
    RecordTruncated,
    #[error("implausible section counts")]
    BadCounts,
}

impl DnsError {
    pub fn reason(&self) -> &'static str {
        match self {
            DnsError::ShortHeader => "dns_short_header",
            DnsError::NameTruncated => "dns_name_truncated",
            DnsError::BadPointer => "dns_bad_pointer",
            DnsError::LabelTooLong => "dns_label_too_long",
            DnsError::NameTooLong => "dns_name_too_long",
            DnsError::RecordTruncated => "dns_record_truncated",
            DnsError::BadCounts => "dns_bad_counts",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// CNAME, DNAME, NS, PTR: a domain name.
    Name(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Rdata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    /// Answer section only (authority and additional are not evidence of what was asked).
    pub answers: Vec<Answer>,
    /// The authority and additional sections parsed too and the message ended exactly there:
    /// required before a payload on a non-DNS port is believed to be DNS.
    pub complete: bool,
}

impl Message {
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Reads a possibly compressed name at `pos`; returns it in presentation form (labels joined
/// by dots, bytes outside printable ASCII, dots and backslashes inside labels escaped as
/// `\DDD`) and the position just after the name's bytes at `pos`.
pub fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    // Built as bytes, all ASCII (escapes are ASCII digits), with room for a usual name so
    // it is allocated once: a name is read for every question and answer of every message.
    let mut out: Vec<u8> = Vec::with_capacity(NAME_CAPACITY);
    let mut wire_len = 0usize;
    let mut end_after: Option<usize> = None;
    let mut hops = 0usize;
    // Labels grow `wire_len` (capped at 255) and pointers grow `hops` (capped at
    // MAX_POINTER_HOPS): every pass grows one of them, so the walk ends even on a loop.
    loop {
        let len = *msg.get(pos).ok_or(DnsError::NameTruncated)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let end = end_after.unwrap_or(pos + 1);
                    if out.is_empty() {
                        // The root, as Suricata writes it.
                        out.extend_from_slice(b"<root>");
                    }
                    return Ok((ascii_string(out), end));
                }
                let l = usize::from(len);
                let label = msg
                    .get(pos + 1..pos + 1 + l)
                    .ok_or(DnsError::NameTruncated)?;
                wire_len += l + 1;
                if wire_len > 255 {
                    return Err(DnsError::NameTooLong);
                }
                if !out.is_empty() {
                    out.push(b'.');
                }
                if label.iter().all(|b| is_plain(*b)) {
                    // The usual label: copied as it is.
                    out.extend_from_slice(label);
                } else {
                    for &b in label {
                        if is_plain(b) {
                            out.push(b);
                        } else {
                            out.extend_from_slice(&[
                                b'\\',
                                b'0' + b / 100,
                                b'0' + (b / 10) % 10,
                                b'0' + b % 10,
                            ]);
                        }
                    }
                }
                pos += 1 + l;
            }
            0xc0 => {
                let ptr = usize::from(be16(msg, pos).ok_or(DnsError::NameTruncated)? & 0x3fff);
                hops += 1;
                if ptr >= msg.len() || hops > MAX_POINTER_HOPS {
                    return Err(DnsError::BadPointer);
                }
                if end_after.is_none() {
                    end_after = Some(pos + 2);
                }
                pos = ptr;
            }
            _ => return Err(DnsError::LabelTooLong),
        }
    }
}

/// Room reserved for a name in presentation form: most names are shorter, so the name is
/// allocated once.
const NAME_CAPACITY: usize = 64;

/// A label byte written as it is (printable ASCII other than the dot and the backslash);
/// the others are escaped as `\DDD`.
#[inline]
fn is_plain(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'.' && b != b'\\'
}

/// The name's bytes as a String: they are ASCII by construction (plain bytes, dots, and
/// `\DDD` escapes), so the check cannot fail; were it to, the bytes are kept lossily
/// rather than panicking.
fn ascii_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Most compression pointers one name may follow. A name is at most 255 bytes, so at most
/// 127 labels (a length byte and one character each); a useful pointer is followed by at
/// least one label, so a valid name never needs more than 128 jumps. A longer chain is a loop
/// or pointers to pointers, rejected. The bound (not "pointers go backwards only", which
/// rejected the forward pointers real resolvers emit) is what keeps loops finite.
pub const MAX_POINTER_HOPS: usize = 128;

/// Parses a whole DNS message (UDP payload, or one TCP-framed message without its length).
pub fn parse(msg: &[u8]) -> Result<Message, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::ShortHeader);
    }
    let id = be16(msg, 0).ok_or(DnsError::ShortHeader)?;
    let flags = be16(msg, 2).ok_or(DnsError::ShortHeader)?;
    let qd = usize::from(be16(msg, 4).ok_or(DnsError::ShortHeader)?);
    let an = usize::from(be16(msg, 6).ok_or(DnsError::ShortHeader)?);
    // Each question takes at least 5 bytes and each record 11: counts the message cannot
    // hold are rejected before any allocation.
    if qd * 5 + an * 11 > msg.len() {
        return Err(DnsError::BadCounts);
    }
    let mut pos = 12;
    let mut questions = Vec::with_capacity(qd);
    for _ in 0..qd {
        let q = read_name(msg, pos).and_then(|(name, p)| {
            let qtype = be16(msg, p).ok_or(DnsError::RecordTruncated)?;
            let qclass = be16(msg, p + 2).ok_or(DnsError::RecordTruncated)?;
            Ok((name, qtype, qclass, p + 4))
        });
        match q {
            Ok((name, qtype, qclass, next)) => {
                pos = next;
                questions.push(Question {
                    name,
                    qtype,
                    qclass,
                });
            }
            // Keep the questions read before a malformed one: they were asked.
            Err(_) if !questions.is_empty() => {
                return Ok(Message {
                    id,
                    flags,
                    questions,
                    answers: Vec::new(),
                    complete: false,
                })
            }
            Err(e) => return Err(e),
        }
    }
    let mut answers = Vec::with_capacity(an);
    for _ in 0..an {
        let (name, p) = read_name(msg, pos)?;
        let rtype = be16(msg, p).ok_or(DnsError::RecordTruncated)?;
        let ttl_hi = be16(msg, p + 4).ok_or(DnsError::RecordTruncated)?;
        let ttl_lo = be16(msg, p + 6).ok_or(DnsError::RecordTruncated)?;
        let rdlen = usize::from(be16(msg, p + 8).ok_or(DnsError::RecordTruncated)?);
        let rstart = p + 10;
        let rd = msg
            .get(rstart..rstart + rdlen)
            .ok_or(DnsError::RecordTruncated)?;
        let rdata = match (rtype, rdlen) {
            (1, 4) => Rdata::A(Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3])),
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rd);
                Rdata::Aaaa(Ipv6Addr::from(a))
            }
            (2 | 5 | 12 | 39, _) => Rdata::Name(read_name(msg, rstart)?.0),
            _ => Rdata::Other,
        };
        answers.push(Answer {
            name,
            rtype,
            ttl: (u32::from(ttl_hi) << 16) | u32::from(ttl_lo),
            rdata,
        });
        pos = rstart + rdlen;
    }
    let ns = usize::from(be16(msg, 8).ok_or(DnsError::ShortHeader)?);
    let ar = usize::from(be16(msg, 10).ok_or(DnsError::ShortHeader)?);
    let complete = skip_records(msg, pos, ns + ar) == Some(msg.len());
    Ok(Message {
        id,
        flags,
        questions,
        answers,
        complete,
    })
}

/// Skips `n` resource records from `pos` without building names; the end position, or
/// `None` if they do not parse.
fn skip_records(msg: &[u8], mut pos: usize, n: usize) -> Option<usize> {
    for _ in 0..n {
        pos = skip_name(msg, pos)?;
        let rdlen = usize::from(be16(msg, pos + 8)?);
        pos += 10 + rdlen;
        if pos > msg.len() {
            return None;
        }
    }
    Some(pos)
}

/// Position after the name at `pos` (its bytes at `pos` only; a pointer ends it).
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return (pos + 2 <= msg.len()).then_some(pos + 2),
            _ => return None,
        }
    }
    None
}

/// Cheap check of the 12-byte header, used to recognise DNS on ports that are not DNS
/// ports: one to a few questions, a standard opcode, plausible counts.
pub fn plausible_header(msg: &[u8]) -> bool {
    let (Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) = (
        be16(msg, 2),
        be16(msg, 4),
        be16(msg, 6),
        be16(msg, 8),
        be16(msg, 10),
    ) else {
        return false;
    };
    let opcode = (flags >> 11) & 0xf;
    let z = flags & 0x0040;
    (1..=4).contains(&qd) && opcode <= 2 && z == 0 && an <= 64 && ns <= 64 && ar <= 64
}

/// Name of a resource-record type as Suricata writes it (the number for unknown types).
pub fn rrtype_name(t: u16) -> std::borrow::Cow<'static, str> {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        44 => "SSHFP",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return std::borrow::Cow::Owned(t.to_string()),
    };
    std::borrow::Cow::Borrowed(s)
}

/// Name of a response code as Suricata writes it.
pub fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a query for `name` with the given type, as dig would.
    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![];
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    #[test]
    fn every_query_type_yields_its_name() {
        for t in [1u16, 28, 65, 64, 257, 1234, 65_280] {
            let m = parse(&query(77, "x.pastebin.com", t)).expect("parses");
            assert_eq!(m.questions.len(), 1);
            assert_eq!(m.questions[0].name, "x.pastebin.com");
            assert_eq!(m.questions[0].qtype, t);
            assert_eq!(m.id, 77);
            assert!(!m.is_response());
        }
        assert_eq!(rrtype_name(65), "HTTPS");
        assert_eq!(rrtype_name(1234), "1234");
    }

    #[test]
    fn response_with_cname_chain_and_compression() {
        let mut m = query(9, "cdn.example.net", 1);
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 2; // ancount
                  // answer 1: ptr to question name (offset 12), CNAME -> bucket.s3.amazonaws.com
        let target: Vec<u8> = {
            let mut t = vec![];
            for l in ["bucket", "s3", "amazonaws", "com"] {
                t.push(l.len() as u8);
                t.extend_from_slice(l.as_bytes());
            }
            t.push(0);
            t
        };
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&(target.len() as u16).to_be_bytes());
        let target_at = m.len();
        m.extend_from_slice(&target);
        // answer 2: ptr to the CNAME target, A 52.1.2.3
        m.extend_from_slice(&[
            0xc0,
            target_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            0,
            60,
            0,
            4,
            52,
            1,
            2,
            3,
        ]);
        let p = parse(&m).expect("parses");
        assert!(p.is_response());
        assert_eq!(p.answers.len(), 2);
        assert_eq!(
            p.answers[0].rdata,
            Rdata::Name("bucket.s3.amazonaws.com".into())
        );
        assert_eq!(p.answers[1].name, "bucket.s3.amazonaws.com");
        assert_eq!(p.answers[1].rdata, Rdata::A(Ipv4Addr::new(52, 1, 2, 3)));
    }

    #[test]
    fn hostile_names_are_rejected() {
        // pointer to itself
        let mut m = query(1, "a", 1);
        m.truncate(12);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::BadPointer));
        // forward pointer past the end
        let mut m = query(1, "a", 1);
        m.truncate(12);
        m.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::BadPointer));
        // label of 64
        let mut m = query(1, "a", 1);
        m.truncate(12);
        m.push(64);
        m.extend_from_slice(&[b'a'; 64]);
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::LabelTooLong));
        // name over 255
        let long = vec!["a".repeat(60); 5].join(".");
        assert_eq!(parse(&query(1, &long, 1)), Err(DnsError::NameTooLong));
        // truncated
        let m = query(1, "pastebin.com", 1);
        for cut in 0..m.len() {
            assert!(parse(&m[..cut]).is_err(), "cut at {cut}");
        }
        // counts larger than the message
        let mut m = query(1, "a", 1);
        m[4] = 0xff;
        assert_eq!(parse(&m), Err(DnsError::BadCounts));
    }

    /// Header of a one-question query; the caller appends the question.
    fn header() -> Vec<u8> {
        vec![0, 7, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
    }

    #[test]
    fn forward_pointer_is_followed() {
        // Question name = "www" + pointer FORWARD to "example.com" stored after the question
        // (an additional-section-like blob the pointer reaches ahead of itself).
        let mut m = header();
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 0]);
        let ptr_at = m.len() - 1;
        m.extend_from_slice(&[0, 1, 0, 1]);
        let target = m.len();
        m[ptr_at] = target as u8;
        m.extend_from_slice(&[7]);
        m.extend_from_slice(b"example");
        m.extend_from_slice(&[3, b'c', b'o', b'm', 0]);
        let (name, end) = read_name(&m, 12).expect("forward pointer accepted");
        assert_eq!(name, "www.example.com");
        assert_eq!(end, 12 + 6, "the name's own bytes end after the pointer");
        let p = parse(&m).expect("parses");
        assert_eq!(p.questions[0].name, "www.example.com");
        assert_eq!(p.questions[0].qtype, 1);
    }

    #[test]
    fn pointer_loop_is_an_error_not_a_hang() {
        // Two pointers pointing at each other: 12 -> 14 -> 12 -> ...
        let mut m = header();
        m.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(read_name(&m, 12), Err(DnsError::BadPointer));
        // A loop that adds a label on each turn ends on the name length instead.
        let mut m = header();
        m.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(read_name(&m, 12), Err(DnsError::NameTooLong));
    }

    #[test]
    fn chain_past_the_hop_limit_is_rejected_and_at_the_limit_accepted() {
        // A chain of `n` pointers, each to the next, then the name "a": n hops.
        let chain = |n: usize| -> Vec<u8> {
            let mut m = header();
            for i in 0..n {
                let next = 12 + 2 * (i + 1);
                m.extend_from_slice(&[0xc0 | (next >> 8) as u8, next as u8]);
            }
            m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
            m
        };
        let ok = chain(MAX_POINTER_HOPS);
        assert_eq!(read_name(&ok, 12).map(|r| r.0), Ok("a".to_string()));
        let bad = chain(MAX_POINTER_HOPS + 1);
        assert_eq!(read_name(&bad, 12), Err(DnsError::BadPointer));
    }
}
