//! The throughput chart: one bar per configuration (median records/s), with the 300,000
//! records/s target and 70% of the consume-only ceiling marked, as a PNG next to the tables.
//!
//! Text is drawn with DejaVu Sans from the system (Debian `fonts-dejavu-core`), so the chart needs no
//! font library.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::{by_config, median_sample, thousands, Sample, CEILING};

/// Where Debian installs the font the chart uses.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The end-to-end target of the benchmark issue, records/s.
pub const TARGET: f64 = 300_000.0;

/// Makes the charts' font, DejaVu Sans, plotters' "sans-serif" (once per process).
pub fn register_font() -> anyhow::Result<()> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let font = std::fs::read(FONT).map_err(|e| {
                format!("reading the chart's font {FONT} (Debian package fonts-dejavu-core): {e}")
            })?;
            plotters::style::register_font(
                "sans-serif",
                FontStyle::Normal,
                Box::leak(font.into_boxed_slice()),
            )
            .map_err(|_| format!("{FONT} is not a usable font"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Draws the median records/s of every configuration in `samples` to `path` (PNG).
pub fn throughput_chart(path: &Path, title: &str, samples: &[Sample]) -> anyhow::Result<()> {
    register_font()?;
    let bars: Vec<(&str, f64)> = by_config(samples)
        .iter()
        .map(|(name, list)| (*name, median_sample(list).records_per_second()))
        .collect();
    let ceiling = bars
        .iter()
        .find(|(name, _)| *name == CEILING)
        .map(|(_, v)| *v);
    let top = bars.iter().map(|(_, v)| *v).fold(TARGET, f64::max) * 1.12;

    let height = 140 + 60 * bars.len() as u32;
    let root = BitMapBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..top, 0.0..bars.len() as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .disable_y_axis()
        .x_desc("records/s, median of the runs")
        .x_label_formatter(&|v| thousands(*v))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (name, value)) in bars.iter().enumerate() {
        let y = (bars.len() - 1 - i) as f64;
        let colour = if *name == CEILING {
            RGBColor(150, 150, 150)
        } else {
            RGBColor(40, 110, 180)
        };
        chart.draw_series([Rectangle::new(
            [(0.0, y + 0.1), (*value, y + 0.55)],
            colour.filled(),
        )])?;
        chart.draw_series([Text::new(
            format!("{name}: {}", thousands(*value)),
            (top * 0.005, y + 0.62),
            ("sans-serif", 16).into_font().color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Bottom,
                ),
            ),
        )])?;
    }
    let mut marks = vec![(TARGET, "target 300,000".to_string(), RED)];
    if let Some(c) = ceiling {
        marks.push((0.7 * c, "70% of consume-only".to_string(), MAGENTA));
    }
    for (i, (x, label, colour)) in marks.into_iter().enumerate() {
        chart.draw_series([PathElement::new(
            [(x, 0.0), (x, bars.len() as f64)],
            colour.stroke_width(2),
        )])?;
        let y = bars.len() as f64 - 0.05 - 0.3 * i as f64;
        chart.draw_series([Text::new(
            format!(" {label}"),
            (x, y),
            ("sans-serif", 13).into_font().color(&colour),
        )])?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
