//! An SVG chart of the run, drawn with `plotters`: the training loss over steps and, when
//! evaluations ran, the chosen metric over steps (one panel each). The SVG backend writes text
//! as SVG `<text>`, so no font files are needed.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Result, TrainError};
use crate::log::{EvalRecord, StepRecord};

const WIDTH: u32 = 720;
const PANEL_HEIGHT: u32 = 260;
const LOSS_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const METRIC_COLOUR: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// One panel: a title, the y axis's name, a series of (step, value) points and its colour.
struct Panel<'a> {
    title: String,
    y_label: &'a str,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
}

/// The y range of `points` with a 5 % margin (a unit-wide range around a flat series).
fn y_range(points: &[(f64, f64)]) -> (f64, f64) {
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<'_>,
    x_max: f64,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (y_lo, y_hi) = y_range(&panel.points);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max + (x_max * 0.02).max(0.5), y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(panel.y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let style = ShapeStyle::from(&panel.colour).stroke_width(2);
    chart.draw_series(LineSeries::new(panel.points.iter().copied(), style))?;
    chart.draw_series(
        panel
            .points
            .iter()
            .map(|&p| Circle::new(p, 3, panel.colour.filled())),
    )?;
    Ok(())
}

/// The chart as an SVG document: the loss of every logged step, and `metric` of every
/// evaluation when there were any. Non-finite values are left out.
pub fn render(
    history: &[StepRecord],
    evals: &[EvalRecord],
    metric: &str,
    title: &str,
) -> Result<String> {
    let x_max = history
        .iter()
        .map(|r| r.step as f64)
        .chain(evals.iter().map(|e| e.step as f64))
        .fold(1.0, f64::max);
    let finite = |(x, y): (f64, f64)| y.is_finite().then_some((x, y));
    let mut panels = vec![Panel {
        title: format!("{title}: training loss"),
        y_label: "loss",
        points: history
            .iter()
            .filter_map(|r| finite((r.step as f64, r.loss)))
            .collect(),
        colour: LOSS_COLOUR,
    }];
    let metric_points: Vec<(f64, f64)> = evals
        .iter()
        .filter_map(|e| finite((e.step as f64, *e.metrics.get(metric)?)))
        .collect();
    if !metric_points.is_empty() {
        panels.push(Panel {
            title: format!("{title}: {metric} on the evaluation split"),
            y_label: metric,
            points: metric_points,
            colour: METRIC_COLOUR,
        });
    }
    let mut svg = String::new();
    let drawn = (|| {
        let size = (WIDTH, PANEL_HEIGHT * panels.len() as u32);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
            draw_panel(area, panel, x_max)?;
        }
        root.present()
    })();
    drawn.map_err(|e| TrainError::Plot(Box::new(e)))?;
    Ok(svg)
}
