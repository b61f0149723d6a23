//! PROXY protocol v2 (HAProxy's binary header), read before the TLS handshake on
//! connections from a configured load balancer, so the gateway sees the
//! technician's address rather than the balancer's. Only v2, only TCP over
//! IPv4/IPv6; TLVs are skipped. The parser is pure and total (no panics on any
//! input); the reader takes exactly the bytes the header declares, so the TLS
//! bytes behind it stay in the socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport, length.
const FIXED: usize = 16;
/// Largest address-and-TLV part accepted: the TCP/IPv6 addresses (36 bytes)
/// plus room for the TLVs balancers add (unique id, TLS details, cloud
/// endpoint ids). A longer header is refused rather than buffered.
pub const MAX_PAYLOAD: usize = 1024;

/// What a valid header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The balancer's own connection (health check): no client address.
    Local,
    /// A relayed TCP connection from `source`.
    Proxied { source: SocketAddr },
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY protocol v2 signature")]
    NoSignature,
    #[error("PROXY protocol version {0} (only 2 is accepted)")]
    Version(u8),
    #[error("unknown PROXY command {0}")]
    Command(u8),
    #[error("PROXY header carries no TCP over IPv4/IPv6 address (family/transport {0:#04x})")]
    Family(u8),
    #[error("PROXY header length {0} is shorter than its addresses")]
    Short(usize),
    #[error("PROXY header length {0} exceeds the {MAX_PAYLOAD}-byte bound")]
    TooLong(usize),
    #[error("connection closed or failed within the PROXY header")]
    Truncated,
}

/// The payload length the fixed part declares, after checking signature and bound.
pub fn payload_len(fixed: &[u8; FIXED]) -> Result<usize, ProxyError> {
    if fixed.get(..12) != Some(&SIGNATURE[..]) {
        return Err(ProxyError::NoSignature);
    }
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > MAX_PAYLOAD {
        return Err(ProxyError::TooLong(len));
    }
    Ok(len)
}

/// Parses a complete header: the 16 fixed bytes and the `payload` they declare.
pub fn parse(fixed: &[u8; FIXED], payload: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let len = payload_len(fixed)?;
    if payload.len() != len {
        return Err(ProxyError::Truncated);
    }
    let version = fixed[12] >> 4;
    if version != 2 {
        return Err(ProxyError::Version(version));
    }
    match fixed[12] & 0x0f {
        // LOCAL: the addresses, if any, are to be ignored.
        0x0 => return Ok(ProxyHeader::Local),
        0x1 => {}
        other => return Err(ProxyError::Command(other)),
    }
    let source = match fixed[13] {
        // TCP over IPv4.
        0x11 => {
            let a: &[u8; 12] = payload
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyError::Short(len))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([a[8], a[9]]))
        }
        // TCP over IPv6.
        0x21 => {
            let a: &[u8; 36] = payload
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyError::Short(len))?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), u16::from_be_bytes([a[32], a[33]]))
        }
        other => return Err(ProxyError::Family(other)),
    };
    // TLVs after the addresses are skipped: none changes who the client is.
    Ok(ProxyHeader::Proxied { source })
}

/// Reads exactly one header from `io` (16 bytes, then the length they
/// declare, at most [`MAX_PAYLOAD`]), leaving what follows unread. The caller
/// bounds the time.
pub async fn read<R: AsyncRead + Unpin>(io: &mut R) -> Result<ProxyHeader, ProxyError> {
    let mut fixed = [0u8; FIXED];
    io.read_exact(&mut fixed).await.map_err(|_| ProxyError::Truncated)?;
    let len = payload_len(&fixed)?;
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.map_err(|_| ProxyError::Truncated)?;
    parse(&fixed, &payload)
}

/// Whether `first` (the first bytes a client sent, possibly fewer than 12)
/// begin like a v2 header. A TLS record never starts with 0x0D, so this does
/// not mistake a ClientHello.
pub fn looks_like_header(first: &[u8]) -> bool {
    let n = first.len().min(SIGNATURE.len());
    n > 0 && first.get(..n).is_some_and(|head| SIGNATURE.starts_with(head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn header(cmd: u8, fam: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn split(bytes: &[u8]) -> ([u8; 16], &[u8]) {
        (bytes[..16].try_into().unwrap(), &bytes[16..])
    }

    fn v4_payload() -> Vec<u8> {
        let mut p = vec![192, 0, 2, 7, 10, 0, 0, 1];
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&8443u16.to_be_bytes());
        p
    }

    #[test]
    fn tcp_over_ipv4_and_ipv6_with_tlvs_skipped() {
        let mut p = v4_payload();
        p.extend_from_slice(&[0x05, 0x00, 0x02, 0xaa, 0xbb]); // a unique-id TLV
        let h = header(1, 0x11, &p);
        let (f, rest) = split(&h);
        assert_eq!(
            parse(&f, rest),
            Ok(ProxyHeader::Proxied {
                source: "192.0.2.7:40000".parse().unwrap()
            })
        );

        let mut p6 = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        p6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p6.extend_from_slice(&[0x9c, 0x40, 0x20, 0xfb]);
        let h = header(1, 0x21, &p6);
        let (f, rest) = split(&h);
        assert_eq!(
            parse(&f, rest),
            Ok(ProxyHeader::Proxied {
                source: "[2001:db8::7]:40000".parse().unwrap()
            })
        );
    }

    #[test]
    fn refusals_are_typed() {
        let cases: Vec<(Vec<u8>, ProxyError)> = vec![
            (header(0x2, 0x11, &v4_payload()), ProxyError::Command(2)),
            (header(1, 0x12, &v4_payload()), ProxyError::Family(0x12)), // UDP
            (header(1, 0x31, &[0; 216]), ProxyError::Family(0x31)),     // unix
            (header(1, 0x00, &[]), ProxyError::Family(0x00)),           // PROXY without address
            (header(1, 0x11, &[1, 2, 3]), ProxyError::Short(3)),
            (header(1, 0x21, &v4_payload()), ProxyError::Short(12)),
            (
                header(1, 0x11, &[0; MAX_PAYLOAD + 1]),
                ProxyError::TooLong(MAX_PAYLOAD + 1),
            ),
        ];
        for (bytes, want) in cases {
            let (f, rest) = split(&bytes);
            assert_eq!(parse(&f, rest), Err(want));
        }
        let mut v1 = header(1, 0x11, &v4_payload());
        v1[12] = 0x11;
        let (f, rest) = split(&v1);
        assert_eq!(parse(&f, rest), Err(ProxyError::Version(1)));
        let local = header(0, 0x00, &[]);
        let (f, rest) = split(&local);
        assert_eq!(parse(&f, rest), Ok(ProxyHeader::Local));
        let mut tls = [0u8; 16];
        tls[0] = 0x16;
        assert_eq!(payload_len(&tls), Err(ProxyError::NoSignature));
    }

    #[tokio::test]
    async fn the_reader_leaves_what_follows_unread() {
        let mut bytes = header(1, 0x11, &v4_payload());
        bytes.extend_from_slice(b"\x16\x03\x01TLS");
        let mut io = &bytes[..];
        assert!(matches!(read(&mut io).await, Ok(ProxyHeader::Proxied { .. })));
        assert_eq!(io, b"\x16\x03\x01TLS");
        let cut = &header(1, 0x11, &v4_payload())[..20];
        assert_eq!(read(&mut &cut[..]).await, Err(ProxyError::Truncated));
    }

    #[test]
    fn signature_prefixes_are_recognised_and_tls_is_not() {
        assert!(looks_like_header(&SIGNATURE[..1]));
        assert!(looks_like_header(&header(1, 0x11, &v4_payload())));
        assert!(!looks_like_header(b"\x16\x03\x01\x02\x00"));
        assert!(!looks_like_header(b""));
        assert!(!looks_like_header(b"\r\n\r\nX"));
    }

    /// Random bytes, and random bytes behind a valid signature, never panic.
    #[test]
    fn garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for i in 0..20_000 {
            let mut fixed = [0u8; 16];
            rng.fill(&mut fixed[..]);
            if i % 2 == 0 {
                fixed[..12].copy_from_slice(&SIGNATURE);
                fixed[14] = rng.gen_range(0..=8);
            }
            let n = rng.gen_range(0..300);
            let payload: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            let _ = parse(&fixed, &payload);
            let _ = looks_like_header(&payload);
            if let Ok(len) = payload_len(&fixed) {
                assert!(len <= MAX_PAYLOAD);
            }
        }
    }
}
