//! SVG charts of the comparison, drawn from the same [`Cell`]s as the report's tables:
//!
//! - `latency-sync-<mode>.svg`, one per durable sync mode: p50, p99 and p99.9 per append of
//!   every system, one panel per record size and writer-thread count;
//! - `throughput-sync-<mode>.svg`, one per sync mode: records/s against writer threads, one line
//!   per system, one panel per record size.
//!
//! Systems, record sizes, thread counts and sync modes are read from the cells, so a system or
//! workload added to the suite shows up here without a change. Each system keeps one colour in
//! every chart of a run. The colour says which kind of system it is: vault's own paths are
//! blue-green and drawn thicker, the machine's limits and baselines (`suite::is_baseline`) are
//! black or grey and dashed, with the floors first so that the device floor is the black
//! reference line, and the peer WALs take the warm colours. A value axis is logarithmic when its
//! values span a decade or more, linear from zero otherwise. The rotation runs (vault alone, one
//! workload) are left to their table.

use std::ops::Range;

use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::harness::{Result, SyncMode};
use crate::suite::{is_baseline, is_vault, size_label, Cell, Section};

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name, e.g. `latency-sync-each.svg`; the report links it as `charts/<file>`.
    pub file: String,
    /// What it shows: the image's title and its alt text in the report.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Line colours of vault's paths, of limits and baselines, and of peers, each taken in the
/// order [`ordered`] puts the systems in; a suite with more systems of a kind reuses them.
const VAULT_COLOURS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4), // blue
    RGBColor(0x17, 0xbe, 0xcf), // cyan
    RGBColor(0x2c, 0xa0, 0x2c), // green
    RGBColor(0x39, 0x3b, 0x79), // indigo
    RGBColor(0x63, 0x79, 0x39), // dark olive
];
const LIMIT_COLOURS: [RGBColor; 4] = [
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0x7f, 0x7f, 0x7f), // grey
    RGBColor(0x8c, 0x56, 0x4b), // brown
    RGBColor(0xbc, 0xbd, 0x22), // olive
];
const PEER_COLOURS: [RGBColor; 6] = [
    RGBColor(0xff, 0x7f, 0x0e), // orange
    RGBColor(0xd6, 0x27, 0x28), // red
    RGBColor(0xe3, 0x77, 0xc2), // pink
    RGBColor(0x94, 0x67, 0xbd), // purple
    RGBColor(0xe7, 0xba, 0x52), // gold
    RGBColor(0xad, 0x49, 0x4a), // dark red
];

/// The quantiles of the latency charts, with their axis labels.
const PERCENTILES: [(f64, &str); 3] = [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")];

const FONT: &str = "sans-serif";
const PANEL_WIDTH: u32 = 380;
const PANEL_HEIGHT: u32 = 280;
/// Width of one legend entry; the legend runs across the top in as many columns as fit.
const LEGEND_ENTRY_WIDTH: u32 = 280;
const LEGEND_ROW_HEIGHT: u32 = 24;
const TITLE_HEIGHT: u32 = 48;

/// The figures of one measured cell that the charts use.
struct Point<'a> {
    system: &'a str,
    sync: SyncMode,
    len: usize,
    threads: usize,
    records_per_sec: f64,
    /// At [`PERCENTILES`], in nanoseconds.
    latency_ns: [f64; 3],
}

/// Renders every chart of the cells: the latency charts (durable sync modes), then the
/// throughput charts (every sync mode), each group in the order the modes first appear.
///
/// # Errors
/// Errors of the SVG backend (none is expected when drawing into a string).
pub fn render(cells: &[Cell]) -> Result<Vec<Chart>> {
    let points: Vec<Point<'_>> = cells
        .iter()
        .filter(|c| c.section != Section::Rotation && c.workload.segment_size.is_none())
        .filter_map(|c| {
            let m = c.outcome.as_ref().ok()?;
            Some(Point {
                system: c.system,
                sync: c.workload.sync,
                len: c.workload.record_len,
                threads: c.workload.threads,
                records_per_sec: m.records_per_sec,
                latency_ns: PERCENTILES.map(|(q, _)| m.latency.value_at_quantile(q) as f64),
            })
        })
        .collect();
    let systems = ordered(distinct(points.iter().map(|p| p.system)));
    let syncs = distinct(points.iter().map(|p| p.sync));
    let mut charts = Vec::new();
    for &sync in syncs.iter().filter(|s| **s != SyncMode::Never) {
        charts.push(latency(&points, &systems, sync)?);
    }
    for &sync in &syncs {
        charts.push(throughput(&points, &systems, sync)?);
    }
    Ok(charts)
}

/// The values of `items` without repeats, in order of first appearance.
fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// What kind of system a name is, in legend order: vault's paths, floors, other limits and
/// baselines, peers.
fn kind(system: &str) -> u8 {
    if is_vault(system) {
        0
    } else if is_baseline(system) && system.contains("floor") {
        1
    } else if is_baseline(system) {
        2
    } else {
        3
    }
}

/// Systems by [`kind`], each kind in order of first appearance.
fn ordered(mut systems: Vec<&str>) -> Vec<&str> {
    systems.sort_by_key(|s| kind(s));
    systems
}

fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `sync-each`, `sync-every-64`, `sync-never`: the file name part of a sync mode.
fn slug(sync: SyncMode) -> String {
    format!("sync-{}", sync.label().replace(' ', "-"))
}

fn describe(sync: SyncMode) -> String {
    match sync {
        SyncMode::Never => "unsynced".into(),
        SyncMode::Each => "sync every record".into(),
        SyncMode::Every(n) => format!("sync every {n} records per thread"),
    }
}

fn threads_label(threads: usize) -> String {
    if threads == 1 {
        "1 thread".into()
    } else {
        format!("{threads} threads")
    }
}

/// p50, p99 and p99.9 of every system: one panel per record size (rows) and thread count
/// (columns).
fn latency(points: &[Point<'_>], systems: &[&str], sync: SyncMode) -> Result<Chart> {
    let these: Vec<&Point<'_>> = points.iter().filter(|p| p.sync == sync).collect();
    let lens = sorted(these.iter().map(|p| p.len));
    let threads = sorted(these.iter().map(|p| p.threads));
    let mut panels = Vec::new();
    for &len in &lens {
        for &t in &threads {
            let series = systems
                .iter()
                .filter_map(|&system| {
                    let p = these
                        .iter()
                        .find(|p| p.system == system && p.len == len && p.threads == t)?;
                    Some(Series {
                        system,
                        points: (0..PERCENTILES.len())
                            .map(|i| (i as f64, p.latency_ns[i]))
                            .collect(),
                    })
                })
                .collect();
            panels.push(Panel {
                caption: format!("{} records, {}", size_label(len), threads_label(t)),
                series,
            });
        }
    }
    let title = format!("Append latency percentiles, {}", describe(sync));
    let figure = Figure {
        title: &title,
        panels,
        columns: threads.len(),
        x: XAxis::Percentiles,
        y: YAxis::Latency,
    };
    Ok(Chart {
        file: format!("latency-{}.svg", slug(sync)),
        svg: figure.draw(systems)?,
        title,
    })
}

/// Records/s against writer threads, one line per system, one panel per record size.
fn throughput(points: &[Point<'_>], systems: &[&str], sync: SyncMode) -> Result<Chart> {
    let these: Vec<&Point<'_>> = points.iter().filter(|p| p.sync == sync).collect();
    let lens = sorted(these.iter().map(|p| p.len));
    let panels: Vec<Panel<'_>> = lens
        .iter()
        .map(|&len| Panel {
            caption: format!("{} records", size_label(len)),
            series: systems
                .iter()
                .filter_map(|&system| {
                    let mut points: Vec<(f64, f64)> = these
                        .iter()
                        .filter(|p| p.system == system && p.len == len)
                        .map(|p| (p.threads as f64, p.records_per_sec))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (!points.is_empty()).then_some(Series { system, points })
                })
                .collect(),
        })
        .collect();
    let threads = sorted(these.iter().map(|p| p.threads));
    let title = format!("Records/s by writer threads, {}", describe(sync));
    let figure = Figure {
        title: &title,
        columns: panels.len().min(2),
        panels,
        x: XAxis::Threads {
            first: threads.first().copied().unwrap_or(1),
            last: threads.last().copied().unwrap_or(1),
        },
        y: YAxis::Rate,
    };
    Ok(Chart {
        file: format!("throughput-{}.svg", slug(sync)),
        svg: figure.draw(systems)?,
        title,
    })
}

/// One line of a panel.
struct Series<'a> {
    system: &'a str,
    points: Vec<(f64, f64)>,
}

/// One plot of a figure.
struct Panel<'a> {
    caption: String,
    series: Vec<Series<'a>>,
}

#[derive(Clone, Copy)]
enum XAxis {
    /// The [`PERCENTILES`], at 0, 1, 2.
    Percentiles,
    /// Writer threads, linear.
    Threads { first: usize, last: usize },
}

impl XAxis {
    fn range(self) -> Range<f64> {
        match self {
            XAxis::Percentiles => -0.3..(PERCENTILES.len() as f64 - 0.7),
            XAxis::Threads { first, last } => (first as f64 - 0.5)..(last as f64 + 0.5),
        }
    }

    /// How many labels to ask for: one per whole number in range.
    fn labels(self) -> usize {
        match self {
            XAxis::Percentiles => PERCENTILES.len(),
            XAxis::Threads { first, last } => last - first + 1,
        }
    }

    /// Whole numbers only: the axes have no meaning between them.
    fn label(self, v: f64) -> String {
        if (v - v.round()).abs() > 1e-6 || v < -0.5 {
            return String::new();
        }
        let i = v.round() as usize;
        match self {
            XAxis::Percentiles => PERCENTILES.get(i).map_or(String::new(), |p| p.1.into()),
            XAxis::Threads { .. } => i.to_string(),
        }
    }

    fn description(self) -> &'static str {
        match self {
            XAxis::Percentiles => "percentile of per-record latency",
            XAxis::Threads { .. } => "writer threads",
        }
    }
}

#[derive(Clone, Copy)]
enum YAxis {
    /// Nanoseconds.
    Latency,
    /// Records per second.
    Rate,
}

impl YAxis {
    fn description(self, log: bool) -> String {
        let what = match self {
            YAxis::Latency => "latency per append",
            YAxis::Rate => "records/s, all threads",
        };
        if log {
            format!("{what} (log scale)")
        } else {
            what.into()
        }
    }

    fn label(self, v: f64) -> String {
        let unit = |steps: &[(f64, &str)]| {
            let (div, unit) = steps
                .iter()
                .copied()
                .find(|(div, _)| v.abs() >= *div)
                .unwrap_or(steps[steps.len() - 1]);
            let digits = format!("{:.2}", v / div);
            let digits = digits.trim_end_matches('0').trim_end_matches('.');
            if unit.is_empty() {
                digits.to_string()
            } else {
                format!("{digits} {unit}")
            }
        };
        match self {
            YAxis::Latency => unit(&[(1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns")]),
            YAxis::Rate => unit(&[(1e6, "M"), (1e3, "k"), (1.0, "")]),
        }
    }
}

/// A titled grid of panels with one legend on the right.
struct Figure<'a> {
    title: &'a str,
    panels: Vec<Panel<'a>>,
    columns: usize,
    x: XAxis,
    y: YAxis,
}

type DrawResult<T = ()> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

/// How a system's lines look, the same in every chart of a run: colour, width, dashed.
fn line_style(system: &str, systems: &[&str]) -> (RGBColor, u32, bool) {
    let palette: &[RGBColor] = match kind(system) {
        0 => &VAULT_COLOURS,
        1 | 2 => &LIMIT_COLOURS,
        _ => &PEER_COLOURS,
    };
    // Floors and other limits share one palette.
    let limit = |s: &str| matches!(kind(s), 1 | 2);
    let at = systems
        .iter()
        .filter(|s| kind(s) == kind(system) || limit(s) && limit(system))
        .position(|s| *s == system)
        .unwrap_or(0);
    let width = if is_vault(system) { 3 } else { 2 };
    (palette[at % palette.len()], width, is_baseline(system))
}

impl Figure<'_> {
    fn draw(&self, systems: &[&str]) -> Result<String> {
        let columns = self.columns.max(2);
        let rows = self.panels.len().div_ceil(columns).max(1);
        let width = PANEL_WIDTH * u32::try_from(columns)?;
        // The legend lists the systems of this figure only, in the suite's order.
        let shown: Vec<&str> = systems
            .iter()
            .copied()
            .filter(|s| {
                self.panels
                    .iter()
                    .any(|p| p.series.iter().any(|l| l.system == *s))
            })
            .collect();
        let per_row = (width / LEGEND_ENTRY_WIDTH).max(1);
        let legend_rows = u32::try_from(shown.len())?.div_ceil(per_row);
        // Entries, then a line saying what dashed and thick mean.
        let legend_height = (legend_rows + 1) * LEGEND_ROW_HEIGHT + 16;
        let height = TITLE_HEIGHT + legend_height + PANEL_HEIGHT * u32::try_from(rows)?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            root.fill(&WHITE)?;
            let body = root.titled(self.title, (FONT, 21))?;
            let (legend, plots) = body.split_vertically(legend_height);
            draw_legend(&legend, &shown, systems, per_row)?;
            for (panel, area) in self.panels.iter().zip(plots.split_evenly((rows, columns))) {
                self.draw_panel(&area, panel, systems)?;
            }
            root.present()?;
        }
        Ok(svg)
    }

    /// Picks the value axis from the panel's values, then plots.
    fn draw_panel(&self, area: &Area<'_>, panel: &Panel<'_>, systems: &[&str]) -> DrawResult {
        let values = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1));
        let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if hi <= 0.0 {
            area.titled(&panel.caption, (FONT, 16))?.draw(&Text::new(
                "not measured",
                (20, 20),
                (FONT, 14),
            ))?;
            return Ok(());
        }
        let lo = lo.max(hi * 1e-9).max(f64::MIN_POSITIVE);
        if hi / lo >= 10.0 {
            let (lo, hi) = (nice_floor(lo), nice_ceil(hi));
            let (labelled, light) = log_ticks(lo, hi);
            let range = (lo..hi)
                .log_scale()
                .with_key_points(labelled)
                .with_light_points(light);
            self.plot(area, panel, systems, range, true)
        } else {
            let range: RangedCoordf64 = (0.0..hi * 1.1).into();
            self.plot(area, panel, systems, range, false)
        }
    }

    fn plot<Y>(
        &self,
        area: &Area<'_>,
        panel: &Panel<'_>,
        systems: &[&str],
        y: Y,
        log: bool,
    ) -> DrawResult
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.caption, (FONT, 17))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(self.x.range(), y)?;
        let x_label = |v: &f64| self.x.label(*v);
        let y_label = |v: &f64| self.y.label(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(BLACK.mix(0.05))
            .y_max_light_lines(1)
            .x_labels(self.x.labels())
            .y_labels(if log { 12 } else { 6 })
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(self.x.description())
            .y_desc(self.y.description(log))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for series in &panel.series {
            let (colour, width, dashed) = line_style(series.system, systems);
            let style = colour.stroke_width(width);
            let points = series.points.iter().copied();
            if dashed {
                chart.draw_series(DashedLineSeries::new(points, 9, 6, style))?;
            } else {
                chart.draw_series(LineSeries::new(points, style))?;
            }
            chart.draw_series(
                series
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, width + 1, colour.filled())),
            )?;
        }
        Ok(())
    }
}

/// The systems of a figure with their line styles, `per_row` to a row, and what the styles
/// mean.
fn draw_legend(area: &Area<'_>, shown: &[&str], systems: &[&str], per_row: u32) -> DrawResult {
    let text = |size: f64| {
        TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Left, VPos::Center))
    };
    let at = |i: u32| {
        let x = 24 + (i % per_row) * LEGEND_ENTRY_WIDTH;
        let y = LEGEND_ROW_HEIGHT / 2 + 4 + (i / per_row) * LEGEND_ROW_HEIGHT;
        (i32::try_from(x).unwrap_or(0), i32::try_from(y).unwrap_or(0))
    };
    let mut i = 0;
    for &system in shown {
        let (x, y) = at(i);
        let (colour, width, dashed) = line_style(system, systems);
        let style = colour.stroke_width(width);
        let line = vec![(x, y), (x + 40, y)];
        if dashed {
            area.draw(&DashedPathElement::new(line, 9, 6, style))?;
        } else {
            area.draw(&PathElement::new(line, style))?;
        }
        area.draw(&Text::new(system, (x + 50, y), text(14.0)))?;
        i += 1;
    }
    let (x, y) = at(i.next_multiple_of(per_row));
    area.draw(&Text::new(
        "dashed: a limit of the machine or a baseline, not a WAL; thick: vault",
        (x, y),
        text(13.0).color(&BLACK.mix(0.7)),
    ))?;
    Ok(())
}

/// Ticks of a log axis from `lo` to `hi`: labelled at 1, 2 and 5 × 10^k, light at the other
/// whole multiples; over more than a few decades, labelled at 10^k alone and no light ones.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let (mut labelled, mut light) = (Vec::new(), Vec::new());
    let mut decade = 10_f64.powf(lo.log10().floor());
    while decade <= hi * (1.0 + 1e-9) {
        for m in 1..=9 {
            let v = decade * f64::from(m);
            if !inside(v) {
                continue;
            }
            if matches!(m, 1 | 2 | 5) {
                labelled.push(v);
            } else {
                light.push(v);
            }
        }
        decade *= 10.0;
    }
    if labelled.len() > 9 {
        labelled.retain(|v| (v.log10() - v.log10().round()).abs() < 1e-9);
        light.clear();
    }
    (labelled, light)
}

/// The largest 1, 2 or 5 × 10^k at or below `v` (> 0).
fn nice_floor(v: f64) -> f64 {
    let decade = 10_f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&n| n <= v * (1.0 + 1e-9))
        .unwrap_or(decade)
}

/// The smallest 1, 2 or 5 × 10^k at or above `v` (> 0).
fn nice_ceil(v: f64) -> f64 {
    let decade = 10_f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&n| n >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::*;
    use crate::harness::{Measurement, Workload};

    const FLOOR: &str = "pwrite + fdatasync (floor)";
    const CEILING: &str = "memcpy into mmap (ceiling)";

    fn cell(
        section: Section,
        system: &'static str,
        sync: SyncMode,
        threads: usize,
        rate: f64,
        latency_ns: [u64; 3],
    ) -> Cell {
        let mut latency = Histogram::new(3).unwrap();
        // 1000 samples: p50 at the first value, p99 at the second, p99.9 at the third.
        latency.record_n(latency_ns[0], 900).unwrap();
        latency.record_n(latency_ns[1], 98).unwrap();
        latency.record_n(latency_ns[2], 2).unwrap();
        Cell {
            section,
            system,
            workload: Workload {
                record_len: 256,
                sync,
                threads,
                records_per_thread: 1000,
                warmup_per_thread: 0,
                segment_size: None,
                replayed: false,
            },
            outcome: Ok(Measurement {
                records_per_sec: rate,
                mib_per_sec: rate * 256.0 / f64::from(1 << 20),
                latency,
                allocs_per_record: 0.0,
                notes: None,
                records: 1000,
                elapsed: Duration::from_millis(100),
                allocs: 0,
                sync_latency: crate::harness::new_histogram(),
                syncs: 0,
                device: None,
                segments: None,
                rounds: vec![crate::harness::Round {
                    records_per_sec: rate,
                    mib_per_sec: rate * 256.0 / f64::from(1 << 20),
                    sync_p50_ns: None,
                }],
            }),
        }
    }

    /// Two durable thread counts of three systems (one of them failed once), and an unsynced
    /// workload with a fourth system that ran only there.
    fn cells() -> Vec<Cell> {
        let each = SyncMode::Each;
        let mut cells = Vec::new();
        for threads in [1, 4] {
            let t = threads as f64;
            cells.push(cell(
                Section::SyncEach,
                "vault",
                each,
                threads,
                9e3 * t,
                [90_000, 200_000, 260_000],
            ));
            cells.push(cell(
                Section::SyncEach,
                FLOOR,
                each,
                threads,
                1e4 * t,
                [85_000, 170_000, 200_000],
            ));
            cells.push(cell(
                Section::SyncEach,
                "peer-wal 0.1",
                each,
                threads,
                6e3,
                [150_000, 900_000, 3_000_000],
            ));
        }
        cells.push(Cell {
            outcome: Err("disk full".into()),
            ..cell(Section::SyncEach, "broken-wal 0.2", each, 1, 1.0, [1, 1, 1])
        });
        for system in ["vault", CEILING, FLOOR] {
            cells.push(cell(
                Section::Unsynced,
                system,
                SyncMode::Never,
                1,
                2e7,
                [60, 270, 5_700],
            ));
        }
        cells
    }

    /// How many data markers (filled circles) each colour has.
    fn markers_by_colour(svg: &str) -> BTreeMap<String, usize> {
        let mut by_colour = BTreeMap::new();
        for circle in svg.split("<circle").skip(1) {
            let fill = circle
                .split("fill=\"")
                .nth(1)
                .and_then(|f| f.split('"').next())
                .unwrap()
                .to_string();
            *by_colour.entry(fill).or_insert(0) += 1;
        }
        by_colour
    }

    #[test]
    fn charts_show_every_measured_system_as_its_own_series() {
        let charts = render(&cells()).unwrap();
        let files: Vec<&str> = charts.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "latency-sync-each.svg",
                "throughput-sync-each.svg",
                "throughput-sync-never.svg"
            ]
        );

        let latency = &charts[0].svg;
        for system in ["vault", FLOOR, "peer-wal 0.1"] {
            assert!(
                latency.contains(system),
                "{system} missing from the latency chart"
            );
        }
        assert!(
            !latency.contains("broken-wal"),
            "a failed cell is not a series"
        );
        assert!(!latency.contains(CEILING), "the ceiling ran only unsynced");
        // Three series, each with a marker per percentile in each of the two panels.
        let markers = markers_by_colour(latency);
        assert_eq!(markers.len(), 3, "{markers:?}");
        assert!(
            markers.values().all(|&n| n == 2 * PERCENTILES.len()),
            "{markers:?}"
        );

        // Throughput: one panel (one size), a marker per thread count and system.
        let markers = markers_by_colour(&charts[1].svg);
        assert_eq!(markers.len(), 3, "{markers:?}");
        assert!(markers.values().all(|&n| n == 2), "{markers:?}");

        let unsynced = &charts[2].svg;
        for system in ["vault", CEILING, FLOOR] {
            assert!(
                unsynced.contains(system),
                "{system} missing from the unsynced chart"
            );
        }
        assert_eq!(markers_by_colour(unsynced).len(), 3);
    }

    #[test]
    fn a_system_keeps_its_colour_across_charts_and_the_floor_is_dashed() {
        // The floor is the first of the limits: black.
        let RGBColor(r, g, b) = LIMIT_COLOURS[0];
        let floor = format!("#{r:02X}{g:02X}{b:02X}");
        let charts = render(&cells()).unwrap();
        for chart in &charts {
            assert!(
                markers_by_colour(&chart.svg).contains_key(&floor),
                "{}: no marker in the floor's colour",
                chart.file
            );
        }
        // Dashes are drawn as one short polyline each: many more than the panels. (The
        // unsynced chart has one thread count: a single marker, no line.)
        for chart in &charts[..2] {
            let dashes = chart
                .svg
                .split("<polyline")
                .filter(|p| p.contains(&format!("stroke=\"{floor}\"")))
                .count();
            assert!(dashes > 10, "{}: {dashes} floor polylines", chart.file);
        }
    }

    #[test]
    fn log_axis_bounds_are_round_numbers_around_the_values() {
        assert_eq!(nice_floor(84_000.0), 50_000.0);
        assert_eq!(nice_ceil(3_490_000.0), 5_000_000.0);
        assert_eq!(nice_floor(100.0), 100.0);
        assert_eq!(nice_ceil(100.0), 100.0);
        assert_eq!(nice_ceil(0.7), 1.0);
    }

    #[test]
    fn log_ticks_are_labelled_at_one_two_five() {
        let (labelled, light) = log_ticks(50.0, 2000.0);
        assert_eq!(labelled, [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]);
        assert_eq!(
            light,
            [60.0, 70.0, 80.0, 90.0, 300.0, 400.0, 600.0, 700.0, 800.0, 900.0]
        );
        let (labelled, light) = log_ticks(10.0, 1e9);
        assert_eq!(labelled.len(), 9);
        assert!(light.is_empty());
    }

    #[test]
    fn value_labels_carry_their_unit() {
        assert_eq!(YAxis::Latency.label(50.0), "50 ns");
        assert_eq!(YAxis::Latency.label(200_000.0), "200 µs");
        assert_eq!(YAxis::Latency.label(1_500_000.0), "1.5 ms");
        assert_eq!(YAxis::Rate.label(20_000.0), "20 k");
        assert_eq!(YAxis::Rate.label(0.0), "0");
        assert_eq!(XAxis::Percentiles.label(2.0), "p99.9");
        assert_eq!(XAxis::Percentiles.label(1.5), "");
    }
}
