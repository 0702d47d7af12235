//! A small table of Azure VM sizes: vCPUs, memory and GPUs, which give nodes their capacity.

/// One VM size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSize {
    /// Azure name, e.g. `Standard_NC6s_v3`.
    pub name: &'static str,
    /// vCPUs.
    pub cpus: u32,
    /// Memory in GiB.
    pub memory_gib: u32,
    /// NVIDIA GPUs.
    pub gpus: u32,
    /// Quota family, as Azure names it in quota errors.
    pub family: &'static str,
}

const fn s(
    name: &'static str,
    cpus: u32,
    memory_gib: u32,
    gpus: u32,
    family: &'static str,
) -> VmSize {
    VmSize {
        name,
        cpus,
        memory_gib,
        gpus,
        family,
    }
}

/// Known sizes. Unknown sizes are rejected by agent-pool PUT with Azure's error.
pub const SIZES: &[VmSize] = &[
    s("Standard_B2s", 2, 4, 0, "standardBSFamily"),
    s("Standard_B4ms", 4, 16, 0, "standardBSFamily"),
    s("Standard_D2_v2", 2, 7, 0, "standardDv2Family"),
    s("Standard_DS1_v2", 1, 3, 0, "standardDSv2Family"),
    s("Standard_DS2_v2", 2, 7, 0, "standardDSv2Family"),
    s("Standard_DS3_v2", 4, 14, 0, "standardDSv2Family"),
    s("Standard_D2s_v3", 2, 8, 0, "standardDSv3Family"),
    s("Standard_D4s_v3", 4, 16, 0, "standardDSv3Family"),
    s("Standard_D8s_v3", 8, 32, 0, "standardDSv3Family"),
    s("Standard_D2s_v5", 2, 8, 0, "standardDSv5Family"),
    s("Standard_D4s_v5", 4, 16, 0, "standardDSv5Family"),
    s("Standard_D8s_v5", 8, 32, 0, "standardDSv5Family"),
    s("Standard_D16s_v5", 16, 64, 0, "standardDSv5Family"),
    s("Standard_E4s_v3", 4, 32, 0, "standardESv3Family"),
    s("Standard_E8s_v3", 8, 64, 0, "standardESv3Family"),
    s("Standard_F8s_v2", 8, 16, 0, "standardFSv2Family"),
    s("Standard_NC6", 6, 56, 1, "standardNCFamily"),
    s("Standard_NC6s_v3", 6, 112, 1, "standardNCSv3Family"),
    s("Standard_NC12s_v3", 12, 224, 2, "standardNCSv3Family"),
    s("Standard_NC24s_v3", 24, 448, 4, "standardNCSv3Family"),
    s("Standard_NC4as_T4_v3", 4, 28, 1, "standardNCASv3_T4Family"),
    s(
        "Standard_NC24ads_A100_v4",
        24,
        220,
        1,
        "StandardNCADSA100v4Family",
    ),
    s(
        "Standard_ND96asr_v4",
        96,
        900,
        8,
        "standardNDASv4_A100Family",
    ),
];

/// Looks a size up (case-insensitive).
pub fn lookup(name: &str) -> Option<VmSize> {
    SIZES
        .iter()
        .copied()
        .find(|v| v.name.eq_ignore_ascii_case(name))
}
