//! What a benchmark side cost its process: CPU time from getrusage, peak and current RSS from
//! /proc/self/status, and the machine's load (other work on the host skews every figure).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// User and system CPU time of this process so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    pub fn now() -> CpuTime {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a complete `rusage` into the pointer it is given; RUSAGE_SELF
        // is always valid. On failure (it cannot fail for RUSAGE_SELF) the zeroed value is read.
        let usage = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
            usage.assume_init()
        };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        CpuTime {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
        }
    }

    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

/// Resident memory of this process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Peak RSS (VmHWM) since start, or since [`reset_peak_rss`].
    pub peak_kib: u64,
    pub current_kib: u64,
}

impl Memory {
    pub fn now() -> Option<Memory> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        Some(Memory {
            peak_kib: status_kib(&status, "VmHWM:")?,
            current_kib: status_kib(&status, "VmRSS:")?,
        })
    }
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Starts the peak-RSS measurement afresh (Linux ≥ 4.0: writing 5 to clear_refs), so loading the
/// rules before the measured window does not count. False when the kernel refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = CpuTime::now();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let spent = CpuTime::now().since(before);
        assert!(spent.total() > Duration::ZERO, "{spent:?}");
    }

    #[test]
    fn memory_is_read_and_peak_follows_an_allocation() {
        let before = Memory::now().expect("/proc/self/status");
        assert!(before.current_kib > 0 && before.peak_kib >= before.current_kib);
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = Memory::now().unwrap();
        // Other tests of this process allocate and free meanwhile: only what holds whatever they do.
        assert!(after.current_kib >= 60 << 10, "{after:?}");
        assert!(after.peak_kib >= after.current_kib, "{after:?}");
    }

    #[test]
    fn status_fields_parse() {
        let status = "Name:\tpatrol\nVmHWM:\t   13560 kB\nVmRSS:\t  9000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(13560));
        assert_eq!(status_kib(status, "VmRSS:"), Some(9000));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert!(load_average().is_some_and(|l| l >= 0.0));
    }
}
