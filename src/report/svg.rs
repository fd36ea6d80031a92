//! A tiny inline-SVG writer: shapes, text, linear scales and round tick values (no scripts, no fonts to fetch).

use std::fmt::Write;

/// Ten distinguishable colours (Tableau 10), for lines of different trials.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Escapes text for HTML and SVG content and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG element being written; `finish` closes it.
pub struct Svg {
    out: String,
}

impl Svg {
    /// A `width` x `height` drawing with an accessible `label` (its `<title>`) and a CSS class.
    pub fn new(width: f64, height: f64, class: &str, label: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="{class}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{l}"><title>{l}</title>"#,
            l = escape(label)
        );
        Svg { out }
    }

    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str) {
        let _ = write!(
            self.out,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#
        );
    }

    pub fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), style: &str) {
        let _ = write!(
            self.out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" {style}/>"#
        );
    }

    pub fn circle(&mut self, (cx, cy): (f64, f64), r: f64, style: &str) {
        let _ = write!(
            self.out,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{r}" {style}/>"#
        );
    }

    pub fn polyline(&mut self, points: &[(f64, f64)], style: &str) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            self.out,
            r#"<polyline fill="none" points="{}" {style}/>"#,
            points.join(" ")
        );
    }

    /// Text at (x, y); `anchor` is start, middle or end; `extra` adds attributes (class, fill...).
    pub fn text(&mut self, (x, y): (f64, f64), anchor: &str, extra: &str, content: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" {extra}>{}</text>"#,
            escape(content)
        );
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// Maps a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub fn map(&self, value: f64) -> f64 {
        if self.d1 == self.d0 {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Round tick values covering [lo, hi] (about `count` of them), and the widened interval.
pub fn ticks(lo: f64, hi: f64, count: usize) -> (Vec<f64>, f64, f64) {
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 0.05, hi + 0.05)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = ((end - start) / step).round() as usize;
    let values = (0..=n).map(|i| start + i as f64 * step).collect();
    (values, start, end)
}

/// A colour from light yellow (t = 0) to dark blue (t = 1), and whether text on it should be white.
pub fn heat_colour(t: f64) -> (String, bool) {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let stops = [
        (255.0, 247.0, 188.0),
        (65.0, 182.0, 196.0),
        (8.0, 29.0, 88.0),
    ];
    let (a, b, u) = if t < 0.5 {
        (stops[0], stops[1], t * 2.0)
    } else {
        (stops[1], stops[2], t * 2.0 - 1.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    let colour = format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    );
    (colour, t > 0.55)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (values, lo, hi) = ticks(0.62, 0.91, 5);
        assert!(lo <= 0.62 && hi >= 0.91);
        assert!(values.len() >= 3 && values.len() <= 8, "{values:?}");
        for v in &values {
            assert!(((v * 100.0).round() - v * 100.0).abs() < 1e-6, "{v}");
        }
        let (flat, lo, hi) = ticks(0.5, 0.5, 4);
        assert!(lo < 0.5 && hi > 0.5 && flat.len() >= 2);
    }

    #[test]
    fn escapes_markup_and_scales_linearly() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        let s = Scale {
            d0: 0.0,
            d1: 1.0,
            r0: 100.0,
            r1: 0.0,
        };
        assert_eq!(s.map(0.25), 75.0);
        assert_eq!(heat_colour(0.0).0, "#fff7bc");
        assert!(heat_colour(1.0).1);
    }
}
