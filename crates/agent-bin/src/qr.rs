//! Draws the pairing QR code (the web client URL with the payload in its
//! fragment) in the terminal: low error correction as pairing.md §2 asks, two
//! module rows per text line with half blocks, a 4-module quiet zone, and on a
//! terminal explicit ANSI colours (black modules on a bright white field,
//! quiet zone included) so it scans the same on a light or a dark theme.
//!
//! Size: a v2 URL for a 26-character server (~165 bytes) is a version 8 code,
//! 57 modules with the quiet zone. With half blocks (two module rows per
//! line) that is 57 columns × 29 lines: more than an 80×24 terminal shows, and
//! no smaller code can hold it (24 lines means version 5, ≤ 106 bytes, and
//! the v2 payload alone is 110). So a terminal shorter than that gets
//! [`Cells::Sextants`]: 2×3 modules per character (Unicode 13 block
//! sextants), 29 columns × 19 lines.

use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone on each side, in modules (the QR standard's minimum).
pub const QUIET_ZONE: usize = 4;
/// Black foreground on bright white background.
const COLOURS_ON: &str = "\x1b[30;107m";
const COLOURS_OFF: &str = "\x1b[0m";

/// How many modules one character cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cells {
    /// 1 × 2 modules per cell (`▀ ▄ █`): square modules, drawn by every font.
    HalfBlocks,
    /// 2 × 3 modules per cell (U+1FB00 sextants): a third fewer lines, for
    /// short terminals; needs a font (or terminal) that draws them.
    Sextants,
}

impl Cells {
    fn size(self) -> (usize, usize) {
        match self {
            Cells::HalfBlocks => (1, 2),
            Cells::Sextants => (2, 3),
        }
    }

    /// The character for one cell; `dark[row][col]` within the cell.
    fn glyph(self, dark: impl Fn(usize, usize) -> bool) -> char {
        match self {
            Cells::HalfBlocks => match (dark(0, 0), dark(1, 0)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            },
            Cells::Sextants => {
                let mut bits = 0u32;
                for (i, (row, col)) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
                    .into_iter()
                    .enumerate()
                {
                    if dark(row, col) {
                        bits |= 1 << i;
                    }
                }
                sextant(bits)
            }
        }
    }
}

/// Unicode's sextant for the 6-bit pattern (bit 0 top left … bit 5 bottom
/// right). The block leaves out the four patterns older characters already
/// draw: empty, full, left half and right half.
fn sextant(bits: u32) -> char {
    match bits {
        0 => ' ',
        63 => '█',
        21 => '▌',
        42 => '▐',
        b => {
            let skipped = u32::from(b > 21) + u32::from(b > 42);
            char::from_u32(0x1FB00 + b - 1 - skipped).unwrap_or('?')
        }
    }
}

/// The QR code of `text` as text lines with half blocks; `colour` adds the
/// explicit dark-on-light ANSI colours (use it whenever the output is a terminal).
pub fn render(text: &str, colour: bool) -> Option<String> {
    render_with(text, colour, Cells::HalfBlocks)
}

/// The half-block code when it fits `rows` lines (leaving `reserve` for the
/// text around it), else the sextant one.
pub fn render_for_height(text: &str, colour: bool, rows: usize, reserve: usize) -> Option<String> {
    let half = render(text, colour)?;
    if half.lines().count() + reserve <= rows {
        Some(half)
    } else {
        render_with(text, colour, Cells::Sextants)
    }
}

/// The QR code of `text` drawn with `cells`.
pub fn render_with(text: &str, colour: bool, cells: Cells) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    let width = code.width();
    let modules = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let dark = |x: usize, y: usize| -> bool {
        let (Some(mx), Some(my)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        mx < width && my < width && modules[my * width + mx] == Color::Dark
    };
    let (cw, ch) = cells.size();
    let mut out = String::new();
    for y in (0..size).step_by(ch) {
        if colour {
            out.push_str(COLOURS_ON);
        }
        for x in (0..size).step_by(cw) {
            out.push(cells.glyph(|row, col| dark(x + col, y + row)));
        }
        if colour {
            out.push_str(COLOURS_OFF);
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal theme: the colours of text outside any SGR code.
    #[derive(Clone, Copy)]
    struct Theme {
        fg_dark: bool,
    }

    /// Rasterises rendered lines as a terminal with `theme` would show them
    /// (glyph halves in the foreground, the rest in the background), 4 px
    /// per module, and decodes the picture with a real QR reader.
    fn decode_as_shown(rendered: &str, theme: Theme) -> Option<String> {
        if rendered
            .chars()
            .any(|c| ('\u{1FB00}'..='\u{1FB3B}').contains(&c))
        {
            return decode_sextants(rendered);
        }
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in rendered.lines() {
            // (fg dark, bg dark) per explicit SGR code or the theme's default.
            let (mut fg, mut bg) = (theme.fg_dark, !theme.fg_dark);
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            let mut rest = line;
            while let Some(c) = rest.chars().next() {
                if let Some(tail) = rest.strip_prefix(COLOURS_ON) {
                    (fg, bg) = (true, false);
                    rest = tail;
                    continue;
                }
                if let Some(tail) = rest.strip_prefix(COLOURS_OFF) {
                    (fg, bg) = (theme.fg_dark, !theme.fg_dark);
                    rest = tail;
                    continue;
                }
                let (t, b) = match c {
                    '█' => (fg, fg),
                    '▀' => (fg, bg),
                    '▄' => (bg, fg),
                    _ => (bg, bg),
                };
                top.push(t);
                bottom.push(b);
                rest = &rest[c.len_utf8()..];
            }
            rows.push(top);
            rows.push(bottom);
        }
        // A margin in the theme's background around what was printed.
        let scale = 4;
        let margin = 8;
        let w = rows.iter().map(Vec::len).max()? + 2 * margin;
        let h = rows.len() + 2 * margin;
        let background_dark = !theme.fg_dark;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark = if mx < margin || my < margin {
                background_dark
            } else {
                rows.get(my - margin)
                    .and_then(|r| r.get(mx - margin))
                    .copied()
                    .unwrap_or(background_dark)
            };
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        let (_, text) = grids.first()?.decode().ok()?;
        Some(text)
    }

    /// Sextant cells back to modules (colours stripped: they are the same
    /// black-on-white span as the half-block form), then decoded.
    fn decode_sextants(rendered: &str) -> Option<String> {
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in rendered.lines() {
            let plain = line.replace(COLOURS_ON, "").replace(COLOURS_OFF, "");
            let mut three = vec![Vec::new(), Vec::new(), Vec::new()];
            for c in plain.chars() {
                let bits = (0..64u32).find(|b| super::sextant(*b) == c)?;
                for (i, (row, _)) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
                    .into_iter()
                    .enumerate()
                {
                    three[row].push(bits & (1 << i) != 0);
                }
            }
            rows.extend(three);
        }
        let scale = 4;
        let margin = 8;
        let w = rows.iter().map(Vec::len).max()? + 2 * margin;
        let h = rows.len() + 2 * margin;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark = mx >= margin
                && my >= margin
                && rows
                    .get(my - margin)
                    .and_then(|r| r.get(mx - margin))
                    .copied()
                    .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        let (_, text) = grids.first()?.decode().ok()?;
        Some(text)
    }

    #[test]
    fn sextant_code_fits_80_by_24_and_decodes() {
        let url = v2_url();
        let shown = render_for_height(&url, true, 24, 4).unwrap();
        assert!(
            shown.lines().count() + 4 <= 24,
            "{} lines",
            shown.lines().count()
        );
        assert_eq!(shown.lines().count(), 19);
        let widest = shown
            .lines()
            .map(|l| {
                l.replace(COLOURS_ON, "")
                    .replace(COLOURS_OFF, "")
                    .chars()
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(widest, 29);
        assert_eq!(
            decode_as_shown(&shown, LIGHT).as_deref(),
            Some(url.as_str())
        );
        // A tall terminal keeps the half blocks every font draws.
        let tall = render_for_height(&url, true, 50, 4).unwrap();
        assert_eq!(tall.lines().count(), 29);
    }

    #[test]
    fn every_sextant_pattern_has_its_own_character() {
        let all: std::collections::HashSet<char> = (0..64).map(super::sextant).collect();
        assert_eq!(all.len(), 64);
        assert_eq!(super::sextant(1), '\u{1FB00}');
        assert_eq!(super::sextant(62), '\u{1FB3B}');
    }

    const LIGHT: Theme = Theme { fg_dark: true };
    const DARK: Theme = Theme { fg_dark: false };

    fn v2_url() -> String {
        crate::pairing::web_url(
            "https://signal.example.net",
            "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net|8PHy8/T19vf4+fr7/P3+/w==",
        )
    }

    #[test]
    fn coloured_code_decodes_on_a_light_and_a_dark_theme() {
        let url = v2_url();
        let shown = render(&url, true).unwrap();
        assert_eq!(
            decode_as_shown(&shown, LIGHT).as_deref(),
            Some(url.as_str())
        );
        assert_eq!(decode_as_shown(&shown, DARK).as_deref(), Some(url.as_str()));
    }

    /// Without colours the glyphs take the theme's foreground: right on a
    /// light theme, inverted on a dark one — which is why a terminal gets colours.
    #[test]
    fn plain_code_is_dark_on_light_paper() {
        let url = v2_url();
        let plain = render(&url, false).unwrap();
        assert!(!plain.contains('\x1b'));
        assert_eq!(
            decode_as_shown(&plain, LIGHT).as_deref(),
            Some(url.as_str())
        );
        assert_eq!(
            decode_as_shown(&plain, DARK),
            None,
            "inverted on a dark theme"
        );
    }

    #[test]
    fn fits_80_columns_with_its_quiet_zone() {
        let shown = render(&v2_url(), false).unwrap();
        let widest = shown.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= 80, "{widest} columns");
        // Version 8 (49 modules) + 2 × 4 quiet modules, two rows per line.
        assert_eq!(widest, 57);
        assert_eq!(shown.lines().count(), 29);
        // The quiet zone: the first two lines and the first four columns are blank.
        assert!(shown.lines().take(2).all(|l| l.trim().is_empty()));
        assert!(
            shown
                .lines()
                .all(|l| l.chars().take(QUIET_ZONE).all(|c| c == ' '))
        );
    }
}
