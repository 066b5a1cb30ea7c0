//! Plots as SVG and PNG with plotters. PNG text is rendered with ab_glyph from DejaVu Sans,
//! embedded by the `dejavu` crate: no system font is read and nothing is fetched.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::config::{rule_name, MempoolMode};
use crate::metrics::rolling_hhi;
use crate::sim::RunResult;
use veil_auction::PaymentRule;

const SIZE: (u32, u32) = (960, 540);

fn pe<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; registration fails only on a corrupt font.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// A named series of points.
pub type Series = (String, Vec<(f64, f64)>);

fn bounds(series: &[Series]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    (x0, x1, y0, y1 + 0.05 * (y1 - y0))
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    labels: (&str, &str),
    series: &[Series],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let (x0, x1, y0, y1) = bounds(series);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(pe)?;
    chart.configure_mesh().x_desc(labels.0).y_desc(labels.1).draw().map_err(pe)?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(pe)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(pe)?;
    root.present().map_err(pe)?;
    Ok(())
}

/// Grouped bars: one group per category, one bar per series in each group.
fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let groups = categories.len().max(1);
    let ymax = series.iter().flat_map(|s| s.1.iter()).fold(0.0f64, |a, b| a.max(*b)).max(1e-9);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(groups as f64 - 0.5), 0.0f64..ymax * 1.15)
        .map_err(pe)?;
    let cats = categories.to_vec();
    let fmt = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            cats.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&fmt)
        .y_desc(y_label)
        .draw()
        .map_err(pe)?;
    let k = series.len().max(1) as f64;
    let width = 0.8 / k;
    for (j, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let left = -0.4 + j as f64 * width;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x = i as f64 + left;
                Rectangle::new([(x, 0.0), (x + width * 0.95, *v)], color.filled())
            }))
            .map_err(pe)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(pe)?;
    root.present().map_err(pe)?;
    Ok(())
}

/// Writes `<stem>.svg` and `<stem>.png` of a line chart.
///
/// # Errors
/// On drawing or I/O failure.
pub fn lines(
    dir: &Path,
    stem: &str,
    title: &str,
    labels: (&str, &str),
    series: &[Series],
) -> anyhow::Result<()> {
    register_font();
    let svg = dir.join(format!("{stem}.svg"));
    draw_lines(SVGBackend::new(&svg, SIZE).into_drawing_area(), title, labels, series)?;
    let png = dir.join(format!("{stem}.png"));
    draw_lines(BitMapBackend::new(&png, SIZE).into_drawing_area(), title, labels, series)
}

/// Writes `<stem>.svg` and `<stem>.png` of a grouped bar chart.
///
/// # Errors
/// On drawing or I/O failure.
pub fn bars(
    dir: &Path,
    stem: &str,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    register_font();
    let svg = dir.join(format!("{stem}.svg"));
    draw_bars(SVGBackend::new(&svg, SIZE).into_drawing_area(), title, y_label, categories, series)?;
    let png = dir.join(format!("{stem}.png"));
    draw_bars(
        BitMapBackend::new(&png, SIZE).into_drawing_area(),
        title,
        y_label,
        categories,
        series,
    )
}

fn find<'a>(
    results: &'a [RunResult],
    mode: MempoolMode,
    rule: PaymentRule,
    adversaries: &str,
) -> Option<&'a RunResult> {
    results.iter().find(|r| {
        r.spec.mode == mode && r.spec.rule == rule && r.spec.adversaries.label() == adversaries
    })
}

fn cumulative(r: &RunResult, f: impl Fn(&crate::metrics::SlotRecord) -> f64) -> Vec<(f64, f64)> {
    let mut acc = 0.0;
    r.records
        .iter()
        .map(|s| {
            acc += f(s);
            (s.slot as f64, acc)
        })
        .collect()
}

/// The standard figures of a run matrix; returns the stems written.
///
/// # Errors
/// On drawing or I/O failure.
pub fn standard_figures(dir: &Path, results: &[RunResult]) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    let modes = [MempoolMode::Plaintext, MempoolMode::Encrypted];
    let rules = [PaymentRule::FirstPrice, PaymentRule::Vcg];

    // 1. User losses to sandwiches, plaintext against encrypted.
    let mut series = Vec::new();
    for rule in rules {
        for mode in modes {
            if let Some(r) = find(results, mode, rule, "none") {
                let name = format!("{} / {}", mode.name(), rule_name(rule));
                series.push((name, cumulative(r, |s| s.user_loss)));
            }
        }
    }
    if !series.is_empty() {
        lines(
            dir,
            "user_losses",
            "Users' cumulative loss to sandwiches",
            ("slot", "quote units"),
            &series,
        )?;
        written.push("user_losses".into());
    }

    // 2. Rollup revenue by payment rule (Veil's split, fallback fees included).
    let n = results.first().map_or(0, |r| r.metrics.rollup_revenue_veil.len());
    let mut cats = Vec::new();
    let mut per_rollup: Vec<Vec<f64>> = vec![Vec::new(); n];
    for mode in modes {
        for rule in rules {
            if let Some(r) = find(results, mode, rule, "none") {
                cats.push(format!("{} {}", mode.name(), rule_name(rule)));
                for (i, v) in r.metrics.rollup_revenue_veil.iter().enumerate() {
                    per_rollup[i].push(*v);
                }
            }
        }
    }
    if !cats.is_empty() {
        let series: Vec<(String, Vec<f64>)> =
            per_rollup.into_iter().enumerate().map(|(i, v)| (format!("rollup {i}"), v)).collect();
        bars(
            dir,
            "revenue_by_rule",
            "Rollup revenue by payment rule",
            "quote units",
            &cats,
            &series,
        )?;
        written.push("revenue_by_rule".into());
    }

    // 3. Revenue share per rollup under each split rule, with and without shill / collusion
    //    (encrypted mempool, first-price).
    let mut cats = Vec::new();
    let mut shares: Vec<Vec<f64>> = vec![Vec::new(); n];
    for adv in ["none", "shill", "collusion"] {
        let Some(r) = find(results, MempoolMode::Encrypted, PaymentRule::FirstPrice, adv) else {
            continue;
        };
        for (split, rev) in [
            ("veil", &r.metrics.rollup_revenue_veil),
            ("prop", &r.metrics.rollup_revenue_prop),
            ("equal", &r.metrics.rollup_revenue_equal),
        ] {
            let total: f64 = rev.iter().sum::<f64>().max(1e-9);
            cats.push(format!("{split}/{adv}"));
            for (i, v) in rev.iter().enumerate() {
                shares[i].push(v / total);
            }
        }
    }
    if !cats.is_empty() {
        let series: Vec<(String, Vec<f64>)> =
            shares.into_iter().enumerate().map(|(i, v)| (format!("rollup {i}"), v)).collect();
        bars(
            dir,
            "split_shares",
            "Revenue share per rollup by split rule (encrypted, first-price)",
            "share of revenue",
            &cats,
            &series,
        )?;
        written.push("split_shares".into());
    }

    // 4. Winner concentration over time.
    let mut series = Vec::new();
    for mode in modes {
        for rule in rules {
            if let Some(r) = find(results, mode, rule, "none") {
                let pts =
                    rolling_hhi(&r.records, 50).into_iter().map(|(s, h)| (s as f64, h)).collect();
                series.push((format!("{} / {}", mode.name(), rule_name(rule)), pts));
            }
        }
    }
    if !series.is_empty() {
        lines(
            dir,
            "concentration",
            "Winner concentration (HHI of wins, 50-slot window)",
            ("slot", "HHI"),
            &series,
        )?;
        written.push("concentration".into());
    }
    Ok(written)
}
