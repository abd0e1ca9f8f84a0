//! What the testbed derives from a scenario: addresses, switch ports, shortest paths, the static
//! flow entries of every switch, the hop-distance matrix of the two-tier installer and the path
//! of every (router, computer) pair.
//!
//! Ports: on every switch, port 1, 2, ... go first to its links in file order, then to its hosts
//! in file order. Addresses: hosts without a fixed one get 10.0.0.1, 10.0.0.2, ... in file order
//! (skipping fixed ones), and MACs 00:00:00:00:00:01, ... the same way (as Mininet does).
//! Shortest paths are computed with petgraph's Dijkstra from every destination switch; a switch
//! forwards to the neighbour that minimises link weight plus that neighbour's distance (ties: the
//! lowest port). Weights are strictly positive (hops, or delay in µs plus one), so the distance
//! falls at every hop and walking the entries never loops.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;

use petgraph::algo::dijkstra;
use petgraph::graph::{NodeIndex, UnGraph};

use crate::model::*;

/// What is behind a switch port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A switch link: the index in `Scenario::links` and the switch at the other end.
    Link {
        /// Index of the link in `Scenario::links`.
        link: usize,
        /// Index of the switch at the other end in `Scenario::switches`.
        switch: usize,
    },
    /// A host: the index in `Scenario::hosts`.
    Host {
        /// Index of the host in `Scenario::hosts`.
        host: usize,
    },
}

/// One port of a switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The OpenFlow port number, from 1.
    pub number: u32,
    /// The link or host on this port.
    pub peer: Peer,
}

/// What a static flow entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// IPv4 packets to this address.
    Ip(Ipv4Addr),
    /// ARP packets whose target protocol address is this.
    Arp(Ipv4Addr),
}

/// A static flow entry: match -> output port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEntry {
    /// The packets the entry applies to.
    pub matches: Match,
    /// The port of the switch the packets are sent out of.
    pub out_port: u32,
    /// The host the entry leads to.
    pub host: String,
}

impl FlowEntry {
    /// The entry in `ovs-ofctl add-flows` syntax.
    pub fn to_ofctl(&self) -> String {
        match self.matches {
            Match::Ip(ip) => format!(
                "priority=100,ip,nw_dst={ip},actions=output:{}",
                self.out_port
            ),
            Match::Arp(ip) => format!(
                "priority=100,arp,arp_tpa={ip},actions=output:{}",
                self.out_port
            ),
        }
    }
}

/// Hop distances among a set of hosts (routers and computers, for the two-tier installer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistanceMatrix {
    /// Names of the hosts, in the order of the rows and columns of `hops`.
    pub hosts: Vec<String>,
    /// `hops[i][j]`: links on a shortest path from `hosts[i]` to `hosts[j]`, access links included.
    pub hops: Vec<Vec<u32>>,
}

/// The derived view of a scenario's network.
#[derive(Clone, Debug)]
pub struct Network {
    /// IPv4 address of every host, by host index: fixed, or assigned from 10.0.0.1 up.
    pub ips: Vec<Ipv4Addr>,
    /// MAC address of every host, by host index: fixed, or assigned from 00:00:00:00:00:01 up.
    pub macs: Vec<[u8; 6]>,
    /// Ports of every switch, by switch index.
    pub ports: Vec<Vec<Port>>,
    /// For each host, the port of its switch it is attached to.
    pub host_ports: Vec<u32>,
    /// For each link, the port numbers at `a` and at `b`.
    pub link_ports: Vec<(u32, u32)>,
    /// `next[s][d]`: the link switch `s` uses towards switch `d` (None when s == d or unreachable).
    next: Vec<Vec<Option<usize>>>,
    host_switch: Vec<usize>,
}

/// Connected components of the switch graph, each a list of switch names, largest first.
pub fn components(sc: &Scenario) -> Vec<Vec<String>> {
    let index: HashMap<&str, usize> = sc
        .switches
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut adj = vec![Vec::new(); sc.switches.len()];
    for l in &sc.links {
        if let (Some(&a), Some(&b)) = (index.get(l.a.as_str()), index.get(l.b.as_str())) {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    let mut seen = vec![false; sc.switches.len()];
    let mut out = Vec::new();
    for start in 0..sc.switches.len() {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut comp = vec![start];
        let mut queue = VecDeque::from([start]);
        while let Some(u) = queue.pop_front() {
            for &v in &adj[u] {
                if !seen[v] {
                    seen[v] = true;
                    comp.push(v);
                    queue.push_back(v);
                }
            }
        }
        comp.sort_unstable();
        out.push(
            comp.into_iter()
                .map(|i| sc.switches[i].name.clone())
                .collect::<Vec<_>>(),
        );
    }
    // Stable: keeps the component of the first switch first among equals.
    out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    out
}

fn nth_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + n)
}

fn nth_mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0, 0, b[0], b[1], b[2], b[3]]
}

impl Network {
    /// Derives the network of a validated scenario.
    pub fn new(sc: &Scenario) -> Network {
        let sw: HashMap<&str, usize> = sc
            .switches
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();

        // Addresses.
        let fixed_ips: HashSet<Ipv4Addr> = sc.hosts.iter().filter_map(|h| h.ip).collect();
        let fixed_macs: HashSet<[u8; 6]> = sc.hosts.iter().filter_map(|h| h.mac).collect();
        let (mut next_ip, mut next_mac) = (1u32, 1u32);
        let mut ips = Vec::with_capacity(sc.hosts.len());
        let mut macs = Vec::with_capacity(sc.hosts.len());
        for h in &sc.hosts {
            ips.push(h.ip.unwrap_or_else(|| {
                loop {
                    let ip = nth_ip(next_ip);
                    next_ip += 1;
                    if !fixed_ips.contains(&ip) {
                        break ip;
                    }
                }
            }));
            macs.push(h.mac.unwrap_or_else(|| {
                loop {
                    let mac = nth_mac(next_mac);
                    next_mac += 1;
                    if !fixed_macs.contains(&mac) {
                        break mac;
                    }
                }
            }));
        }

        // Ports.
        let mut ports: Vec<Vec<Port>> = vec![Vec::new(); sc.switches.len()];
        let mut add_port = |s: usize, peer: Peer| -> u32 {
            let number = ports[s].len() as u32 + 1;
            ports[s].push(Port { number, peer });
            number
        };
        let mut link_ports = Vec::with_capacity(sc.links.len());
        for (i, l) in sc.links.iter().enumerate() {
            let (a, b) = (sw[l.a.as_str()], sw[l.b.as_str()]);
            let pa = add_port(a, Peer::Link { link: i, switch: b });
            let pb = add_port(b, Peer::Link { link: i, switch: a });
            link_ports.push((pa, pb));
        }
        let mut host_ports = Vec::with_capacity(sc.hosts.len());
        let mut host_switch = Vec::with_capacity(sc.hosts.len());
        for (i, h) in sc.hosts.iter().enumerate() {
            let s = sw[h.switch.as_str()];
            host_switch.push(s);
            host_ports.push(add_port(s, Peer::Host { host: i }));
        }

        // Shortest paths, towards every destination switch.
        let mut g: UnGraph<(), u64> = UnGraph::with_capacity(sc.switches.len(), sc.links.len());
        for _ in &sc.switches {
            g.add_node(());
        }
        let weight = |p: &LinkParams| -> u64 {
            match sc.control.routing {
                Routing::Hops => 1,
                Routing::Delay => (p.delay * 1000.0).round() as u64 + 1,
            }
        };
        let weights: Vec<u64> = sc.links.iter().map(|l| weight(&l.params)).collect();
        for (i, l) in sc.links.iter().enumerate() {
            g.add_edge(
                NodeIndex::new(sw[l.a.as_str()]),
                NodeIndex::new(sw[l.b.as_str()]),
                weights[i],
            );
        }
        let n = sc.switches.len();
        let mut next = vec![vec![None; n]; n];
        for d in 0..n {
            let dist = dijkstra(&g, NodeIndex::new(d), None, |e| *e.weight());
            for (s, row) in next.iter_mut().enumerate() {
                if s == d || !dist.contains_key(&NodeIndex::new(s)) {
                    continue;
                }
                // Ports are in link order, so the first minimum is the lowest port.
                let best = ports[s]
                    .iter()
                    .filter_map(|p| match p.peer {
                        Peer::Link { link, switch } => dist
                            .get(&NodeIndex::new(switch))
                            .map(|dn| (weights[link] + dn, link)),
                        Peer::Host { .. } => None,
                    })
                    .min_by_key(|(cost, _)| *cost);
                row[d] = best.map(|(_, link)| link);
            }
        }
        Network {
            ips,
            macs,
            ports,
            host_ports,
            link_ports,
            next,
            host_switch,
        }
    }

    /// Index of the switch a host is attached to.
    pub fn host_switch(&self, host: usize) -> usize {
        self.host_switch[host]
    }

    /// The port switch `s` sends traffic for host `h` out of (None: unreachable).
    pub fn out_port(&self, s: usize, h: usize) -> Option<u32> {
        let d = self.host_switch[h];
        if s == d {
            return Some(self.host_ports[h]);
        }
        let link = self.next[s][d]?;
        self.ports[s]
            .iter()
            .find(|p| matches!(p.peer, Peer::Link { link: l, .. } if l == link))
            .map(|p| p.number)
    }

    /// The static flow entries of switch `s`: for every host, IPv4 and ARP to its port.
    pub fn flows(&self, sc: &Scenario, s: usize) -> Vec<FlowEntry> {
        let mut out = Vec::with_capacity(sc.hosts.len() * 2);
        for (h, host) in sc.hosts.iter().enumerate() {
            if let Some(port) = self.out_port(s, h) {
                for m in [Match::Ip(self.ips[h]), Match::Arp(self.ips[h])] {
                    out.push(FlowEntry {
                        matches: m,
                        out_port: port,
                        host: host.name.clone(),
                    });
                }
            }
        }
        out
    }

    /// The switch links a packet from host `a` to host `b` crosses, in order (indices into
    /// `Scenario::links`). None when b cannot be reached.
    pub fn path(&self, a: usize, b: usize) -> Option<Vec<usize>> {
        let (mut s, d) = (self.host_switch[a], self.host_switch[b]);
        let mut links = Vec::new();
        while s != d {
            let link = self.next[s][d]?;
            links.push(link);
            s = self.ports[s]
                .iter()
                .find_map(|p| match p.peer {
                    Peer::Link { link: l, switch } if l == link => Some(switch),
                    _ => None,
                })
                .expect("next hop is one of the switch's links");
            debug_assert!(links.len() <= self.next.len(), "forwarding loop");
        }
        Some(links)
    }

    /// The path of every (router, computer) pair, as link names, for congestion steering.
    pub fn router_computer_paths(&self, sc: &Scenario) -> Vec<(String, String, Vec<String>)> {
        let mut out = Vec::new();
        for (r, router) in sc
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.role == Role::Router)
        {
            for (c, computer) in sc
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| matches!(h.role, Role::Computer(_)))
            {
                if let Some(path) = self.path(r, c) {
                    let names = path.into_iter().map(|l| sc.links[l].name()).collect();
                    out.push((router.name.clone(), computer.name.clone(), names));
                }
            }
        }
        out
    }

    /// Hop distances among routers and computers (in file order), access links included.
    pub fn distance_matrix(&self, sc: &Scenario) -> DistanceMatrix {
        let chosen: Vec<usize> = (0..sc.hosts.len())
            .filter(|&h| matches!(sc.hosts[h].role, Role::Router | Role::Computer(_)))
            .collect();
        self.distances(sc, &chosen)
    }

    /// Hop distances among the given hosts: BFS over switches, plus one access link at each end.
    pub fn distances(&self, sc: &Scenario, hosts: &[usize]) -> DistanceMatrix {
        let mut g: UnGraph<(), u32> = UnGraph::new_undirected();
        for _ in &sc.switches {
            g.add_node(());
        }
        for (s, ports) in self.ports.iter().enumerate() {
            for p in ports {
                if let Peer::Link { switch, .. } = p.peer
                    && s < switch
                {
                    g.add_edge(NodeIndex::new(s), NodeIndex::new(switch), 1);
                }
            }
        }
        let mut by_switch: HashMap<usize, Vec<Option<u32>>> = HashMap::new();
        let mut hops = vec![vec![u32::MAX; hosts.len()]; hosts.len()];
        for (i, &a) in hosts.iter().enumerate() {
            let sa = self.host_switch[a];
            let dist = by_switch.entry(sa).or_insert_with(|| {
                let d = dijkstra(&g, NodeIndex::new(sa), None, |e| *e.weight());
                (0..sc.switches.len())
                    .map(|s| d.get(&NodeIndex::new(s)).copied())
                    .collect()
            });
            for (j, &b) in hosts.iter().enumerate() {
                hops[i][j] = if a == b {
                    0
                } else {
                    dist[self.host_switch[b]].map_or(u32::MAX, |d| d + 2)
                };
            }
        }
        DistanceMatrix {
            hosts: hosts.iter().map(|&h| sc.hosts[h].name.clone()).collect(),
            hops,
        }
    }
}
