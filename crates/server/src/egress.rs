//! Where webhook notifications may go. A webhook URL names a host anyone with an admin key
//! chooses, and the service sends requests to it from inside the operator's network: without a
//! check, a subscription could reach the service's own machine, the private network or a cloud
//! metadata service (169.254.169.254). So unless the operator allows it
//! (`leadscore serve --allow-private-webhooks`, for receivers on their own network), a host must
//! not be or resolve to a loopback, private, shared (carrier-grade NAT), link-local, unspecified,
//! multicast, broadcast or reserved address.
//!
//! The check is made when a webhook is subscribed, so that a mistake is answered at once, and
//! again at every delivery, because what a name resolves to can change: the webhook client
//! resolves names with [`CheckedResolver`], which fails when any address is refused, so that the
//! addresses checked are the very ones it connects to. A host written as an address is checked
//! before sending ([`check_literal`]), since the client does not resolve it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// Why a webhook's host may not receive notifications.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("{address} is a {kind} address")]
    Address { address: IpAddr, kind: &'static str },
    #[error("`{host}` resolves to {address}, a {kind} address")]
    Resolved { host: String, address: IpAddr, kind: &'static str },
    #[error("`{host}` does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    #[error("the URL has no host")]
    NoHost,
}

/// What the operator can do about a refusal, for messages.
pub const HOW_TO_ALLOW: &str = "webhooks may not reach loopback, private, link-local, shared, unspecified, multicast, \
     broadcast or reserved addresses unless the service runs with `--allow-private-webhooks`";

/// The kind of address `ip` is when notifications may not go to it, or `None` when they may.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        (127, _) => "loopback",
        (10, _) | (172, 16..=31) | (192, 168) => "private",
        (100, 64..=127) => "shared (carrier-grade NAT)",
        (169, 254) => "link-local",
        (224..=239, _) => "multicast",
        // Protocol assignments (192.0.0.0/24) and benchmarking (198.18.0.0/15): no public host.
        (192, 0) if c == 0 => "reserved",
        (198, 18..=19) => "reserved",
        // The documentation ranges (TEST-NET-1, -2 and -3).
        (192, 0) if c == 2 => "documentation",
        (198, 51) if c == 100 => "documentation",
        (203, 0) if c == 113 => "documentation",
        // "This network" (0.0.0.0/8) and the block kept for future use (240.0.0.0/4).
        (0, _) | (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // An IPv4 address written as IPv6 reaches that IPv4 address: judge it as one. So does one in
    // the well-known NAT64 prefix (64:ff9b::/96), through the network's NAT64 gateway.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, high, low] = segments;
        return refused_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    // The local-use NAT64 prefix (64:ff9b:1::/48) translates to addresses of the network's own.
    if segments[..3] == [0x64, 0xff9b, 1] {
        return Some("private (local NAT64)");
    }
    // The documentation prefix.
    if segments[..2] == [0x2001, 0xdb8] {
        return Some("documentation");
    }
    Some(match segments[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // The deprecated IPv4-compatible addresses (::/96).
        0 if segments[1..6] == [0; 5] => "reserved",
        s if s & 0xfe00 == 0xfc00 => "private",
        // fec0::/10, the deprecated site-local addresses, were private too.
        s if s & 0xffc0 == 0xfec0 => "private",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// Checks the host of a URL written as an address; a name passes (it is checked when resolved).
pub fn check_literal(url: &Url) -> Result<(), Refused> {
    let address = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(Refused::NoHost),
    };
    match refused_kind(address) {
        Some(kind) => Err(Refused::Address { address, kind }),
        None => Ok(()),
    }
}

/// Checks a URL's host: its address, or every address its name resolves to now.
pub async fn check_url(url: &Url) -> Result<(), Refused> {
    check_literal(url)?;
    if let Some(Host::Domain(name)) = url.host() {
        resolve_checked(name).await?;
    }
    Ok(())
}

/// Every address `host` resolves to, when none is refused.
async fn resolve_checked(host: &str) -> Result<Vec<SocketAddr>, Refused> {
    let unresolved = |reason: String| Refused::Unresolved { host: host.to_string(), reason };
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((host, 0)).await.map_err(|e| unresolved(e.to_string()))?.collect();
    if addresses.is_empty() {
        return Err(unresolved("no address".to_string()));
    }
    // One refused address refuses the host: a name that mixes public and private addresses is
    // not one to trust with some of its answers.
    for address in &addresses {
        if let Some(kind) = refused_kind(address.ip()) {
            return Err(Refused::Resolved { host: host.to_string(), address: address.ip(), kind });
        }
    }
    Ok(addresses)
}

/// The webhook client's resolver: the system's, failing with [`Refused`] when any address a name
/// resolves to is refused. The client connects only to the addresses it returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckedResolver;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = resolve_checked(&host).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a failed request, if a refusal made it fail.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(address: &str) -> Option<&'static str> {
        refused_kind(address.parse().unwrap())
    }

    #[test]
    fn ipv4_addresses_outside_the_public_internet_are_refused() {
        for (address, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("100.127.255.254", "shared (carrier-grade NAT)"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "reserved"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.8", "reserved"),
            ("198.18.0.1", "reserved"),
            ("198.19.255.1", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
        for public in [
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.167.1.1",
            "169.253.1.1",
            "223.255.255.255",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[test]
    fn ipv6_addresses_outside_the_public_internet_are_refused() {
        for (address, expected) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fec0::1", "private"),
            ("ff02::1", "multicast"),
            ("::7f00:1", "reserved"),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
        for public in ["2001:4860:4860::8888", "2606:4700::1111", "fe00::1", "fbff::1", "fe7f::1"] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[test]
    fn ipv4_addresses_written_as_ipv6_are_judged_as_ipv4() {
        assert_eq!(kind("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(kind("::ffff:169.254.169.254"), Some("link-local"));
        assert_eq!(kind("::ffff:10.0.0.1"), Some("private"));
        assert_eq!(kind("::ffff:8.8.8.8"), None);
        assert_eq!(kind("64:ff9b::a9fe:a9fe"), Some("link-local"), "169.254.169.254 through NAT64");
        assert_eq!(kind("64:ff9b::808:808"), None, "8.8.8.8 through NAT64");
        assert_eq!(kind("64:ff9b:1::808:808"), Some("private (local NAT64)"));
        assert_eq!(kind("2001:db8::1"), Some("documentation"));
    }

    #[test]
    fn a_url_written_with_an_address_is_checked_without_resolving() {
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(matches!(
            check_literal(&url("http://[::ffff:127.0.0.1]:8080/hook")),
            Err(Refused::Address { kind: "loopback", .. })
        ));
        assert!(matches!(check_literal(&url("http://169.254.169.254/latest")), Err(Refused::Address { .. })));
        assert_eq!(check_literal(&url("https://93.184.216.34/hook")), Ok(()));
        assert_eq!(check_literal(&url("https://crm.example.com/hook")), Ok(()));
    }

    #[tokio::test]
    async fn a_name_is_refused_when_it_resolves_to_a_refused_address() {
        let refused = check_url(&Url::parse("http://localhost:8640/hook").unwrap()).await.unwrap_err();
        assert!(matches!(refused, Refused::Resolved { kind: "loopback", .. }), "{refused}");
        // The client's resolver refuses it too, and the refusal can be found in its error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().dns_resolver(CheckedResolver).build().unwrap();
        let error = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(matches!(refusal_in(&error), Some(Refused::Resolved { .. })), "{error:?}");
    }
}
