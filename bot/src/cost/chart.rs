//! The week's chart as a PNG: node-hours per pool per day as bars, with the node-hours
//! schedules kept each pool off stacked on top, shaded. Drawn with plotters' bitmap backend;
//! text through ab_glyph (pure Rust) from a TTF file (`[cost] chart_font`); without a font the
//! chart is drawn without text.

use std::sync::OnceLock;

use plotters::prelude::*;

/// Size of the PNG.
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 480;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("encoding the chart: {0}")]
    Encode(String),
}

/// One bar group: a day, and per pool (in `pools` order) node-hours run and avoided.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartDay {
    pub label: String,
    pub run: Vec<f64>,
    pub avoided: Vec<f64>,
}

static FONT: OnceLock<bool> = OnceLock::new();

/// Registers the TTF at `path` for the chart's text, once; false when it cannot be read.
pub fn load_font(path: &std::path::Path) -> bool {
    *FONT.get_or_init(|| {
        let Ok(bytes) = std::fs::read(path) else {
            tracing::warn!(path = %path.display(), "chart font not readable; charts have no text");
            return false;
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

fn draw_err(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The PNG bytes of the chart.
pub fn render_png(title: &str, pools: &[String], days: &[ChartDay]) -> Result<Vec<u8>, ChartError> {
    let text = FONT.get().copied().unwrap_or(false);
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let top = days
            .iter()
            .flat_map(|d| d.run.iter().zip(&d.avoided).map(|(r, a)| r + a))
            .fold(1.0_f64, f64::max)
            * 1.1;
        let groups = days.len().max(1);
        let per = pools.len().max(1);
        let slots = groups * (per + 1);
        let mut builder = ChartBuilder::on(&root);
        builder.margin(16);
        if text {
            builder
                .caption(title, ("sans-serif", 20))
                .x_label_area_size(30)
                .y_label_area_size(50);
        }
        let mut chart = builder
            .build_cartesian_2d(0..slots, 0.0..top)
            .map_err(draw_err)?;
        if text {
            let labels: Vec<String> = days.iter().map(|d| d.label.clone()).collect();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(groups)
                .x_label_formatter(&|slot| {
                    let group = slot / (per + 1);
                    labels.get(group).cloned().unwrap_or_default()
                })
                .y_desc("node-hours")
                .draw()
                .map_err(draw_err)?;
        }
        for (g, day) in days.iter().enumerate() {
            for (p, (run, avoided)) in day.run.iter().zip(&day.avoided).enumerate() {
                let x = g * (per + 1) + p;
                let color = COLORS[p % COLORS.len()];
                chart
                    .draw_series([
                        Rectangle::new([(x, 0.0), (x + 1, *run)], color.filled()),
                        // Scheduled off: shaded above what ran.
                        Rectangle::new(
                            [(x, *run), (x + 1, run + avoided)],
                            color.mix(0.25).filled(),
                        ),
                    ])
                    .map_err(draw_err)?;
            }
        }
        if text {
            for (p, pool) in pools.iter().enumerate() {
                let color = COLORS[p % COLORS.len()];
                let y = 40 + 20 * p as i32;
                root.draw(&Rectangle::new(
                    [(WIDTH as i32 - 220, y), (WIDTH as i32 - 206, y + 12)],
                    color.filled(),
                ))
                .map_err(draw_err)?;
                root.draw(&Text::new(
                    format!("{pool} (shaded: scheduled off)"),
                    (WIDTH as i32 - 200, y),
                    ("sans-serif", 13),
                ))
                .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, pixels)
        .ok_or_else(|| ChartError::Encode("pixel buffer has the wrong size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageOutputFormat::Png)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_decodes_with_the_expected_size_and_shows_the_bars() {
        assert!(
            load_font(std::path::Path::new(
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
            )) || std::env::var("CI").is_err()
        );
        let days = vec![
            ChartDay {
                label: "Mon".into(),
                run: vec![24.0, 10.0],
                avoided: vec![0.0, 0.0],
            },
            ChartDay {
                label: "Tue".into(),
                run: vec![8.0, 2.0],
                avoided: vec![16.0, 8.0],
            },
        ];
        let png = render_png(
            "Node-hours per pool",
            &["c/gpu".into(), "c/workers".into()],
            &days,
        )
        .unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .to_rgb8();
        assert_eq!(decoded.dimensions(), (WIDTH, HEIGHT));
        // The first pool's colour is drawn, solid and shaded.
        let solid = decoded.pixels().filter(|p| p.0 == [31, 119, 180]).count();
        assert!(solid > 1000, "{solid} solid pixels");
        let shaded = decoded
            .pixels()
            .filter(|p| p.0 != [31, 119, 180] && p.0[2] > p.0[0] && p.0[0] > 180 && p.0[0] < 230)
            .count();
        assert!(shaded > 500, "{shaded} shaded pixels");
    }
}
