//! The built-in stress child, `patrol __stress` (hidden): burns CPU in `--cpu-workers` threads at
//! `--load` percent and holds `--memory-bytes` of touched memory, then exits by itself after
//! `--seconds` — so it is bounded even when the patrol that started it is killed with -9.

use std::time::{Duration, Instant};

/// Length of one busy/idle cycle of a CPU worker.
const SLICE: Duration = Duration::from_millis(100);
const PAGE: usize = 4096;

/// Arguments of `patrol __stress`.
#[derive(clap::Args, Debug, Clone)]
pub struct StressArgs {
    /// Threads burning CPU.
    #[arg(long, default_value_t = 0)]
    pub cpu_workers: u32,
    /// Share of each worker's time spent burning, in percent.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub load: u8,
    /// Bytes of memory to allocate and keep resident.
    #[arg(long, default_value_t = 0)]
    pub memory_bytes: u64,
    /// Exit after this many seconds, whatever happens.
    #[arg(long)]
    pub seconds: u64,
    /// Free text that makes this child recognisable in /proc/PID/cmdline.
    #[arg(long)]
    pub tag: Option<String>,
}

/// Runs the stress until its time is up; the exit code is 0, or 1 when the memory could not be
/// allocated.
pub fn run(args: &StressArgs) -> u8 {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    for _ in 0..args.cpu_workers {
        let load = u32::from(args.load);
        std::thread::spawn(move || burn(deadline, load));
    }
    let held = match hold_memory(args.memory_bytes) {
        Ok(memory) => memory,
        Err(e) => {
            eprintln!("patrol __stress: {e}");
            return 1;
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(left);
    drop(held);
    0
}

/// Spins for `load`% of every [`SLICE`] and sleeps for the rest, until `deadline`.
fn burn(deadline: Instant, load: u32) {
    let busy = SLICE * load / 100;
    let mut x: u64 = 1;
    loop {
        let slice_start = Instant::now();
        if slice_start >= deadline {
            return;
        }
        while slice_start.elapsed() < busy {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        let idle = SLICE.saturating_sub(slice_start.elapsed());
        if !idle.is_zero() {
            std::thread::sleep(idle);
        }
    }
}

/// Allocates `bytes` and writes to every page, so they are resident (an untouched allocation
/// costs no memory at all).
fn hold_memory(bytes: u64) -> Result<Vec<u8>, String> {
    let len = usize::try_from(bytes).map_err(|_| format!("{bytes} bytes is too large"))?;
    let mut memory: Vec<u8> = Vec::new();
    memory
        .try_reserve_exact(len)
        .map_err(|e| format!("cannot allocate {bytes} bytes: {e}"))?;
    memory.resize(len, 0);
    for i in (0..len).step_by(PAGE) {
        memory[i] = 1;
    }
    std::hint::black_box(&memory);
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_memory_is_written_on_every_page() {
        let memory = hold_memory(3 * PAGE as u64 + 10).unwrap();
        assert_eq!(memory.len(), 3 * PAGE + 10);
        assert_eq!(memory.iter().filter(|b| **b == 1).count(), 4);
        assert!(hold_memory(u64::MAX).is_err());
    }

    #[test]
    fn a_worker_stops_at_its_deadline() {
        let started = Instant::now();
        burn(started + Duration::from_millis(250), 50);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
