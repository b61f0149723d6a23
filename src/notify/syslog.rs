//! The syslog sink: RFC 5424 lines over UDP, or over TCP with RFC 6587 octet
//! counting.

use std::time::Duration;

use chrono::SecondsFormat;
use tokio::io::AsyncWriteExt;

use super::Notification;

/// RFC 5424 line: facility local4 (20), severity notice (5) or warning (4).
pub fn syslog_line(n: &Notification) -> String {
    // A name no version of the enum knows (a newer node's) is a plain notice.
    let severity = if crate::events::Event::parse(&n.event).is_some_and(crate::events::Event::needs_attention) {
        4
    } else {
        5
    };
    let pri = 20 * 8 + severity;
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
        .unwrap_or_else(|| "-".into());
    let msgid: String = n.event.chars().filter(|c| c.is_ascii_graphic()).take(32).collect();
    format!(
        "<{pri}>1 {} {host} portier {} {msgid} - {}",
        n.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        std::process::id(),
        serde_json::json!({"event": n.event, "data": n.data})
    )
}

/// Sends one line to `target` (`udp://host:port` or `tcp://host:port`).
pub(super) async fn send(target: &str, n: &Notification) -> std::io::Result<()> {
    let line = syslog_line(n);
    if let Some(addr) = target.strip_prefix("udp://") {
        let sock = tokio::net::UdpSocket::bind(if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" }).await?;
        sock.send_to(line.as_bytes(), addr).await?;
        Ok(())
    } else if let Some(addr) = target.strip_prefix("tcp://") {
        // RFC 6587 octet counting.
        let mut s = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        s.write_all(format!("{} {line}", line.len()).as_bytes()).await?;
        s.shutdown().await
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "syslog target must be udp://host:port or tcp://host:port",
        ))
    }
}
