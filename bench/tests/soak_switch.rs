//! `soak-switch` (`bench/src/bin/soak-switch.rs`, run for 30 minutes by
//! `scripts/soak-switch`) runs for a few seconds against the workspace's
//! `uml_switch` and leaves a table and a summary that parse: every CSV row
//! is a sample, the baseline first and the quiet sample last, the churn
//! really happened (clients, hostile requests, frames of the steady pair),
//! and the summary ends with the verdict. (A smoke test of the script's
//! driver, not the soak itself.)

use std::process::Command;
use std::time::Duration;

use uml_bench::soak::sample::{Sample, CSV_HEADER};
use uml_integration_tests::{run_with_timeout, workspace_bin};

#[test]
fn soak_switch_runs_and_its_table_parses() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_soak-switch"));
    cmd.arg("--switch")
        .arg(workspace_bin("uml_switch"))
        .arg("--out")
        .arg(out.path())
        .args(["--seconds", "6", "--interval", "0.5", "--warmup", "1"])
        .args([
            "--daemon-clients",
            "20",
            "--bess-clients",
            "5",
            "--vde-clients",
            "5",
        ])
        .args([
            "--flood-macs",
            "300",
            "--stalled",
            "2",
            "--rate",
            "500",
            "--quiet",
        ])
        // Six seconds are the switch's warm-up (its RSS still grows while
        // the first backlogs fill): the RSS check is the long run's; the
        // others (descriptors, ports, MACs, errors) are strict here too.
        .args(["--rss-tolerance", "1000"]);
    let run = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let summary = std::fs::read_to_string(out.path().join("summary.txt")).unwrap_or_default();
    let code = run.code;
    assert!(
        matches!(code, Some(0 | 1)),
        "soak-switch ended with {code:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout_str(),
        String::from_utf8_lossy(&run.stderr)
    );
    let csv = std::fs::read_to_string(out.path().join("soak.csv")).expect("soak.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let samples: Vec<Sample> = lines
        .map(|l| Sample::parse_csv(l).unwrap_or_else(|| panic!("bad row {l:?}")))
        .collect();
    assert!(samples.len() >= 5, "{csv}");
    assert_eq!(samples.first().map(|s| s.phase), Some("base"), "{csv}");
    assert_eq!(samples.last().map(|s| s.phase), Some("quiet"), "{csv}");
    assert!(samples.iter().any(|s| s.phase == "churn"), "{csv}");
    let last = &samples[samples.len() - 1];
    assert!(last.clients >= 20 && last.hostile > 0, "no churn: {csv}");
    assert!(last.steady_received > 0 && last.mac_entries >= 2, "{csv}");
    assert!(samples.iter().all(|s| s.rss_kib > 0 && s.fds > 0), "{csv}");
    assert!(
        summary.ends_with("verdict: PASS\n") || summary.ends_with("verdict: FAIL\n"),
        "{summary}"
    );
    assert_eq!(run.stdout_str(), summary);
    // The verdict passes for our switch (a fail says which check).
    assert!(
        summary.contains("ok   descriptors back to baseline"),
        "{summary}"
    );
    assert_eq!(
        code,
        Some(0),
        "{summary}\nstderr:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
