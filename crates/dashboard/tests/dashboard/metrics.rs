//! The Prometheus text format: parsed back, labels escaped and bounded.

use crate::support::*;
use std::sync::Mutex;

/// One sample line of the exposition format: name, labels, value.
type Metric = (String, Vec<(String, String)>, f64);

/// Parses `name{labels} value` lines, checking comment lines and label escapes.
fn parse_metrics(body: &str) -> Vec<Metric> {
    let mut out = Vec::new();
    for line in body.lines() {
        if line.starts_with('#') {
            let parts: Vec<&str> = line.splitn(4, ' ').collect();
            assert!(matches!(parts[1], "HELP" | "TYPE"), "{line}");
            continue;
        }
        let (name, rest) = line.split_once('{').expect(line);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let (labels, value) = rest.rsplit_once("} ").expect(line);
        let mut parsed = Vec::new();
        let mut chars = labels.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().expect(line) {
                    '\\' => match chars.next().expect(line) {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => panic!("bad escape \\{c} in {line}"),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            parsed.push((key, value));
            if chars.peek() == Some(&',') {
                chars.next();
            }
        }
        out.push((name.to_string(), parsed, value.parse().expect(line)));
    }
    out
}

#[test]
fn metrics_follow_the_exposition_format_with_bounded_labels() {
    let live = Live {
        snaps: Mutex::new(Vec::new()),
        history: Mutex::new(history(40)),
    };
    let r = get(&live, "/metrics");
    assert_eq!(
        r.header_value("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = text(&r);
    let lines = parse_metrics(&body);
    let value = |n: &str| lines.iter().find(|l| l.0 == n).map(|l| l.2 as u64);
    assert_eq!(value("heaplens_rss_bytes"), Some(123 << 20));
    assert_eq!(value("heaplens_peak_rss_bytes"), Some(150 << 20));
    assert_eq!(value("heaplens_python_objects"), Some(1190));
    assert_eq!(value("heaplens_python_object_bytes"), Some(20 << 16));
    let types: Vec<_> = lines
        .iter()
        .filter(|l| l.0 == "heaplens_type_objects")
        .collect();
    // 42 types: the 20 most numerous over the window, the 10 biggest, the steady growers.
    assert!((20..=40).contains(&types.len()), "{} series", types.len());
    assert_eq!(types[0].1[1], ("type".to_string(), SCRIPT.to_string()));
    assert_eq!(types[0].2, 290.0);
    for l in &lines {
        assert_eq!(l.1[0], ("pid".to_string(), "9".to_string()));
    }
    // Offline: the snapshot's census, and the quoting of hostile names.
    let lines = parse_metrics(&text(&get(&file_source(), "/metrics")));
    assert!(lines.iter().all(|l| l.0 != "heaplens_rss_bytes"));
    let names: Vec<&str> = lines
        .iter()
        .filter(|l| l.0 == "heaplens_type_objects")
        .map(|l| l.1[1].1.as_str())
        .collect();
    let control = heaplens_dashboard::api::visible(&format!("app.{CONTROL}"), false).into_owned();
    assert!(names.contains(&control.as_str()));
    let h = history(2);
    let live = Live {
        snaps: Mutex::new(Vec::new()),
        history: Mutex::new(h),
    };
    let lines = parse_metrics(&text(&get(&live, "/metrics")));
    let quoted = lines
        .iter()
        .find(|l| l.1.len() == 2 && l.1[1].1.contains('"'));
    // The newline is shown escaped and the backslash doubled (as everywhere: escapes are
    // unambiguous), and that text quoted for the exposition format.
    assert_eq!(quoted.unwrap().1[1].1, "with\"quote\\\\and\\nnewline");
}
