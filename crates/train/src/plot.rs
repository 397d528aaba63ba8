//! An SVG chart of the run: the training loss over steps and, when evaluations ran, the chosen
//! metric over steps. Plain SVG text, so it needs no font or graphics library.

use std::fmt::Write;

use crate::log::{EvalRecord, StepRecord};

const W: f64 = 720.0;
const PANEL_H: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;

/// One panel: a title, a series of (x, y) points and the axis labels.
struct Panel<'a> {
    title: String,
    y_label: &'a str,
    points: Vec<(f64, f64)>,
    colour: &'a str,
}

fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .collect()
}

fn panel(svg: &mut String, p: &Panel<'_>, y0: f64, x_max: f64) {
    let (plot_w, plot_h) = (W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let finite: Vec<(f64, f64)> = p
        .points
        .iter()
        .copied()
        .filter(|(_, y)| y.is_finite())
        .collect();
    let (mut lo, mut hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < 1e-12 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |v: f64| LEFT + plot_w * v / x_max.max(1.0);
    let y = |v: f64| y0 + TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        y0 + 22.0,
        escape(&p.title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##,
        y0 + TOP
    );
    for t in ticks(lo, hi, 4) {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" font-size="11" text-anchor="end">{t:.4}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y(t) + 4.0,
            yy = y(t)
        );
    }
    for t in ticks(0.0, x_max.max(1.0), 5) {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{:.0}</text>"#,
            x(t),
            y0 + PANEL_H - BOTTOM + 16.0,
            t
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">step</text><text x="16" y="{}" font-size="12" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        y0 + PANEL_H - 6.0,
        y0 + TOP + plot_h / 2.0,
        y0 + TOP + plot_h / 2.0,
        escape(p.y_label)
    );
    let path: Vec<String> = finite
        .iter()
        .map(|(a, b)| format!("{:.2},{:.2}", x(*a), y(*b)))
        .collect();
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        p.colour,
        path.join(" ")
    );
    for (a, b) in &finite {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="{}"/>"#,
            x(*a),
            y(*b),
            p.colour
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as an SVG document.
pub fn render(history: &[StepRecord], evals: &[EvalRecord], metric: &str, title: &str) -> String {
    let x_max = history
        .iter()
        .map(|r| r.step as f64)
        .chain(evals.iter().map(|e| e.step as f64))
        .fold(1.0, f64::max);
    let mut panels = vec![Panel {
        title: format!("{title}: training loss"),
        y_label: "loss",
        points: history.iter().map(|r| (r.step as f64, r.loss)).collect(),
        colour: "#1f77b4",
    }];
    let metric_points: Vec<(f64, f64)> = evals
        .iter()
        .filter_map(|e| Some((e.step as f64, *e.metrics.get(metric)?)))
        .collect();
    if !metric_points.is_empty() {
        panels.push(Panel {
            title: format!("{title}: {metric} on the evaluation split"),
            y_label: metric,
            points: metric_points,
            colour: "#d62728",
        });
    }
    let height = PANEL_H * panels.len() as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut svg, p, i as f64 * PANEL_H, x_max);
    }
    svg.push_str("</svg>\n");
    svg
}
