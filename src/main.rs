//! `cloudtap` binary: parses the command line and runs the library's pipeline.
//! Exit status: 0 success, 1 input could not be read, 2 usage or configuration error.

use clap::Parser;
use cloudtap::baseline::{Baseline, BaselineOpts};
use cloudtap::capture::live::Input;
use cloudtap::cli::{Cli, Command, SigAction, StateAction};
use cloudtap::correlate::Stage;
use cloudtap::detect::{self, Field, Ruleset};
use cloudtap::output::fanout::Fanout;
use cloudtap::pipeline::{self, RunReport};
use cloudtap::signals::Control;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

fn load_rules(dir: Option<&Path>) -> Result<Ruleset, String> {
    match dir {
        Some(d) => detect::load_dir(d),
        None => detect::load_bundled(),
    }
    .map_err(|e| format!("invalid signatures:\n{e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Signatures { action }) => signatures_cmd(action),
        Some(Command::State { action }) => state_cmd(action),
        None => {
            cloudtap::capture::explain_sigbus();
            run(&cli)
        }
    }
}

fn signatures_cmd(action: &SigAction) -> ExitCode {
    match action {
        SigAction::Check { dir } => match load_rules(dir.as_deref()) {
            Ok(rs) => {
                let mut packs: Vec<(String, String, usize)> = Vec::new();
                for s in rs.signatures() {
                    match packs.iter_mut().find(|p| p.0 == s.pack.name) {
                        Some(p) => p.2 += 1,
                        None => packs.push((s.pack.name.clone(), s.pack.version.clone(), 1)),
                    }
                }
                for (name, ver, n) in &packs {
                    println!("{name} {ver}: {n} signatures");
                }
                for w in rs.load_warnings().iter().chain(rs.warnings()) {
                    println!("{w}");
                }
                let z = rs.sizes();
                if !rs.load_warnings().is_empty() {
                    println!(
                        "{} special-purpose ranges dropped from provider lists (warnings: documentation, private, loopback, multicast ... addresses name no web service)",
                        rs.load_warnings().len()
                    );
                }
                if !rs.warnings().is_empty() {
                    println!(
                        "{} conflicting entries (warnings: the set loads; the lower id alerts)",
                        rs.warnings().len()
                    );
                }
                println!(
                    "OK: {} signatures in {} packs: {} domain entries, {} substrings, {} regexes, {} address ranges, {} exceptions",
                    z.signatures,
                    packs.len(),
                    z.domains,
                    z.substrings,
                    z.regexes,
                    z.cidrs,
                    z.exceptions
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        SigAction::List { signatures } => match load_rules(signatures.as_deref()) {
            Ok(rs) => {
                for s in rs.signatures() {
                    println!(
                        "{}\t{}\t{}\tseverity {}\t{}",
                        s.id, s.pack.name, s.pack.version, s.severity, s.msg
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        SigAction::Test { value, signatures } => {
            let rs = match load_rules(signatures.as_deref()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let mut found = 0;
            let mut hits = Vec::new();
            if let Ok(ip) = value.parse::<IpAddr>() {
                rs.match_ip(ip, &mut hits);
                for h in hits.drain(..) {
                    found += 1;
                    let action = match h.sig.action {
                        detect::Action::Alert => "alert",
                        detect::Action::Label => "label",
                    };
                    let label = h
                        .label
                        .map(|l| format!(" [{} {} {}]", l.provider, l.service, l.region))
                        .unwrap_or_default();
                    println!(
                        "ip.dst\t{}\t{}\t{action}\t{}{label}\t{}",
                        h.sig.id,
                        h.sig.pack.name,
                        h.pattern(),
                        h.sig.msg
                    );
                }
            }
            for field in Field::ALL {
                if field == Field::IpDst {
                    continue;
                }
                rs.match_str(field, value, &mut hits);
                for h in hits.drain(..) {
                    found += 1;
                    let action = match h.sig.action {
                        detect::Action::Alert => "alert",
                        detect::Action::Label => "label",
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        field.name(),
                        h.sig.id,
                        h.sig.pack.name,
                        action,
                        h.pattern(),
                        h.sig.msg
                    );
                }
            }
            if found > 0 {
                ExitCode::SUCCESS
            } else {
                println!("no signature matches {value:?}");
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: &Cli) -> ExitCode {
    // Errors come first: a configuration that cannot be settled is reported before
    // anything is opened or written.
    let cfg = match cloudtap::config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cloudtap: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.live.is_none() && cfg.run.files.is_empty() {
        eprintln!(
            "cloudtap: nothing to read: give capture files with -r FILE or an interface with -i IFACE (see --help)"
        );
        return ExitCode::from(2);
    }
    // A missing or unreadable capture is one clear line before anything else. (Pipes are
    // only looked at: opening a FIFO here would take its one writer's data away.)
    for f in &cfg.run.files {
        let check = std::fs::metadata(f).and_then(|m| {
            if m.is_file() {
                std::fs::File::open(f).map(drop)
            } else {
                Ok(())
            }
        });
        if let Err(e) = check {
            eprintln!("cloudtap: cannot open {}: {e}", f.display());
            return ExitCode::from(1);
        }
        // A regular file that is not a capture (empty, wrong magic) is also said first.
        if std::fs::metadata(f).is_ok_and(|m| m.is_file()) {
            if let Err(
                e @ (cloudtap::capture::CaptureError::Empty { .. }
                | cloudtap::capture::CaptureError::BadMagic { .. }),
            ) = cloudtap::capture::FileReader::open(f)
            {
                eprintln!("cloudtap: error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // The capture is opened before anything is written, so that an interface that cannot be
    // opened is the first and only line; and before privileges are dropped.
    let input = match &cfg.live {
        Some(l) => match cloudtap::capture::live::open(l, cfg.run.threads) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("cloudtap: {e}");
                return ExitCode::from(1);
            }
        },
        None => Input::Files(cfg.run.files.clone()),
    };
    let rules = match load_rules(cfg.signatures.as_deref()) {
        Ok(r) => Arc::new(arc_swap::ArcSwap::from_pointee(r)),
        Err(e) => {
            eprintln!("cloudtap: {e}");
            return ExitCode::from(2);
        }
    };
    let (stage, log) = match Stage::new(cfg.stage.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cloudtap: {e}");
            return ExitCode::from(2);
        }
    };
    for l in log {
        eprintln!("cloudtap: {l}");
    }
    let live = input.is_live();
    // Sinks open (files, spools) before privileges are dropped; network sinks connect in
    // their own threads, with backoff, and spool until they can.
    let sink = match Fanout::start(cfg.outputs.clone(), cfg.fanout.clone()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cloudtap: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(user) = &cfg.user {
        if let Err(e) = cloudtap::privs::switch_user(user) {
            eprintln!("cloudtap: {e}");
            return ExitCode::from(1);
        }
    } else if live && cloudtap::privs::is_root() {
        eprintln!(
            "cloudtap: warning: capturing as root; give --user NAME to run unprivileged once the capture is open"
        );
    } else if live {
        // A service's ambient capabilities were for opening the capture only.
        if let Err(e) = cloudtap::privs::drop_capabilities() {
            eprintln!("cloudtap: warning: {e}");
        }
    }
    let ctl = Control::default();
    let on_hup = {
        let (dir, rules) = (cfg.signatures.clone(), rules.clone());
        move || {
            match &dir {
            Some(d) => {
                detect::reload::reload(d, &rules, "SIGHUP");
            }
            None => eprintln!(
                "cloudtap: SIGHUP: the bundled signatures are built in (give --signatures DIR to reload); reopening the EVE file"
            ),
        }
        }
    };
    // The stop sequence is: drain the capture and worker queues (--shutdown-timeout), then
    // let the sinks deliver (--flush-timeout), then spool what is left. The watchdog allows
    // the sum and one second for the spool write, so it never cuts the sinks' flush short and
    // leaves in memory what the spool would have kept.
    let grace = cfg.shutdown_timeout + cfg.fanout.flush_timeout + std::time::Duration::from_secs(1);
    if let Err(e) = cloudtap::signals::install(&ctl, on_hup, grace) {
        eprintln!("cloudtap: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    if let (Some(dir), true) = (&cfg.signatures, cfg.watch) {
        if let Err(e) = detect::reload::spawn_watch(dir.clone(), rules.clone()) {
            eprintln!("cloudtap: cannot start watching {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let threads = match &input {
        #[cfg(target_os = "linux")]
        Input::Rings(r) => r.len(),
        _ => cfg.run.threads,
    };
    if let (Some(l), false) = (&cfg.live, cfg.quiet) {
        eprintln!(
            "cloudtap: capturing on {} with {} ({threads} thread{}{})",
            l.interfaces.join(", "),
            l.backend.name(),
            if threads == 1 { "" } else { "s" },
            if l.backend == cloudtap::capture::live::Backend::AfPacket {
                ", one ring per thread and interface, fanout by flow hash"
            } else {
                ""
            }
        );
    }
    let report = pipeline::run_input(&cfg.run, rules, sink, stage, input, &ctl);
    if let Some(sig) = ctl.stop_signal() {
        eprintln!(
            "cloudtap: stopped by {sig}: queues drained, {} events written",
            report.events_written
        );
    }
    if !cfg.quiet {
        summary(&report, threads);
    }
    for l in &report.stage_log {
        eprintln!("cloudtap: {l}");
    }
    for t in &report.truncated_files {
        eprintln!("cloudtap: warning: {t}");
    }
    for f in &report.files_failed {
        eprintln!("cloudtap: error: {f}");
    }
    if let Some(e) = &report.write_error {
        eprintln!("cloudtap: error: {e}");
        return ExitCode::from(1);
    }
    if report.files_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn state_cmd(action: &StateAction) -> ExitCode {
    let dir = match action {
        StateAction::Export { state } | StateAction::Import { state, .. } => state,
    };
    let (mut b, rep) = match Baseline::open(dir, BaselineOpts::default()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cloudtap: --state {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    if let Some((p, why)) = &rep.set_aside {
        eprintln!(
            "cloudtap: the baseline in {} was unreadable ({why}); it was set aside as {}",
            dir.display(),
            p.display()
        );
    }
    match action {
        StateAction::Export { .. } => {
            let v = b.export_json();
            let mut out = std::io::stdout().lock();
            let written = serde_json::to_writer_pretty(&mut out, &v)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out));
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cloudtap: cannot write the export: {e}");
                    ExitCode::from(1)
                }
            }
        }
        StateAction::Import { file, .. } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
            } else {
                std::fs::read_to_string(file)
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("cloudtap: cannot read {}: {e}", file.display());
                    return ExitCode::from(1);
                }
            };
            let v: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("cloudtap: {}: not JSON: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = b.import_json(&v) {
                eprintln!("cloudtap: {}: {e}", file.display());
                return ExitCode::from(2);
            }
            match b.save() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cloudtap: cannot save the baseline: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn summary(r: &RunReport, threads: usize) {
    let c = &r.counters;
    let secs = r.elapsed_s.max(1e-9);
    let mut s = String::new();
    use std::fmt::Write as _;
    let (kept, buckets) = r.shard_split;
    let _ = match threads {
        _ if r.live && r.shard_split.1 == 0 && threads > 1 => writeln!(
            s,
            "cloudtap summary ({threads} threads, each reading its own AF_PACKET ring)"
        ),
        1 => writeln!(s, "cloudtap summary (1 thread: the reader does all the packet work)"),
        _ => writeln!(
            s,
            "cloudtap summary ({threads} threads: the reader and {} worker{}; the reader kept {kept} of {buckets} flow buckets)",
            threads - 1,
            if threads == 2 { "" } else { "s" }
        ),
    };
    let _ = writeln!(
        s,
        "  packets {}  bytes {}  flows {}  elapsed {:.3} s  {:.3} Gbit/s  {:.3} Mpkt/s",
        c.packets,
        c.bytes,
        c.flows,
        r.elapsed_s,
        c.bytes as f64 * 8.0 / secs / 1e9,
        c.packets as f64 / secs / 1e6
    );
    let _ = writeln!(
        s,
        "  decoded {}  tunnelled {}  not-ip {}  fragments {} (reassembled {})  bypassed packets {}",
        c.decoded, c.tunnelled, c.not_ip, c.fragments, c.reassembled, c.bypassed_packets
    );
    let _ = writeln!(
        s,
        "  records: dns {}  tls {}  http {}  quic {}   alerts {}  labels {}  events written {}",
        c.dns_records,
        c.tls_records,
        c.http_records,
        c.quic_records,
        c.alerts,
        c.labels,
        r.events_written
    );
    let _ = writeln!(
        s,
        "  capture: kernel packets {}  kernel drops {}  interface drops {}  ring freezes {}  queue drops {}  decode errors {}",
        if r.live { c.kernel_packets } else { c.packets },
        c.kernel_drops,
        c.kernel_ifdrops,
        c.ring_freezes,
        c.queue_drops,
        c.skips.total()
    );
    let _ = writeln!(
        s,
        "  flows evicted at cap {}  timed out {}  tcp gaps {}  out-of-order dropped {}",
        c.flows_evicted_cap, c.flows_timed_out, c.tcp_gaps, c.tcp_ooo_dropped
    );
    let g = &r.stage;
    let _ = writeln!(
        s,
        "  detection stage: observations {}  flow ends {}  alerts {}  repeats counted {}  context only {}  suppressed {}  thresholded {}  written early at cap {}",
        g.observations, g.flow_ends, g.alerts, g.repeats, g.context_only, g.suppressed, g.thresholded, g.open_flushed_early
    );
    let _ = writeln!(
        s,
        "  uploads: routine {}  context only {}   tables: upload keys evicted {}  burst hosts evicted {}  trackers reset {}  hidden-DNS tables reset {}",
        g.uploads_routine, g.uploads_context, g.upload_keys_evicted, g.burst_hosts_evicted, g.trackers_reset, g.hidden_dns_resets
    );
    if let Some(b) = &r.baseline {
        let _ = writeln!(s, "  {b}");
    }
    for k in &r.sinks {
        let _ = writeln!(
            s,
            "  sink {}: sent {}  spooled {}  replayed {}  dropped oldest {}  dropped newest {}  rejected {}  errors {}  reconnects {}  left in spool {}",
            k.name,
            k.sent,
            k.spooled,
            k.replayed,
            k.dropped_oldest,
            k.dropped_newest,
            k.rejected,
            k.errors,
            k.reconnects,
            k.spool_events
        );
    }
    let p = &r.perf;
    let (t, l, d) = (
        p.pkt_ns.quantiles(),
        p.alert_latency_us.quantiles(),
        p.queue_depth.quantiles(),
    );
    let _ = writeln!(
        s,
        "  packet time ns (1 in {} packets): p50 {}  p99 {}  p99.9 {}  max {}",
        cloudtap::stats::PKT_TIME_SAMPLE,
        t.p50,
        t.p99,
        t.p99_9,
        t.max
    );
    let _ = writeln!(
        s,
        "  capture-to-alert latency us ({} alerts): p50 {}  p99 {}  p99.9 {}  max {}",
        l.count, l.p50, l.p99, l.p99_9, l.max
    );
    let _ = writeln!(
        s,
        "  worker queues: depth p50 {}  p99 {}  max {} of {} batches  reader waits {}  drops {}",
        d.p50, d.p99, d.max, p.queue_capacity, p.reader_waits, p.drops
    );
    if !c.alerts_by_sig.is_empty() {
        let _ = writeln!(s, "  alerts by signature:");
        for (id, (msg, n)) in &c.alerts_by_sig {
            let _ = writeln!(s, "    {n:>6}  {id}  {msg}");
        }
    }
    let skips = c.skips.sorted();
    if !skips.is_empty() {
        let _ = writeln!(s, "  skipped (by reason):");
        for (k, v) in skips {
            let _ = writeln!(s, "    {v:>6}  {k}");
        }
    }
    eprint!("{s}");
}
