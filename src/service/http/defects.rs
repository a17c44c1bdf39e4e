//! The maintenance handover: confirmed defects as JSON, CSV, GeoJSON or a printable work order
//! (`GET /v1/defects`), filtered by track, km range, time, severity and state.

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::store::{DefectFilter, Inspection, LifecycleState, DEFECT_TYPES};

use super::errors::{ApiError, Resp};
use super::params::{blocking, query, time_param};
use super::views::rfc3339;
use crate::service::AppState;

/// Words people read for the catalogue's types.
pub fn type_label(t: &str) -> &'static str {
    match t {
        "missing_clip" => "missing clip",
        "fractured_clip" => "fractured clip",
        "deformed_clip" => "deformed clip",
        "displaced_clip" => "displaced clip",
        "inverted_clip" => "inverted clip",
        "missing_bolt" => "missing bolt",
        "loose_bolt" => "loose bolt",
        "foreign_object" => "foreign object",
        "cracked_sleeper" => "cracked sleeper",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------------------------
// The maintenance handover
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct DefectQuery {
    format: Option<String>,
    camera: Option<String>,
    track_id: Option<String>,
    min_position_m: Option<f64>,
    max_position_m: Option<f64>,
    since: Option<String>,
    until: Option<String>,
    severity: Option<String>,
    state: Option<String>,
    #[serde(rename = "type")]
    defect_type: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Csv,
    GeoJson,
    Html,
}

/// `format=` wins; else the `Accept` header (`text/csv`, `application/geo+json`); else JSON.
fn format_of(q: &Option<String>, req: &HttpRequest) -> Result<Format, ApiError> {
    match q.as_deref().filter(|s| !s.is_empty()) {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("geojson") => Ok(Format::GeoJson),
        Some("html") => Ok(Format::Html),
        Some(other) => Err(ApiError::bad_request(format!(
            "format: {other:?} (json, csv, geojson or html)"
        ))),
        None => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            Ok(if accept.contains("text/csv") {
                Format::Csv
            } else if accept.contains("application/geo+json") {
                Format::GeoJson
            } else {
                Format::Json
            })
        }
    }
}

/// Comma-separated values of a filter, each checked.
fn list_param<T>(
    name: &str,
    v: &Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    for part in v
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        out.push(
            parse(part)
                .ok_or_else(|| ApiError::bad_request(format!("{name}: {part:?} ({allowed})")))?,
        );
    }
    Ok(out)
}

fn finite(name: &str, v: Option<f64>) -> Result<Option<f64>, ApiError> {
    match v {
        Some(x) if !x.is_finite() => Err(ApiError::bad_request(format!(
            "{name}: not a finite number"
        ))),
        other => Ok(other),
    }
}

/// Kilometrage as maintenance crews write it: `12+408.6` for 12 408.6 m.
pub fn kilometrage(position_m: Option<f64>) -> Option<String> {
    let p = position_m.filter(|p| p.is_finite())?;
    let sign = if p < 0.0 { "-" } else { "" };
    let dm = (p.abs() * 10.0).round() as i64;
    Some(format!(
        "{sign}{}+{:03}.{}",
        dm / 10_000,
        (dm % 10_000) / 10,
        dm % 10
    ))
}

/// One confirmed defect as the handover lists it.
struct Row {
    id: i64,
    track_id: String,
    km: String,
    position_m: Option<f64>,
    rail_side: String,
    sleeper: Option<i64>,
    camera: String,
    time: String,
    defect_type: String,
    severity: String,
    state: String,
    state_by: String,
    state_at: String,
    note: String,
    reviewer: String,
    reviewed_at: String,
    image_url: Option<String>,
}

fn row(i: &Inspection, base: &str) -> Row {
    let r = i.review.as_ref();
    let d = r.map(|r| r.defect.clone()).unwrap_or_default();
    let l = r.and_then(|r| r.lifecycle.clone());
    Row {
        id: i.id,
        track_id: i.meta.track_id.clone().unwrap_or_default(),
        km: kilometrage(i.meta.position_m).unwrap_or_default(),
        position_m: i.meta.position_m,
        rail_side: d
            .rail_side
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        sleeper: d.sleeper,
        camera: i.meta.camera.clone(),
        time: rfc3339(i.meta.capture_ms.unwrap_or(i.meta.received_ms)),
        defect_type: d.defect_type.unwrap_or_default(),
        severity: d.severity.unwrap_or_default(),
        state: l
            .as_ref()
            .map(|l| l.state)
            .unwrap_or(LifecycleState::Open)
            .as_str()
            .to_string(),
        state_by: l.as_ref().map(|l| l.by.clone()).unwrap_or_default(),
        state_at: l.as_ref().map(|l| rfc3339(l.at_ms)).unwrap_or_default(),
        note: r.map(|r| r.note.clone()).unwrap_or_default(),
        reviewer: r.map(|r| r.reviewer.clone()).unwrap_or_default(),
        reviewed_at: r.map(|r| rfc3339(r.reviewed_ms)).unwrap_or_default(),
        image_url: i
            .has_image
            .then(|| format!("{base}/v1/inspections/{}/image", i.id)),
    }
}

fn opt(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        json!(s)
    }
}

fn row_json(r: &Row) -> Value {
    json!({
        "id": r.id,
        "track_id": opt(&r.track_id),
        "km": opt(&r.km),
        "position_m": r.position_m,
        "rail_side": opt(&r.rail_side),
        "sleeper": r.sleeper,
        "camera": r.camera,
        "time": r.time,
        "type": opt(&r.defect_type),
        "severity": opt(&r.severity),
        "state": r.state,
        "state_by": opt(&r.state_by),
        "state_at": opt(&r.state_at),
        "note": r.note,
        "reviewer": r.reviewer,
        "reviewed_at": opt(&r.reviewed_at),
        "image_url": r.image_url,
    })
}

const CSV_HEADER: [&str; 17] = [
    "id",
    "track_id",
    "km",
    "position_m",
    "rail_side",
    "sleeper",
    "camera",
    "time",
    "type",
    "severity",
    "state",
    "state_by",
    "state_at",
    "note",
    "reviewer",
    "reviewed_at",
    "image_url",
];

/// RFC 4180 field; text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR at
/// the start) is prefixed with `'`.
fn csv_field(s: &str, text: bool) -> String {
    let s = if text && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv(rows: &[Row]) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push_str("\r\n");
    for r in rows {
        let num = |v: Option<String>| v.unwrap_or_default();
        let fields = [
            r.id.to_string(),
            csv_field(&r.track_id, true),
            csv_field(&r.km, false),
            num(r.position_m.map(|p| p.to_string())),
            csv_field(&r.rail_side, true),
            num(r.sleeper.map(|s| s.to_string())),
            csv_field(&r.camera, true),
            csv_field(&r.time, false),
            csv_field(&r.defect_type, true),
            csv_field(&r.severity, true),
            csv_field(&r.state, true),
            csv_field(&r.state_by, true),
            csv_field(&r.state_at, false),
            csv_field(&r.note, true),
            csv_field(&r.reviewer, true),
            csv_field(&r.reviewed_at, false),
            csv_field(r.image_url.as_deref().unwrap_or(""), true),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// GeoJSON (RFC 7946) without coordinates: frames carry only a track id and a position along
/// it, so each feature has `geometry: null` and the linear reference in its properties
/// (`track_id`, `position_m`, `km`, plus `linear_ref` as `{route, measure_m}`).
fn geojson(rows: &[Row], truncated: bool) -> Value {
    json!({
        "type": "FeatureCollection",
        "features": rows.iter().map(|r| {
            let mut p = row_json(r);
            p["linear_ref"] = json!({"route": opt(&r.track_id), "measure_m": r.position_m});
            json!({"type": "Feature", "id": r.id, "geometry": null, "properties": p})
        }).collect::<Vec<_>>(),
        "truncated": truncated,
    })
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A printable work order: one table row per defect, in track order, with a column to sign.
fn work_order(rows: &[Row], filters: &str, truncated: bool) -> String {
    let now = rfc3339(chrono::Utc::now().timestamp_millis());
    let body: String = rows
        .iter()
        .map(|r| {
            let link = match &r.image_url {
                Some(u) => format!("<a href=\"{}\">image #{}</a>", esc(u), r.id),
                None => "–".into(),
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"km\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td class=\"sev sev-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"done\"></td></tr>",
                r.id,
                esc(&r.track_id),
                esc(if r.km.is_empty() { "–" } else { &r.km }),
                esc(&r.rail_side),
                r.sleeper.map(|s| s.to_string()).unwrap_or_default(),
                esc(&r.camera),
                esc(&r.time),
                esc(type_label_or_blank(&r.defect_type)),
                esc(&r.severity),
                esc(&r.severity),
                esc(&r.state),
                esc(&r.note),
                esc(&r.reviewer),
                link,
            )
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>railscope work order</title>
<style>
body {{ font: 12px/1.35 system-ui, sans-serif; margin: 16px; color: #111; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
p {{ margin: 2px 0 8px; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #555; padding: 3px 5px; text-align: left; vertical-align: top; }}
th {{ background: #e8e8e8; }}
td.km {{ white-space: nowrap; font-variant-numeric: tabular-nums; }}
td.done {{ min-width: 90px; }}
.sev-immediate {{ font-weight: bold; }}
.warn {{ color: #8a0000; font-weight: bold; }}
.sign {{ margin-top: 24px; display: flex; gap: 48px; }}
.sign span {{ border-top: 1px solid #111; padding-top: 2px; min-width: 220px; }}
@media print {{
  @page {{ size: A4 landscape; margin: 10mm; }}
  body {{ margin: 0; }}
  a {{ color: inherit; text-decoration: none; }}
  tr {{ break-inside: avoid; }}
  thead {{ display: table-header-group; }}
}}
</style></head>
<body>
<h1>Work order: confirmed fastener defects</h1>
<p>Generated {now} by railscope · {n} defect{s} · filters: {filters}</p>
{warn}
<table>
<thead><tr><th>#</th><th>Track</th><th>km</th><th>Rail</th><th>Sleeper</th><th>Camera</th><th>Time</th><th>Type</th><th>Severity</th><th>State</th><th>Note</th><th>Reviewer</th><th>Image</th><th>Done (sign)</th></tr></thead>
<tbody>
{body}
</tbody></table>
<div class="sign"><span>Issued by</span><span>Repaired by / date</span></div>
</body></html>
"#,
        n = rows.len(),
        s = if rows.len() == 1 { "" } else { "s" },
        filters = esc(filters),
        warn = if truncated {
            "<p class=\"warn\">The list was cut at the limit: narrow the filters for the whole list.</p>"
        } else {
            ""
        },
    )
}

fn type_label_or_blank(t: &str) -> &str {
    if t.is_empty() {
        "unclassified"
    } else {
        type_label(t)
    }
}

/// `GET /v1/defects`: confirmed defects in track order (track, position, id), filtered by
/// camera, track, position range, time (capture time, else arrival), severity, lifecycle state
/// and type; as JSON, CSV, GeoJSON or a printable work order.
pub async fn list_defects(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let q: DefectQuery = query(&req)?;
    let format = format_of(&q.format, &req)?;
    let severities = &state.config.review.severities;
    let filter = DefectFilter {
        camera: q.camera.clone().filter(|s| !s.is_empty()),
        track_id: q.track_id.clone().filter(|s| !s.is_empty()),
        min_position_m: finite("min_position_m", q.min_position_m)?,
        max_position_m: finite("max_position_m", q.max_position_m)?,
        since_ms: time_param("since", &q.since)?,
        until_ms: time_param("until", &q.until)?,
        severities: list_param(
            "severity",
            &q.severity,
            |s| severities.iter().find(|x| *x == s).cloned(),
            &severities.join(", "),
        )?,
        states: list_param(
            "state",
            &q.state,
            LifecycleState::parse,
            "open, repair_ordered, repaired",
        )?,
        defect_type: match q.defect_type.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(t) if DEFECT_TYPES.contains(&t) => Some(t.to_string()),
            Some(t) => {
                return Err(ApiError::bad_request(format!(
                    "type: {t:?} is not in the defect catalogue ({})",
                    DEFECT_TYPES.join(", ")
                )))
            }
        },
        limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
    };
    let limit = filter.limit;
    let described = describe(&q);
    let store = state.store.clone();
    let mut items = blocking(move || store.defects(&filter)).await?;
    let truncated = items.len() > limit;
    items.truncate(limit);
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    let rows: Vec<Row> = items.iter().map(|i| row(i, &base)).collect();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let truncated_header = (
        "X-Railscope-Truncated",
        if truncated { "true" } else { "false" },
    );
    Ok(match format {
        Format::Json => HttpResponse::Ok()
            .insert_header(truncated_header)
            .json(json!({
                "items": rows.iter().map(row_json).collect::<Vec<_>>(),
                "count": rows.len(),
                "truncated": truncated,
            })),
        Format::Csv => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(truncated_header)
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"railscope-defects-{stamp}.csv\""),
            ))
            .body(csv(&rows)),
        Format::GeoJson => HttpResponse::Ok()
            .content_type("application/geo+json")
            .insert_header(truncated_header)
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"railscope-defects-{stamp}.geojson\""),
            ))
            .body(geojson(&rows, truncated).to_string()),
        Format::Html => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(truncated_header)
            .body(work_order(&rows, &described, truncated)),
    })
}

/// The filters in words, for the work order's header.
fn describe(q: &DefectQuery) -> String {
    let mut parts = Vec::new();
    let mut add = |name: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().filter(|s| !s.is_empty()) {
            parts.push(format!("{name} {v}"));
        }
    };
    add("camera", &q.camera);
    add("track", &q.track_id);
    add("from", &q.since);
    add("until", &q.until);
    add("severity", &q.severity);
    add("state", &q.state);
    add("type", &q.defect_type);
    if let Some(km) = kilometrage(q.min_position_m) {
        parts.push(format!("from km {km}"));
    }
    if let Some(km) = kilometrage(q.max_position_m) {
        parts.push(format!("to km {km}"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kilometrage_reads_as_km_plus_metres() {
        assert_eq!(kilometrage(Some(12408.6)).as_deref(), Some("12+408.6"));
        assert_eq!(kilometrage(Some(1234.5)).as_deref(), Some("1+234.5"));
        assert_eq!(kilometrage(Some(5.0)).as_deref(), Some("0+005.0"));
        assert_eq!(kilometrage(Some(-40.25)).as_deref(), Some("-0+040.3"));
        assert_eq!(kilometrage(None), None);
        assert_eq!(kilometrage(Some(f64::NAN)), None);
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain", true), "plain");
        assert_eq!(csv_field("a,b", true), "\"a,b\"");
        assert_eq!(
            csv_field("say \"hi\"\nnext", true),
            "\"say \"\"hi\"\"\nnext\""
        );
        assert_eq!(
            csv_field("=HYPERLINK(\"x\")", true),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(csv_field("-0+040.3", false), "-0+040.3");
    }

    #[test]
    fn the_work_order_escapes_what_inspectors_typed() {
        let r = Row {
            id: 7,
            track_id: "L1".into(),
            km: "1+234.5".into(),
            position_m: Some(1234.5),
            rail_side: "left".into(),
            sleeper: Some(3),
            camera: "cam-01".into(),
            time: "t".into(),
            defect_type: "missing_clip".into(),
            severity: "immediate".into(),
            state: "open".into(),
            state_by: String::new(),
            state_at: String::new(),
            note: "<script>alert(1)</script>".into(),
            reviewer: "inspector".into(),
            reviewed_at: String::new(),
            image_url: Some("http://h/v1/inspections/7/image".into()),
        };
        let html = work_order(&[r], "none", false);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("missing clip") && html.contains("1+234.5"));
        assert!(html.contains("@media print"));
    }
}
