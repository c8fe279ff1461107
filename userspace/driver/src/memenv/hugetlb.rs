//! hugetlb: 2 MiB pages reserved on every online node
//! (`/sys/devices/system/node/nodeN/hugepages/hugepages-2048kB/nr_hugepages`)
//! and a hugetlbfs mount of that size, for the `hugetlb` kind's files and
//! MAP_HUGETLB. The pool sizes are put back on drop.

use super::mount::Mount;
use anyhow::{bail, Context, Result};

/// Pages of 2 MiB reserved on each node (32 MiB a node).
pub const PAGES_PER_NODE: u64 = 16;
/// Where hugetlbfs is mounted.
pub const MOUNT_POINT: &str = "/mnt/mmrace-hugetlb";

fn nr_path(node: u32) -> String {
    format!("/sys/devices/system/node/node{node}/hugepages/hugepages-2048kB/nr_hugepages")
}

fn read_u64(path: &str) -> Result<u64> {
    let s = std::fs::read_to_string(path).with_context(|| {
        format!("cannot read {path} (the kernel needs CONFIG_HUGETLBFS and 2 MiB pages)")
    })?;
    s.trim()
        .parse()
        .with_context(|| format!("{path}: {s:?} is not a number"))
}

/// One node's pool: what it had and what it has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePool {
    pub node: u32,
    pub before: u64,
    pub pages: u64,
}

/// The reserved pools and the mount; pools restored, mount undone on drop.
#[derive(Debug)]
pub struct Hugetlb {
    pub pools: Vec<NodePool>,
    pub mount: Mount,
}

impl Hugetlb {
    /// Reserves [`PAGES_PER_NODE`] (at least) on every online node and
    /// mounts hugetlbfs; fails if a node could not get them.
    pub fn start() -> Result<Hugetlb> {
        let nodes = crate::numa::online_nodes().context("hugetlb: no online nodes")?;
        let mut pools = Vec::new();
        let grown = reserve(&nodes, &mut pools);
        let h = Hugetlb {
            mount: match grown {
                Ok(()) => Mount::new("hugetlbfs", MOUNT_POINT, "hugetlbfs", "pagesize=2M")?,
                Err(e) => {
                    restore(&pools);
                    return Err(e);
                }
            },
            pools,
        };
        Ok(h)
    }

    /// Total pages reserved across the nodes.
    pub fn total_pages(&self) -> u64 {
        self.pools.iter().map(|p| p.pages).sum()
    }

    /// Free 2 MiB pages now (the global pool).
    pub fn free_pages() -> Result<u64> {
        read_u64("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
    }
}

fn reserve(nodes: &[u32], pools: &mut Vec<NodePool>) -> Result<()> {
    for &node in nodes {
        let path = nr_path(node);
        let before = read_u64(&path)?;
        let want = before.max(PAGES_PER_NODE);
        crate::kfile::write(&path, &format!("{want}\n"))
            .with_context(|| format!("cannot write {want} to {path}"))?;
        let pages = read_u64(&path)?;
        pools.push(NodePool {
            node,
            before,
            pages,
        });
        if pages < want {
            bail!(
                "hugetlb: node {node} has {pages} of the {want} 2 MiB pages asked for \
                 (memory too fragmented or too small)"
            );
        }
    }
    Ok(())
}

fn restore(pools: &[NodePool]) {
    for p in pools {
        let _ = crate::kfile::write(&nr_path(p.node), &format!("{}\n", p.before));
    }
}

impl Drop for Hugetlb {
    fn drop(&mut self) {
        self.mount.unmount();
        restore(&self.pools);
    }
}
