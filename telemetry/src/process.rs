//! Process metrics from Linux's `/proc/self` (the names Prometheus clients use:
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, ...).

use std::time::{SystemTime, UNIX_EPOCH};

/// Linux reports CPU times in clock ticks of 1/100 s on every architecture it runs containers on
/// (`USER_HZ`, fixed by the kernel ABI, whatever the kernel's internal `HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// When the process started, unix seconds.
    pub start_time_seconds: f64,
    /// Operating-system threads.
    pub threads: u64,
}

impl ProcessSample {
    /// Reads `/proc/self`; `None` where there is no `/proc` (not Linux).
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let mut sample = parse(&stat, &status, &limits, &boot)?;
        sample.open_fds = open_fds;
        Some(sample)
    }
}

/// The pure part of [`ProcessSample::read`], for tests.
fn parse(stat: &str, status: &str, limits: &str, proc_stat: &str) -> Option<ProcessSample> {
    // The command name (field 2) is in parentheses and may contain spaces and ')': the fields
    // after it start after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let utime = field(14)?;
    let stime = field(15)?;
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let vsize = field(23)?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let rss = kb("VmRSS:").unwrap_or(0) * 1024;
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let boot_time = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    let start_time_seconds = match boot_time {
        Some(boot) => boot as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        // Without the boot time, "now" is wrong by the process's age but never in the future.
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    };
    Some(ProcessSample {
        cpu_seconds: (utime + stime) as f64 / TICKS_PER_SECOND,
        resident_memory_bytes: rss,
        virtual_memory_bytes: vsize,
        open_fds: 0,
        max_fds,
        start_time_seconds,
        threads,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_proc_files_with_a_hostile_command_name() {
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 \
                    123400 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let status = "Name:\ta\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        let sample = parse(stat, status, limits, "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        assert_eq!(sample.cpu_seconds, 3.0);
        assert_eq!(sample.threads, 7);
        assert_eq!(sample.virtual_memory_bytes, 104_857_600);
        assert_eq!(sample.resident_memory_bytes, 10_485_760);
        assert_eq!(sample.max_fds, 1024);
        assert_eq!(sample.start_time_seconds, 1_700_001_234.0);
    }

    #[test]
    fn reads_this_process() {
        let sample = ProcessSample::read().unwrap();
        assert!(sample.resident_memory_bytes > 1_000_000, "{sample:?}");
        assert!(sample.open_fds >= 3, "{sample:?}");
        assert!(sample.max_fds >= sample.open_fds, "{sample:?}");
        assert!(sample.threads >= 1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            sample.start_time_seconds <= now + 1.0
                && sample.start_time_seconds > now - 86_400.0 * 365.0
        );
    }
}
