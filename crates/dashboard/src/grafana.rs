//! The Grafana dashboard of a fleet (`heaplens grafana-dashboard`), over the series of
//! [`crate::metrics`]: the fleet's memory, the growing types by instance and process, the
//! sampler's cost, and links from every series to its instance's heaplens page.
//!
//! It is Grafana's JSON model (`schemaVersion` 39, the panels `stat`, `timeseries` and `table`,
//! a Prometheus data source chosen when imported), built here so that the command, the tests and
//! the README show one dashboard. The links go to `http://<instance><path>/`: the `instance`
//! label Prometheus gives a target is the app's own address when it scrapes the middleware's
//! `<path>/metrics`; with `heaplens metrics` in between, relabel `instance` to the app's address
//! (or follow the link to the exporter, which says where the metrics come from). `path` is a
//! variable of the dashboard (`/_heaplens` by default).

use serde_json::{json, Value};

/// The dashboard's `uid`, so that importing it again replaces it.
pub const UID: &str = "heaplens-fleet";

/// The filter every query carries: the chosen jobs and instances.
const SELECTED: &str = r#"job=~"$job",instance=~"$instance""#;

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// The link from a series (or a table row) to its instance's heaplens page.
fn page_links(table: bool) -> Value {
    let (instance, ty) = if table {
        (
            "${__data.fields.instance}",
            "${__data.fields.type:percentencode}",
        )
    } else {
        (
            "${__field.labels.instance}",
            "${__field.labels.type:percentencode}",
        )
    };
    let mut links = vec![json!({
        "title": "heaplens page of this instance",
        "url": format!("http://{instance}${{path}}/"),
        "targetBlank": true,
    })];
    if table {
        links.push(json!({
            "title": "this type on the instance's heaplens page",
            "url": format!("http://{instance}${{path}}/#/type/{ty}"),
            "targetBlank": true,
        }));
    }
    Value::Array(links)
}

fn target(expr: &str, legend: &str, instant: bool) -> Value {
    let mut t = json!({
        "refId": "A",
        "datasource": datasource(),
        "expr": expr,
        "legendFormat": legend,
        "range": !instant,
        "instant": instant,
    });
    if instant {
        t["format"] = json!("table");
    }
    t
}

struct Panel<'a> {
    kind: &'a str,
    title: &'a str,
    description: &'a str,
    unit: &'a str,
    grid: (u32, u32, u32, u32),
    expr: String,
    legend: &'a str,
    links: bool,
}

fn panel(id: u32, p: Panel<'_>) -> Value {
    let (x, y, w, h) = p.grid;
    let table = p.kind == "table";
    let instant = p.kind != "timeseries";
    let mut defaults = json!({"unit": p.unit});
    if p.links {
        defaults["links"] = page_links(table);
    }
    let options = match p.kind {
        "timeseries" => json!({
            "legend": {"displayMode": "table", "placement": "right", "showLegend": true,
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }),
        "table" => json!({"showHeader": true,
                          "sortBy": [{"displayName": "Value", "desc": true}]}),
        _ => json!({"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": "value", "graphMode": "none"}),
    };
    json!({
        "id": id,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": datasource(),
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(&p.expr, p.legend, instant)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    })
}

fn query_variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "type": "query",
        "name": name,
        "label": label,
        "datasource": datasource(),
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query,
        "refresh": 2,
        "multi": true,
        "includeAll": true,
        "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "sort": 1,
    })
}

/// The dashboard, as Grafana imports it (Dashboards > New > Import).
pub fn dashboard() -> Value {
    let s = SELECTED;
    let panels = vec![
        Panel {
            kind: "stat",
            title: "Processes with steadily growing types",
            description: "Processes whose own sampler sees at least one type grow steadily \
                          (heaplens_steady_growth_types > 0).",
            unit: "short",
            grid: (0, 0, 6, 4),
            expr: format!("count(heaplens_steady_growth_types{{{s}}} > 0) or vector(0)"),
            legend: "",
            links: false,
        },
        Panel {
            kind: "stat",
            title: "heaplens alerts firing",
            description: "Alerts of `heaplens prometheus-rules` firing now.",
            unit: "short",
            grid: (6, 0, 6, 4),
            expr: format!(
                "count(ALERTS{{alertname=~\"HeapLens.*\",alertstate=\"firing\",{s}}}) \
                 or vector(0)"
            ),
            legend: "",
            links: false,
        },
        Panel {
            kind: "stat",
            title: "Fleet RSS",
            description: "Resident memory of every process heaplens samples.",
            unit: "bytes",
            grid: (12, 0, 6, 4),
            expr: format!("sum(heaplens_rss_bytes{{{s}}})"),
            legend: "",
            links: false,
        },
        Panel {
            kind: "stat",
            title: "Sampler cost (highest)",
            description: "The largest share of a core a process's heaplens sampler took over \
                          its window.",
            unit: "percentunit",
            grid: (18, 0, 6, 4),
            expr: format!("max(heaplens_sampler_overhead_ratio{{{s}}})"),
            legend: "",
            links: false,
        },
        Panel {
            kind: "timeseries",
            title: "RSS by process",
            description: "Resident set size of each process; click a line for its heaplens \
                          page.",
            unit: "bytes",
            grid: (0, 4, 12, 9),
            expr: format!("heaplens_rss_bytes{{{s}}}"),
            legend: "{{instance}} pid {{pid}}",
            links: true,
        },
        Panel {
            kind: "timeseries",
            title: "Python object bytes by process",
            description: "Shallow bytes of the Python objects each census counted. Flat while \
                          RSS grows: the growth is in native memory.",
            unit: "bytes",
            grid: (12, 4, 12, 9),
            expr: format!("heaplens_python_object_bytes{{{s}}}"),
            legend: "{{instance}} pid {{pid}}",
            links: true,
        },
        Panel {
            kind: "table",
            title: "Growing types, by instance and process",
            description: "Objects a second each type gained over $window (deriv), fastest \
                          first; click a row for the type on its instance's heaplens page.",
            unit: "short",
            grid: (0, 13, 24, 9),
            expr: format!("topk(25, deriv(heaplens_type_objects{{{s}}}[$window]) > 0)"),
            legend: "",
            links: true,
        },
        Panel {
            kind: "timeseries",
            title: "Objects of the fastest growing types",
            description: "The 10 types that gained the most objects a second over $window, \
                          by instance and process.",
            unit: "short",
            grid: (0, 22, 24, 10),
            expr: format!(
                "heaplens_type_objects{{{s}}} and topk(10, \
                 deriv(heaplens_type_objects{{{s}}}[$window]))"
            ),
            legend: "{{type}} on {{instance}} pid {{pid}}",
            links: true,
        },
        Panel {
            kind: "timeseries",
            title: "Sampler cost by process",
            description: "The share of one core each sampler took (census time over the \
                          window's time), and how long its newest census took.",
            unit: "percentunit",
            grid: (0, 32, 24, 7),
            expr: format!("heaplens_sampler_overhead_ratio{{{s}}}"),
            legend: "{{instance}} pid {{pid}}",
            links: false,
        },
    ];
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, p)| panel(i as u32 + 1, p))
        .collect();
    json!({
        "uid": UID,
        "title": "heaplens: fleet memory",
        "description": "Memory of every process heaplens samples, the types that grow, and \
                        links to each instance's heaplens page. Made by `heaplens \
                        grafana-dashboard`.",
        "tags": ["heaplens", "memory", "leaks"],
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "links": [{
            "title": "heaplens",
            "type": "link",
            "url": "https://pypi.org/project/heaplens/",
            "icon": "doc",
            "tooltip": "What the series mean: heaplens' README, Prometheus and Grafana",
            "tags": [],
            "asDropdown": false,
            "targetBlank": true,
            "includeVars": false,
            "keepTime": false,
        }],
        "annotations": {"list": [{
            "name": "heaplens alerts",
            "datasource": datasource(),
            "enable": true,
            "iconColor": "red",
            "expr": "ALERTS{alertname=~\"HeapLens.*\",alertstate=\"firing\"}",
            "titleFormat": "{{alertname}}",
            "textFormat": "{{type}} on {{instance}} pid {{pid}}",
        }]},
        "templating": {"list": [
            {
                "type": "datasource",
                "name": "datasource",
                "label": "Prometheus",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
            },
            query_variable("job", "Job", "label_values(heaplens_rss_bytes, job)"),
            query_variable(
                "instance",
                "Instance",
                "label_values(heaplens_rss_bytes{job=~\"$job\"}, instance)",
            ),
            {
                "type": "custom",
                "name": "window",
                "label": "Growth over",
                "query": "30m,1h,2h,6h,1d",
                "current": {"selected": true, "text": "2h", "value": "2h"},
                "options": [],
                "hide": 0,
            },
            {
                "type": "textbox",
                "name": "path",
                "label": "heaplens path",
                "query": "/_heaplens",
                "current": {"text": "/_heaplens", "value": "/_heaplens"},
                "hide": 0,
            },
        ]},
        "panels": panels,
    })
}

/// [`dashboard`] as indented JSON text.
pub fn dashboard_json() -> String {
    let mut text = serde_json::to_string_pretty(&dashboard()).expect("a JSON value serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_queries_heaplens_series_of_the_chosen_instances() {
        let d = dashboard();
        let panels = d["panels"].as_array().unwrap();
        assert!(panels.len() >= 8);
        for p in panels {
            let expr = p["targets"][0]["expr"].as_str().unwrap();
            assert!(
                expr.contains("heaplens_") || expr.contains("ALERTS"),
                "{expr}"
            );
            assert!(expr.contains(SELECTED), "{expr}");
            let (x, w) = (
                p["gridPos"]["x"].as_u64().unwrap(),
                p["gridPos"]["w"].as_u64().unwrap(),
            );
            assert!(x + w <= 24, "{}", p["title"]);
        }
        let ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(ids, unique);
    }

    #[test]
    fn series_link_to_their_instance_page() {
        let text = dashboard_json();
        assert!(text.contains("http://${__field.labels.instance}${path}/"));
        assert!(text.contains("http://${__data.fields.instance}${path}/#/type/"));
        assert!(serde_json::from_str::<Value>(&text).is_ok());
    }
}
