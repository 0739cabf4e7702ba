//! Renders the pairing web client URL (payload in its fragment) as a QR code in the
//! terminal with unicode half blocks (two QR rows per text line), low error correction
//! as pairing.md §2 asks.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The QR code of `payload` (any text, here the web client URL) as text lines, light-on-dark friendly (inverted, with quiet zone).
pub fn render(payload: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::L).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_payload() {
        let s = super::render(
            "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net",
        )
        .unwrap();
        assert!(s.lines().count() > 10);
        assert!(s.contains('▀') || s.contains('▄') || s.contains('█'));
    }
}
