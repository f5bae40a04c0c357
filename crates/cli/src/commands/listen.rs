//! Where a command that serves HTTP (`heaplens serve`, `heaplens metrics --port`) listens: the
//! addresses of `--host`, the refusal to listen beyond loopback without a token, and the bound
//! socket, each failure with its hint.

use super::failure::failure;
use anyhow::Result;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};

/// The addresses of `host` (an IP address, `[v6]`, or a name this machine resolves) at `port`.
pub fn addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (name, port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default(),
    };
    if addrs.is_empty() {
        return Err(failure(
            format!("cannot find the address of --host {host}"),
            "give an IP address (127.0.0.1, ::1, 0.0.0.0 with --token) or a name this machine \
             resolves",
        ));
    }
    Ok(addrs)
}

/// Refuses an address beyond loopback without a token: anyone who can reach it would see
/// `exposed`; `hint` says how clients send the token.
pub fn loopback_unless_token(
    addrs: &[SocketAddr],
    token: Option<&str>,
    exposed: &str,
    hint: &'static str,
) -> Result<()> {
    if token.is_some() {
        return Ok(());
    }
    match addrs.iter().find(|a| !a.ip().to_canonical().is_loopback()) {
        Some(remote) => Err(failure(
            format!(
                "refusing to listen on {} without a token: anyone who can reach it would see \
                 {exposed}",
                remote.ip()
            ),
            hint,
        )),
        None => Ok(()),
    }
}

/// A socket listening on `addrs` (the first that binds), `host:port` naming them in a failure.
pub fn bind(addrs: &[SocketAddr], host: &str, port: u16) -> Result<TcpListener> {
    TcpListener::bind(addrs).map_err(|e| {
        failure(
            format!("cannot listen on {host}:{port}: {e}"),
            "the port may be in use: pick another with --port, or --port 0 for any free one",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_brackets_resolve_and_nonsense_says_what_to_give() {
        assert_eq!(addresses("[::1]", 80).unwrap()[0].to_string(), "[::1]:80");
        assert_eq!(addresses("127.0.0.1", 0).unwrap()[0].port(), 0);
        let e = addresses("no such host.invalid", 1).unwrap_err();
        assert!(super::super::failure::hint(&e)
            .unwrap()
            .contains("IP address"));
    }

    #[test]
    fn only_loopback_goes_without_a_token() {
        let loopback = addresses("127.0.0.1", 0).unwrap();
        let any = addresses("0.0.0.0", 0).unwrap();
        assert!(loopback_unless_token(&loopback, None, "x", "h").is_ok());
        assert!(loopback_unless_token(&any, Some("t"), "x", "h").is_ok());
        let e = loopback_unless_token(&any, None, "secrets", "add --token").unwrap_err();
        assert!(e.to_string().contains("would see secrets"), "{e}");
    }
}
