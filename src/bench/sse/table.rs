//! The `bench sse` table: each side's figures, then node divided by patrol.

use std::fmt::Write;

use super::SideReport;

/// What the run was, for the header.
pub struct Context {
    pub subscribers: u32,
    pub shards: Vec<u32>,
    pub rate: f64,
    pub seconds: u64,
    pub cpus: usize,
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
}

/// Derived figures of one side.
struct Figures {
    held: u64,
    kib_per_subscriber: Option<f64>,
    events_per_sec: f64,
    cpu_ms_per_1k_events: Option<f64>,
}

fn figures(r: &SideReport) -> Figures {
    let per = |num: f64, den: f64| (den > 0.0).then(|| num / den);
    Figures {
        held: r.held,
        kib_per_subscriber: per(r.rss_bytes as f64 / 1024.0, r.held as f64),
        events_per_sec: per(r.events as f64, r.seconds).unwrap_or(0.0),
        cpu_ms_per_1k_events: per(r.cpu_secs * 1000.0, r.events as f64 / 1000.0),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn render(ctx: &Context, patrol: &SideReport, node: Option<&SideReport>) -> String {
    let mut out = String::new();
    let shards: Vec<String> = ctx.shards.iter().map(u32::to_string).collect();
    let _ = writeln!(
        out,
        "patrol bench sse: {} subscribers per side in {} process(es) ({}), {} event(s)/s to each, {}s window",
        ctx.subscribers,
        ctx.shards.len(),
        shards.join(" + "),
        ctx.rate,
        ctx.seconds
    );
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let _ = writeln!(
        out,
        "offered: {:.0} events/s in all; machine: {} CPUs, load average {} before, {} after\n\
         servers and each side in their own processes; RSS = growth since before the first subscriber\n",
        f64::from(ctx.subscribers) * ctx.rate,
        ctx.cpus,
        load(ctx.load_before),
        load(ctx.load_after)
    );
    let _ = writeln!(
        out,
        "{:<8} {:>8} {:>12} {:>14} {:>12} {:>15} {:>11}",
        "side", "held", "RSS growth", "KiB/subscr.", "events/s", "CPU ms/1k ev.", "connect s"
    );
    let mut row = |name: &str, r: &SideReport| {
        let f = figures(r);
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>9.1} MiB {:>14} {:>12.0} {:>15} {:>11.1}",
            name,
            f.held,
            r.rss_bytes as f64 / (1024.0 * 1024.0),
            opt(f.kib_per_subscriber, 1),
            f.events_per_sec,
            opt(f.cpu_ms_per_1k_events, 2),
            r.connect_secs
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "         {name} error: {e}");
        }
    };
    row("patrol", patrol);
    if let Some(node) = node {
        row("node", node);
        let (p, n) = (figures(patrol), figures(node));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "\nnode / patrol: memory per subscriber {}, events/s {}, CPU per event {}, held {}",
            ratio(n.kib_per_subscriber, p.kib_per_subscriber),
            ratio(Some(n.events_per_sec), Some(p.events_per_sec)),
            ratio(n.cpu_ms_per_1k_events, p.cpu_ms_per_1k_events),
            ratio(Some(n.held as f64), Some(p.held as f64)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_both_sides_and_their_ratios() {
        let ctx = Context {
            subscribers: 100,
            shards: vec![100],
            rate: 5.0,
            seconds: 10,
            cpus: 2,
            load_before: Some(0.5),
            load_after: None,
        };
        let side = |rss_kib: u64, events, cpu| SideReport {
            held: 100,
            rss_bytes: rss_kib * 1024,
            events,
            seconds: 10.0,
            cpu_secs: cpu,
            ..SideReport::default()
        };
        let text = render(&ctx, &side(2000, 5000, 1.0), Some(&side(8000, 5000, 4.0)));
        assert!(text.contains("patrol") && text.contains("node"), "{text}");
        assert!(text.contains("memory per subscriber 4.00x"), "{text}");
        assert!(text.contains("events/s 1.00x"), "{text}");
        assert!(text.contains("CPU per event 4.00x"), "{text}");
        assert!(text.contains("20.0"), "KiB per subscriber: {text}");
    }
}
