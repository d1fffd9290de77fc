//! One SVG line plot per curve: axes with round-number ticks, the points joined and marked,
//! title and axis labels. Hand-written (≈ 100 lines) rather than `plotters`: its SVG backend
//! brings font handling to lay out text, and the output here must be byte-for-byte the same
//! for the same points (the plots are committed next to `BENCHMARKS.md`, and tested).

use std::fmt::Write as _;

use super::model::Curve;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
/// Plot area inside the margins (left, top, right, bottom edges).
const LEFT: f64 = 80.0;
const TOP: f64 = 50.0;
const RIGHT: f64 = 610.0;
const BOTTOM: f64 = 340.0;
const TICKS: usize = 5;
const LINE_COLOUR: &str = "#1f77b4";
const FONT: &str = "font-family=\"sans-serif\" font-size=\"12\"";

/// The SVG document for `curve`.
pub fn plot(curve: &Curve) -> String {
    let xs = axis(curve.points.iter().map(|p| p[0]));
    let ys = axis(curve.points.iter().map(|p| p[1]));
    let x_at = |x: f64| LEFT + (x - xs.low) / (xs.high - xs.low) * (RIGHT - LEFT);
    let y_at = |y: f64| BOTTOM - (y - ys.low) / (ys.high - ys.low) * (BOTTOM - TOP);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-family=\"sans-serif\" \
         font-size=\"16\">{}</text>",
        WIDTH / 2.0,
        escape(&curve.title)
    );
    for tick in xs.ticks() {
        let x = x_at(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" {FONT}>{}</text>",
            BOTTOM + 18.0,
            xs.label(tick)
        );
    }
    for tick in ys.ticks() {
        let y = y_at(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" {FONT}>{}</text>",
            LEFT - 8.0,
            y + 4.0,
            ys.label(tick)
        );
    }
    let _ = writeln!(
        svg,
        "<path d=\"M{LEFT} {TOP}V{BOTTOM}H{RIGHT}\" fill=\"none\" stroke=\"black\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" {FONT}>{}</text>",
        f64::midpoint(LEFT, RIGHT),
        HEIGHT - 20.0,
        escape(&curve.x_label)
    );
    let _ = writeln!(
        svg,
        "<text transform=\"translate(20 {}) rotate(-90)\" text-anchor=\"middle\" {FONT}>{}</text>",
        f64::midpoint(TOP, BOTTOM),
        escape(&curve.y_label)
    );
    let line: Vec<String> = curve
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x_at(p[0]), y_at(p[1])))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{LINE_COLOUR}\" stroke-width=\"2\"/>",
        line.join(" ")
    );
    for point in &line {
        let (x, y) = point.split_once(',').unwrap_or_default();
        let _ = writeln!(
            svg,
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"3.5\" fill=\"{LINE_COLOUR}\"/>"
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// An axis range widened to round numbers, with its tick step.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    low: f64,
    high: f64,
    step: f64,
}

impl Axis {
    /// A tick's label with as many decimals as the step needs (`80`, `0.2`, `0.05`).
    fn label(self, tick: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        format!("{tick:.decimals$}")
    }

    fn ticks(self) -> impl Iterator<Item = f64> {
        let count = ((self.high - self.low) / self.step).round() as usize;
        (0..=count).map(move |i| self.low + i as f64 * self.step)
    }
}

/// The range of `values` and zero (costs are read against zero), widened to multiples of a
/// 1-2-5 step giving about [`TICKS`] intervals.
fn axis(values: impl Iterator<Item = f64>) -> Axis {
    let (low, high) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = if high > low { high - low } else { 1.0 };
    let rough = span / TICKS as f64;
    let power = 10_f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power);
    Axis {
        low: (low / step).floor() * step,
        high: ((high / step).ceil() * step).max(low + step),
        step,
    }
}

/// Text content escaped for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: Vec<[f64; 2]>) -> Curve {
        Curve {
            name: "cost-vs-headers".into(),
            title: "Cost <per> request & header".into(),
            x_label: "extra headers".into(),
            y_label: "µs per request".into(),
            points,
        }
    }

    #[test]
    fn axes_reach_zero_and_round_numbers() {
        let costs = axis([3.0, 47.0].into_iter());
        assert_eq!((costs.low, costs.high, costs.step), (0.0, 50.0, 10.0));
        assert_eq!(
            costs.ticks().collect::<Vec<_>>(),
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
        );
        assert_eq!(costs.label(40.0), "40");
        let negative = axis([-0.3, 0.9].into_iter());
        assert_eq!((negative.low, negative.high), (-0.5, 1.0));
        let flat = axis([0.0, 0.0].into_iter());
        assert_eq!((flat.low, flat.high, flat.step), (0.0, 0.2, 0.2));
        assert_eq!(flat.label(0.2), "0.2");
    }

    #[test]
    fn plots_every_point_on_the_scale_deterministically() {
        let svg = plot(&curve(vec![[0.0, 10.0], [32.0, 20.0], [64.0, 40.0]]));
        assert_eq!(
            svg,
            plot(&curve(vec![[0.0, 10.0], [32.0, 20.0], [64.0, 40.0]]))
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        // x 0..80 over 80..610, y 0..40 over 340..50.
        assert!(
            svg.contains("points=\"80.0,267.5 292.0,195.0 504.0,50.0\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("Cost &lt;per&gt; request &amp; header"));
        assert!(svg.contains(">µs per request</text>"));
        assert!(!svg.contains("NaN"));
    }
}
