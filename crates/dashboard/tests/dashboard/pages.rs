//! What the pages say: overview, type, object, diff; hostile strings escaped everywhere.

use crate::support::*;
use heaplens_core::history::{History, Sample};
use heaplens_dashboard::Source;
use std::sync::Mutex;

#[test]
fn hostile_strings_are_escaped_in_every_json_answer() {
    let live = Live::new();
    post_snapshot(&live);
    let s = file_source();
    let targets = [
        "/api/info".to_string(),
        "/api/overview".to_string(),
        format!("/api/types/{}", enc(&format!("app.{SCRIPT}"))),
        format!("/api/types/{}", enc(&format!("{IMG}.Img"))),
        format!("/api/types/{}", enc(&format!("app.{CONTROL}"))),
        "/api/objects/1".to_string(),
        "/api/objects/2".to_string(),
        "/api/objects/3".to_string(),
        "/api/objects/5".to_string(),
        "/api/objects/6".to_string(),
        "/api/diff".to_string(),
    ];
    for source in [&live as &dyn Source, &s] {
        for t in &targets {
            let r = get(source, t);
            if r.status == 404 && t == "/api/diff" && source.previous_snapshot().is_none() {
                continue; // a file source has nothing to compare
            }
            assert_eq!(r.status, 200, "{t}: {}", text(&r));
            let body = text(&r);
            for raw in ['<', '>', '&', '\u{0}', '\u{1}', '\n', '\u{1b}', '\u{2028}'] {
                assert!(!body.contains(raw), "{t}: raw {raw:?} in {body:.300}");
            }
            json(&r);
        }
    }
    // The escapes decode to the very names, so nothing is lost but the markup's power.
    let v = json(&get(&live, "/api/overview"));
    let names = type_names(&v);
    assert!(
        names.contains(&format!("app.{SCRIPT}").as_str()),
        "{names:?}"
    );
    let control = heaplens_dashboard::api::visible(&format!("app.{CONTROL}"), false).into_owned();
    assert!(names.contains(&control.as_str()));
    assert!(names.contains(&format!("{IMG}.Img").as_str()));
    let long = names.iter().find(|n| n.starts_with("app.Long")).unwrap();
    assert!(long.chars().count() <= 301 && long.ends_with('…'));
}

#[test]
fn without_a_steady_grower_the_overview_does_not_say_its_types_are_by_steady_growth() {
    // Growth in bursts with a fall back between them: the chart says "No type grew steadily",
    // and the table under it must not be headed "by steady growth".
    let live = Live::new();
    let mut h = History::new(100);
    for i in 0..20u64 {
        let s = Sample {
            taken_ms: 1_700_000_000_000 + i * 5_000,
            pid: 7,
            ..Sample::default()
        };
        h.push_values(s, vec![(SCRIPT, if i % 5 == 4 { 300 } else { 100 }, 5600)]);
    }
    *live.history.lock().unwrap() = h;
    let v = json(&get(&live, "/api/overview"));
    assert_eq!(v["sorted_by"], "growth per hour (none grew steadily)");
    assert_eq!(v["types"][0]["trend"]["steady"], false);
    let chart = text(&get(&live, "/api/chart.svg"));
    assert!(chart.contains("No type grew steadily"), "{chart}");
}

#[test]
fn the_first_screen_says_whether_it_leaks_what_and_where_from() {
    let live = Live::new();
    let v = json(&get(&live, "/api/overview"));
    let verdict = &v["verdict"];
    assert_eq!(verdict["state"], "leaking");
    let text = verdict["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("Leaking: {SCRIPT} grew steadily over 20 samples")),
        "{text}"
    );
    assert_eq!(verdict["top"]["type"], SCRIPT);
    assert_eq!(verdict["top"]["count"], 290);
    // The endpoint whose traced requests leave that type behind.
    assert_eq!(
        verdict["top"]["endpoint"]["name"],
        format!("POST /orders/{IMG}")
    );
    assert_eq!(verdict["top"]["endpoint"]["per_request"], 100.0);

    // Growth in bursts that fell back: not a leak.
    let mut h = History::new(100);
    for i in 0..20u64 {
        let s = Sample {
            taken_ms: 1_700_000_000_000 + i * 5_000,
            ..Sample::default()
        };
        h.push_values(s, vec![(SCRIPT, if i % 5 == 4 { 300 } else { 100 }, 5600)]);
    }
    *live.history.lock().unwrap() = h;
    let v = json(&get(&live, "/api/overview"));
    assert_eq!(v["verdict"]["state"], "not_leaking");
    assert!(v["verdict"]["top"].is_null());

    // Two samples cannot tell.
    let mut h = History::new(100);
    for i in 0..2u64 {
        let s = Sample {
            taken_ms: 1_700_000_000_000 + i * 5_000,
            ..Sample::default()
        };
        h.push_values(s, vec![(SCRIPT, 100 + 100 * i, 5600)]);
    }
    *live.history.lock().unwrap() = h;
    let v = json(&get(&live, "/api/overview"));
    assert_eq!(v["verdict"]["state"], "too_few_samples");

    // A snapshot file has no history, hence no verdict (its report says what it holds).
    assert!(json(&get(&file_source(), "/api/overview"))["verdict"].is_null());
}

#[test]
fn the_overview_puts_steady_growers_first_and_points_out_native_memory() {
    let live = Live::new();
    let v = json(&get(&live, "/api/overview"));
    assert_eq!(v["sorted_by"], "steady growth");
    let first = &v["types"][0];
    assert_eq!(first["name"], SCRIPT);
    let trend = &first["trend"];
    assert_eq!(trend["steady"], true);
    assert_eq!(
        (trend["first"].as_u64(), trend["last"].as_u64()),
        (Some(100), Some(290))
    );
    assert_eq!(trend["min"], 100);
    assert_eq!(trend["max"], 290);
    assert!(trend["per_hour"].as_f64().unwrap() > 0.0);
    assert_eq!(trend["sparkline"].as_array().unwrap().len(), 20);
    let memory = &v["memory"];
    assert_eq!(memory["samples"], 20);
    assert_eq!(memory["peak_rss"], 150u64 << 20);
    assert!(
        memory["native"].is_object(),
        "RSS grew 19 MiB, Python bytes barely"
    );
    assert_eq!(memory["series"]["rss"].as_array().unwrap().len(), 20);
    let v = json(&get(&file_source(), "/api/overview"));
    assert_eq!(v["sorted_by"], "count");
    assert!(v["memory"].is_null());
    assert_eq!(v["types"][0]["name"], format!("app.{SCRIPT}"));
    assert_eq!(v["types"][0]["count"], 120);
    let r = get(&live, "/api/chart.svg");
    assert_eq!(r.status, 200);
    assert!(!text(&r).contains("<script"));
}

#[test]
fn type_pages_list_instances_by_retained_size_in_pages() {
    let s = file_source();
    let name = enc(&format!("app.{SCRIPT}"));
    let v = json(&get(&s, &format!("/api/types/{name}?per_page=50")));
    assert_eq!(
        (v["count"].as_u64(), v["pages"].as_u64()),
        (Some(120), Some(3))
    );
    let sizes: Vec<u64> = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["retained_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 50);
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(sizes[0], 56 + 119);
    let first = &v["instances"][0];
    assert!(first["address"].as_str().unwrap().starts_with("0x"));
    assert!(first["repr"].is_null(), "offline there is no repr");
    // Before the 120 rows, what holds them: one group, the list under the module's key.
    let held_by = v["held_by"].as_array().unwrap();
    assert_eq!(held_by.len(), 1, "{held_by:?}");
    assert_eq!(held_by[0]["count"], 120);
    assert_eq!(held_by[0]["holder"]["id"], 2);
    let path = held_by[0]["path"].as_str().unwrap();
    assert!(path.starts_with("module app -> .__dict__["), "{path}");
    assert_eq!(
        held_by[0]["sample_label"].as_str().unwrap().chars().next(),
        Some('[')
    );
    let v = json(&get(&s, &format!("/api/types/{name}?page=3&per_page=50")));
    assert_eq!(v["instances"].as_array().unwrap().len(), 20);
    let v = json(&get(&s, &format!("/api/types/{name}?page=9")));
    assert_eq!(v["instances"].as_array().unwrap().len(), 0);
    let live = Live::new();
    let v = json(&get(&live, &format!("/api/types/{}", enc(SCRIPT))));
    assert_eq!(v["history"].as_array().unwrap().len(), 20);
    let v = json(&get(&live, &format!("/api/types/{name}")));
    assert!(v["instances"][0]["repr"].as_str().unwrap().starts_with(IMG));
}

#[test]
fn object_pages_show_labelled_referrers_referents_and_the_retaining_path() {
    let s = file_source();
    // Node 2 is the list: held by the dict under the hostile key, holding the objects.
    let v = json(&get(&s, "/api/objects/2"));
    assert_eq!(v["type"], "list");
    let referrers = v["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0]["id"], 1);
    let via = referrers[0]["via"].as_str().unwrap();
    assert!(via.starts_with("['") && via.ends_with("']"), "{via}");
    assert_eq!(v["referents"].as_array().unwrap().len(), 120);
    assert_eq!(v["referents"][3]["edge"], "[3]");
    assert_eq!(v["retained_count"], 121);
    let path = &v["path"];
    assert!(path["text"]
        .as_str()
        .unwrap()
        .starts_with("module app -> .__dict__["));
    let steps = path["steps"].as_array().unwrap();
    let ids: Vec<u64> = steps.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    assert_eq!(steps[0]["via"], "sys.modules['app']");
    assert_eq!(steps[1]["via"], "via its .__dict__");
    // Attributes read like Dozer's.
    let v = json(&get(&s, "/api/objects/3"));
    let via = v["referrers"][0]["via"].as_str().unwrap();
    assert_eq!(via, format!("via its .{SCRIPT}0 attribute"));
    // The root has no path; its picture is a 404, any object's a picture.
    let root = s.snapshot().unwrap().graph().root();
    assert!(json(&get(&s, &format!("/api/objects/{root}")))["path"].is_null());
    assert_eq!(
        get(&s, &format!("/api/objects/{root}/path.svg")).status,
        404
    );
    let r = get(&s, "/api/objects/40/path.svg");
    assert_eq!(r.status, 200);
    let svg = text(&r);
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"));
    assert!(!svg.contains("<script") && !svg.contains("<img"));
}

#[test]
fn the_report_names_the_biggest_retainers_with_their_paths() {
    let s = file_source();
    let v = json(&get(&s, "/api/report?limit=3"));
    let retainers = v["retainers"].as_array().unwrap();
    assert!(!retainers.is_empty() && retainers.len() <= 3, "{v}");
    // The list holding every order retains the most; its path goes through the module.
    let first = &retainers[0];
    assert_eq!(first["type"], "list");
    assert_eq!(first["id"], 2);
    let path = first["path"].as_str().unwrap();
    assert!(path.starts_with("module app -> .__dict__"), "{path}");
    assert!(first["retained_size"].as_u64().unwrap() > first["size"].as_u64().unwrap());
    assert_eq!(v["garbage"]["objects"], 0);
    assert_eq!(get(&s, "/api/report?limit=0").status, 400);
    let post = heaplens_dashboard::Request::new("POST", "/api/report").header("X-HeapLens", "1");
    assert_eq!(
        heaplens_dashboard::handle(&Default::default(), &s, &post).status,
        405
    );
}

#[test]
fn a_new_snapshot_is_compared_with_the_previous_one() {
    let live = Live::new();
    assert_eq!(get(&live, "/api/diff").status, 404);
    let r = post_snapshot(&live);
    let v = json(&r);
    assert_eq!(v["taken"], true);
    assert_eq!(v["diff"]["new_objects"], 200);
    let d = json(&get(&live, "/api/diff"));
    assert_eq!(d["new_objects"], 200);
    let suspect = &d["suspects"][0];
    assert_eq!(suspect["entry_type"], format!("app.{SCRIPT}"));
    assert_eq!(suspect["entries"], 200);
    assert!(suspect["holder_path"]
        .as_str()
        .unwrap()
        .contains("module app"));
    assert!(d["text"].as_str().unwrap().contains("Leak suspects"));
    assert_eq!(json(&get(&live, "/api/info"))["has_previous"], true);
}

#[test]
fn endpoints_that_leave_objects_behind_come_first() {
    let v = json(&get(&file_source(), "/api/endpoints"));
    assert_eq!(v["tracing"], false);
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 0);
    let r = get(&Live::new(), "/api/endpoints");
    assert!(!text(&r).contains('<'));
    let v = json(&r);
    assert_eq!(v["tracing"], true);
    let e = &v["endpoints"][0];
    assert_eq!(e["endpoint"], format!("POST /orders/{IMG}"));
    // 10 traced, 5 of them beside other requests: the figures are the 5 clean ones'.
    assert_eq!(
        (e["traced"].as_u64(), e["measured"].as_u64()),
        (Some(10), Some(5))
    );
    assert_eq!(e["objects_per_request"], 100.0);
    assert_eq!(e["approximate"], false);
    assert_eq!(e["types"][0]["name"], SCRIPT);
    assert_eq!(e["types"][0]["per_request"], 100.0);
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 3);
    // An endpoint with too few traces to tell a leak from a warm-up comes last.
    let last = &v["endpoints"][2];
    assert_eq!(last["endpoint"], "GET /zero-traced");
    assert_eq!(last["few_traces"], true);
    assert_eq!(e["few_traces"], false);
}

#[test]
fn info_says_whether_the_process_is_one_worker_of_several() {
    let live = json(&get(&Live::new(), "/api/info"));
    assert_eq!(
        (live["pid"].as_u64(), live["multiprocess"].as_bool()),
        (Some(9), Some(true))
    );
    let file = json(&get(&file_source(), "/api/info"));
    assert_eq!(file["multiprocess"], false);
}

#[test]
fn a_type_name_with_a_slash_is_found_through_the_query() {
    use heaplens_core::graph::{GraphBuilder, NodeFlags};
    let mut b = GraphBuilder::new();
    let t = b.intern_type("app/v2", "Order/Line", "Order/Line");
    let n = b.add_node(0x1000);
    b.set_node(n, t, 56, NodeFlags::GC_TRACKED);
    b.end_node();
    let source = heaplens_dashboard::FileSource::from_graph(b.finish().unwrap(), "slash.hlsnap");
    let name = json(&get(&source, "/api/overview"))["types"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(name.contains('/'), "{name}");
    let v = json(&get(&source, &format!("/api/types?name={}", enc(&name))));
    assert_eq!(v["count"], 1);
    // In the path, a server has decoded %2F before the dashboard sees it: not found there.
    let path = format!("/api/types/{}", name);
    assert_eq!(get(&source, &path).status, 404);
}

#[test]
fn names_are_shown_with_invisible_characters_escaped_and_still_open() {
    let s = file_source();
    let shown = heaplens_dashboard::api::visible(&format!("app.{CONTROL}"), false).into_owned();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    let v = json(&get(&s, "/api/overview?limit=10000"));
    let names = type_names(&v);
    assert!(names.contains(&shown.as_str()), "{names:?}");
    // The name as shown opens the type page, as the raw name does.
    for name in [shown.clone(), format!("app.{CONTROL}")] {
        let v = json(&get(&s, &format!("/api/types?name={}", enc(&name))));
        assert_eq!(v["name"], shown.as_str());
        assert!(v["count"].as_u64().unwrap() > 0);
    }
    // So does a long name as shown, cut.
    let long = names.iter().find(|n| n.starts_with("app.Long")).unwrap();
    let v = json(&get(&s, &format!("/api/types?name={}", enc(long))));
    assert!(v["count"].as_u64().unwrap() > 0);
}

/// The type names of an overview answer, as shown.
fn type_names(overview: &serde_json::Value) -> Vec<&str> {
    overview["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[test]
fn before_any_snapshot_a_type_page_says_to_take_one() {
    let live = Live {
        snaps: Mutex::new(Vec::new()),
        history: Mutex::new(history(3)),
    };
    for name in ["app.NotSampledYet", "dict"] {
        let r = get(&live, &format!("/api/types?name={name}"));
        assert_eq!(r.status, 200);
        let v = json(&r);
        assert_eq!(v["instances"].as_array().unwrap().len(), 0);
        assert!(v["note"].as_str().unwrap().contains("take one"), "{v}");
    }
}

/// Two classes: `evil<U+202E>txt.exe` (5 objects) and one literally named `evil\u202etxt.exe`
/// (8 objects), plus `Order` and `Order<U+200B>`.
fn impersonation_graph() -> heaplens_core::graph::Graph {
    use heaplens_core::graph::{GraphBuilder, NodeFlags};
    use heaplens_core::label::Label;
    let mut b = GraphBuilder::new();
    let t_module = b.intern_type("builtins", "module", "module");
    let t_list = b.intern_type("builtins", "list", "list");
    let kinds = [
        (
            b.intern_type("app", "evil\u{202e}txt.exe", "evil\u{202e}txt.exe"),
            5,
        ),
        (
            b.intern_type("app", "evil\\u202etxt.exe", "evil\\u202etxt.exe"),
            8,
        ),
        (b.intern_type("app", "Order", "Order"), 3),
        (b.intern_type("app", "Order\u{200b}", "Order\u{200b}"), 4),
    ];
    let module = b.add_node(0x100);
    let list = b.add_node(0x200);
    let mut objects = Vec::new();
    for (t, n) in kinds {
        for _ in 0..n {
            objects.push((b.add_node(0x1000 + objects.len() as u64 * 64), t));
        }
    }
    b.set_node(
        module,
        t_module,
        72,
        NodeFlags::GC_TRACKED | NodeFlags::MODULE,
    );
    b.set_name(module, "app");
    let k = b.strings_mut().intern("ALL");
    b.push_edge(list, Label::attr(k));
    b.end_node();
    b.set_node(list, t_list, 72, NodeFlags::GC_TRACKED);
    for (i, (o, _)) in objects.iter().enumerate() {
        b.push_edge(*o, Label::index(i));
    }
    b.end_node();
    for (o, t) in &objects {
        b.set_node(*o, *t, 48, NodeFlags::GC_TRACKED);
        b.end_node();
    }
    b.add_root_node();
    let r = b.strings_mut().intern("sys.modules['app']");
    b.push_edge(module, Label::root(r));
    b.end_node();
    b.finish().unwrap()
}

#[test]
fn no_name_can_pass_for_another_nor_hide_an_invisible_character() {
    let s = heaplens_dashboard::FileSource::from_graph(impersonation_graph(), "heap.hlsnap");
    let overview = json(&get(&s, "/api/overview"));
    let shown: Vec<String> = overview["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    // Each name shown once, each differently: the escapes cannot be confused with the text.
    for name in [
        "app.evil\\u202etxt.exe",
        "app.evil\\\\u202etxt.exe",
        "app.Order",
        "app.Order\\u200b",
    ] {
        assert_eq!(
            shown.iter().filter(|n| *n == name).count(),
            1,
            "{name} in {shown:?}"
        );
    }
    // Each shown name opens its own type.
    for (name, count) in [
        ("app.evil\\u202etxt.exe", 5),
        ("app.evil\\\\u202etxt.exe", 8),
        ("app.Order", 3),
        ("app.Order\\u200b", 4),
    ] {
        let page = json(&get(&s, &format!("/api/types?name={}", enc(name))));
        assert_eq!(page["count"], count, "{name}: {page}");
        assert_eq!(page["name"], name);
    }
}
