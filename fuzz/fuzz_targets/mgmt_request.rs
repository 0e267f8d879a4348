//! The switch's management protocol (`docs/mgmt.md`): any request line a
//! client may send is parsed without a panic, every error answer is one
//! line ending in a status (text) or one JSON object, and the answers
//! built from what a request may carry stay one status line per answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::mgmt::{self, Command};

fuzz_target!(|data: &[u8]| {
    let line = &data[..data.len().min(mgmt::MAX_LINE)];
    match mgmt::parse(line) {
        Ok(req) => {
            // Answers with what the request carried (paths, names) are
            // still framed: exactly one status line, and it is the last.
            let text = match &req.command {
                Command::CaptureStart { path, .. } => {
                    mgmt::capture_status(Some(path), req.json)
                }
                Command::PortAdd { spec, .. } => mgmt::lines(spec, req.json),
                Command::HostFwdAdd { rule } => mgmt::lines(rule, req.json),
                _ => mgmt::done(req.json),
            };
            check(&text, req.json);
        }
        Err((e, json)) => check(&mgmt::error(&e.to_string(), json), json),
    }
});

fn check(answer: &str, json: bool) {
    assert!(answer.ends_with('\n'));
    if json {
        assert_eq!(answer.matches('\n').count(), 1, "{answer:?}");
        let _ = mgmt::json_ok(answer);
        return;
    }
    let lines: Vec<&str> = answer.lines().collect();
    let statuses = lines.iter().filter(|l| mgmt::status_of(l).is_some()).count();
    assert_eq!(statuses, 1, "{answer:?}");
    assert!(mgmt::status_of(lines[lines.len() - 1]).is_some(), "{answer:?}");
}
