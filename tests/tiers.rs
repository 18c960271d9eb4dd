//! Issue 11, tiers: only endpoints that ordinary offices seldom use alert on their own. No
//! name on a public list of the 500 most popular sites (tests/data/top-sites-500.txt, the
//! npm package top-sites, MIT) may match an alert-tier signature, and every alert-tier
//! signature says why it alerts.

use cloudtap::detect::{self, Action, Field};

fn top_sites() -> Vec<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/top-sites-500.txt"),
    )
    .expect("top sites list");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn no_popular_site_alerts_by_itself() {
    let rs = detect::load_bundled().expect("bundled packs load");
    let sites = top_sites();
    assert_eq!(sites.len(), 500, "the list has 500 sites");
    let mut offenders = Vec::new();
    let mut labelled = 0;
    let mut hits = Vec::new();
    for site in &sites {
        let bare = site.strip_prefix("www.").unwrap_or(site);
        for name in [site.as_str(), bare] {
            for field in [Field::DnsQuery, Field::TlsSni, Field::HttpHost] {
                hits.clear();
                rs.match_str(field, name, &mut hits);
                for h in &hits {
                    match h.sig.action {
                        Action::Alert => offenders.push(format!(
                            "{name} ({}) -> {} {}",
                            field.name(),
                            h.sig.id,
                            h.sig.msg
                        )),
                        Action::Label => labelled += 1,
                    }
                }
            }
        }
    }
    offenders.sort();
    offenders.dedup();
    assert!(
        offenders.is_empty(),
        "{} popular names alert by themselves:\n{}",
        offenders.len(),
        offenders.join("\n")
    );
    // The context tier still knows these services (they label, they do not alert).
    assert!(
        labelled > 50,
        "only {labelled} context labels on the top 500"
    );
}

#[test]
fn the_tunnels_pastes_drops_and_bot_apis_still_alert() {
    let rs = detect::load_bundled().expect("bundled packs load");
    let mut hits = Vec::new();
    for name in [
        "quiet-river-1234.trycloudflare.com",
        "abcd1234.ngrok-free.app",
        "pastebin.com",
        "transfer.sh",
        "api.telegram.org",
        "webhook.site",
    ] {
        hits.clear();
        rs.match_str(Field::TlsSni, name, &mut hits);
        assert!(
            hits.iter().any(|h| h.sig.action == Action::Alert),
            "{name} does not alert: {:?}",
            hits.iter().map(|h| h.sig.id).collect::<Vec<_>>()
        );
    }
    // Big providers' storage is context: it alerts only with another signal.
    hits.clear();
    rs.match_str(Field::TlsSni, "mybucket.s3.amazonaws.com", &mut hits);
    assert!(!hits.is_empty(), "S3 is known");
    assert!(hits.iter().all(|h| h.sig.action == Action::Label));
}

#[test]
fn every_signature_has_a_tier_reason_and_category() {
    let rs = detect::load_bundled().expect("bundled packs load");
    let mut missing = Vec::new();
    for s in rs.signatures() {
        if s.service_category.is_none() {
            missing.push(format!("{} {}: no service_category", s.id, s.msg));
        }
        if s.action == Action::Alert && s.rationale.as_deref().is_none_or(str::is_empty) {
            missing.push(format!("{} {}: alerts without a rationale", s.id, s.msg));
        }
        if matches!(s.service_category.as_deref(), Some("script-fingerprint"))
            && s.confidence.is_none()
        {
            missing.push(format!(
                "{} {}: fingerprint without confidence",
                s.id, s.msg
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
