//! What `/proc` says about the bot's process tree: CPU time, peak RSS, and our CPU affinity.

use std::time::Duration;

use anyhow::Context;

/// `(pid, ppid, utime + stime in ticks)` of every process now running.
fn processes() -> Vec<(u32, u32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name (field 2) may hold spaces; the fields after it do not.
            let rest = &stat[stat.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ppid = fields.get(1)?.parse().ok()?;
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((pid, ppid, utime.saturating_add(stime)))
        })
        .collect()
}

/// `root` and its descendants, with their CPU ticks.
fn tree(root: u32) -> Vec<(u32, u64)> {
    let all = processes();
    let mut members = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, _) in &all {
            if members.contains(ppid) && !members.contains(pid) {
                members.push(*pid);
                grew = true;
            }
        }
    }
    all.into_iter()
        .filter(|(pid, _, _)| members.contains(pid))
        .map(|(pid, _, ticks)| (pid, ticks))
        .collect()
}

/// User + system CPU time used so far by `root` and its descendants.
pub fn tree_cpu(root: u32) -> anyhow::Result<Duration> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz)
        .ok()
        .filter(|h| *h > 0)
        .context("CLK_TCK")?;
    let ticks: u64 = tree(root).iter().map(|(_, t)| *t).sum();
    Ok(Duration::from_micros(ticks.saturating_mul(1_000_000) / hz))
}

/// Peak resident set (`VmHWM`) summed over `root` and its descendants, in KiB.
pub fn tree_peak_rss_kib(root: u32) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for (pid, _) in tree(root) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        total = total.saturating_add(kib);
    }
    Ok(total)
}

/// The CPUs this process may run on (`taskset -c 1 shell-bench` → `1`).
pub fn affinity() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}
