//! The callback SSRF guard, pure: which URLs and which addresses a callback
//! may go to. The sender resolves the host, checks every address here, and
//! connects only to a checked address (no second resolution), so a name
//! that resolves to a public address once and to a private one later (DNS
//! rebinding) does not get through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::LazyLock;

use ipnet::IpNet;

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is
/// the network of that one address. The arithmetic is `ipnet`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(IpNet);

/// A CIDR that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is neither an IP address nor a CIDR (address/prefix)")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpNet>()
            .or_else(|_| bare.parse::<IpAddr>().map(IpNet::from))
            .map(Self)
            .map_err(|_| CidrError(text.to_owned()))
    }
}

impl Cidr {
    /// True when `address` is in this network (an IPv4 network never holds
    /// an IPv6 address, nor the other way round).
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address)
    }
}

/// What the operator lets callbacks reach although the guard would refuse
/// it: host names (exactly, any case) and networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    pub hosts: Vec<String>,
    pub networks: Vec<Cidr>,
}

impl AllowList {
    /// Reads `--callback-allow` entries: each a CIDR, an IP address or a
    /// host name.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Self {
        let mut allow = Self::default();
        for entry in entries.iter().map(|e| e.as_ref().trim()).filter(|e| !e.is_empty()) {
            match entry.parse::<Cidr>() {
                Ok(network) => allow.networks.push(network),
                Err(_) => allow.hosts.push(normal_host(entry)),
            }
        }
        allow
    }

    fn admits_host(&self, host: &str) -> bool {
        let host = normal_host(host);
        self.hosts.contains(&host)
    }

    fn admits_address(&self, address: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(address))
    }
}

fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The guard's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    pub allow: AllowList,
    /// The API server's addresses (and port): never a callback's target.
    pub api_server: Vec<SocketAddr>,
}

/// Why a callback target is refused; the message says what and how to
/// allow it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Where a callback URL points: its scheme is http or https and it has a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host as written in the URL, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl Guard {
    /// Checks the URL itself: scheme, host, no credentials.
    pub fn target(&self, url: &str) -> Result<Target, Refused> {
        let parsed =
            url::Url::parse(url).map_err(|error| Refused(format!("the callback URL does not parse: {error}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refused(format!("callback URL scheme {:?} is not http or https", parsed.scheme())));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Ipv6(address)) => address.to_string(),
            None => return Err(Refused("the callback URL has no host".to_owned())),
        };
        let port = parsed.port_or_known_default().unwrap_or(80);
        Ok(Target { host, port })
    }

    /// Checks one address the target's host resolved to (or is).
    pub fn check(&self, target: &Target, address: IpAddr) -> Result<(), Refused> {
        let socket = SocketAddr::new(canonical(address), target.port);
        if self.api_server.iter().any(|api| SocketAddr::new(canonical(api.ip()), api.port()) == socket) {
            return Err(Refused(format!(
                "callback host {:?} resolves to {address}, the Kubernetes API server",
                target.host
            )));
        }
        if self.allow.admits_host(&target.host) || self.allow.admits_address(address) {
            return Ok(());
        }
        if let Some(range) = forbidden(address) {
            return Err(Refused(format!(
                "callback host {:?} resolves to {address}, a {range} address; add the host or a network to the operator's callback allow-list to reach it",
                target.host
            )));
        }
        if self.api_server.iter().any(|api| canonical(api.ip()) == canonical(address)) {
            return Err(Refused(format!(
                "callback host {:?} resolves to {address}, the Kubernetes API server's address",
                target.host
            )));
        }
        Ok(())
    }
}

/// An IPv4 address that an IPv6 address carries (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`), or the address itself.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = v6.to_bits();
    let low = Ipv4Addr::from_bits((bits & 0xffff_ffff) as u32);
    let high = bits >> 32;
    let mapped = high == 0xffff;
    // `::a.b.c.d` (but not `::` and `::1`, which are IPv6's own).
    let compatible = high == 0 && low.to_bits() > 1;
    let nat64 = bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000;
    (mapped || compatible || nat64).then_some(low)
}

/// The ranges no callback may reach unless allowed, each with its name in
/// the refusal's message; the first that holds an address names it.
const FORBIDDEN: [(&str, &str); 14] = [
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    // Multicast (224/4), reserved (240/4) and the broadcast address.
    ("224.0.0.0/3", "multicast or reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "unique local (private)"),
    ("fec0::/10", "site-local (private)"),
    ("ff00::/8", "multicast"),
];

static FORBIDDEN_NETWORKS: LazyLock<Vec<(IpNet, &'static str)>> =
    LazyLock::new(|| FORBIDDEN.iter().filter_map(|(network, range)| Some((network.parse().ok()?, *range))).collect());

/// The range a refused address belongs to, or `None` for an address that
/// may be called.
pub fn forbidden(address: IpAddr) -> Option<&'static str> {
    let address = canonical(address);
    FORBIDDEN_NETWORKS.iter().find(|(network, _)| network.contains(&address)).map(|(_, range)| *range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> Target {
        Target { host: host.into(), port: 443 }
    }

    fn refused(address: &str) -> bool {
        let address: IpAddr = address.parse().expect("an address");
        Guard::default().check(&target("hook.example.com"), address).is_err()
    }

    #[test]
    fn every_loopback_link_local_private_mapped_and_metadata_address_is_refused() {
        let refused_addresses = [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "169.254.0.1",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd00:ec2::254",
            "fdff:ffff::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:172.16.0.1",
            "::ffff:192.168.1.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "ff02::1",
        ];
        for address in refused_addresses {
            assert!(refused(address), "{address} passed the guard");
        }
    }

    #[test]
    fn public_addresses_pass_the_guard() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "192.167.1.1",
            "169.255.0.1",
            "11.0.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(address), "{address} was refused");
        }
    }

    #[test]
    fn the_api_servers_address_is_refused_and_its_port_even_when_allowed() {
        let api: SocketAddr = "203.0.113.10:6443".parse().expect("an address");
        let mut guard = Guard { api_server: vec![api], ..Guard::default() };
        let address: IpAddr = "203.0.113.10".parse().expect("an address");
        assert!(guard.check(&target("kubernetes.default"), address).is_err());
        let mapped: IpAddr = "::ffff:203.0.113.10".parse().expect("an address");
        assert!(guard.check(&target("kubernetes.default"), mapped).is_err());
        guard.allow = AllowList::parse(&["203.0.113.0/24"]);
        assert!(guard.check(&Target { host: "x".into(), port: 8443 }, address).is_ok());
        assert!(guard.check(&Target { host: "x".into(), port: 6443 }, address).is_err());
    }

    #[test]
    fn the_allow_list_admits_hosts_and_networks() {
        let guard = Guard {
            allow: AllowList::parse(&["127.0.0.1", "10.96.0.0/12", "Hooks.Svc.Cluster.Local."]),
            ..Guard::default()
        };
        let check =
            |host: &str, address: &str| guard.check(&target(host), address.parse().expect("an address")).is_ok();
        assert!(check("127.0.0.1", "127.0.0.1"));
        assert!(!check("localhost", "127.0.0.2"));
        assert!(check("svc", "10.100.0.1"));
        assert!(!check("svc", "10.0.0.1"));
        assert!(check("hooks.svc.cluster.local", "10.0.0.1"));
        assert!(!check("169.254.169.254", "169.254.169.254"));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_targets() {
        let guard = Guard::default();
        assert_eq!(
            guard.target("https://hooks.example.com/x"),
            Ok(Target { host: "hooks.example.com".into(), port: 443 })
        );
        assert_eq!(guard.target("http://[::1]:8080/"), Ok(Target { host: "::1".into(), port: 8080 }));
        assert_eq!(guard.target("http://[::ffff:127.0.0.1]/").map(|t| t.host), Ok("::ffff:127.0.0.1".into()));
        for url in ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "not a url", "unix:/run/x.sock"] {
            assert!(guard.target(url).is_err(), "{url} is a target");
        }
    }

    #[test]
    fn every_forbidden_range_parses() {
        assert_eq!(FORBIDDEN_NETWORKS.len(), FORBIDDEN.len());
    }

    #[test]
    fn cidrs_parse_and_contain_their_addresses() {
        let network: Cidr = "172.16.0.0/12".parse().expect("a CIDR");
        assert!(network.contains("172.31.1.1".parse().expect("an address")));
        assert!(!network.contains("172.32.1.1".parse().expect("an address")));
        assert!(!network.contains("::ffff:172.16.0.1".parse().expect("an address")));
        assert!("0.0.0.0/0".parse::<Cidr>().expect("a CIDR").contains("8.8.8.8".parse().expect("an address")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!(
            "[fd00::1]".parse::<Cidr>().expect("a bracketed address").contains("fd00::1".parse().expect("an address"))
        );
        assert!(!"fd00::1".parse::<Cidr>().expect("an address").contains("fd00::2".parse().expect("an address")));
        assert!("example.com".parse::<Cidr>().is_err());
    }
}
