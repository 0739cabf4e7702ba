//! The normative test vectors of signaling.md §10 and pairing.md §7.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signaling_proto::ed25519_dalek::SigningKey;
use signaling_proto::x25519_dalek::{PublicKey, StaticSecret};
use signaling_proto::*;

const HMAC_SECRET: &str = "test-hmac-secret";
const NONCE: &str = "000102030405060708090a0b0c0d0e0f";
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const DEVICE: &str = "21fe31dfa154a261626bf854046fd227";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIyMWZlMzFkZmExNTRhMjYxNjI2YmY4NTQwNDZmZDIyNyIsImF1ZCI6Im11eGxpbmsiLCJkZXZpY2VJZCI6IjIxZmUzMWRmYTE1NGEyNjE2MjZiZjg1NDA0NmZkMjI3IiwiZGV2aWNlVHlwZSI6Imhvc3QiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMH0.wERNXVLxj3RcCMqXRriR07uoAfVWbp6vnadnrMMOI4M";

fn key32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

#[test]
fn request_signature_token_path() {
    let sig = sign_request(HMAC_SECRET, 1_700_000_000, NONCE, "/v1/auth/token");
    assert_eq!(
        sig,
        "fb8cb8bf1ce477ab8ce79d2e88f250beac9337c633535e2baa130c94b1d7e3aa"
    );
    verify_request(
        HMAC_SECRET,
        Some("1700000000"),
        Some(NONCE),
        Some(&sig),
        "/v1/auth/token",
        1_700_000_000,
    )
    .unwrap();
}

#[test]
fn request_signature_ws_path() {
    let sig = sign_request(HMAC_SECRET, 1_700_000_000, NONCE, "/v1/ws");
    assert_eq!(
        sig,
        "87edac9c6aab929c4c8a6cee72937eabf623d4f6d2ebda7f240dae8d3446e38f"
    );
}

#[test]
fn device_id_and_public_key() {
    let key = SigningKey::from_bytes(&key32(SEED));
    let public = key.verifying_key().to_bytes();
    assert_eq!(
        hex::encode(public),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(
        STANDARD.encode(public),
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    );
    assert_eq!(device_id(&public), DEVICE);
    assert!(is_valid_device_id(DEVICE));
    assert_eq!(
        decode_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap(),
        public
    );
}

#[test]
fn challenge_signature() {
    let key = SigningKey::from_bytes(&key32(SEED));
    let nonce = "AAECAwQFBgcICQoLDA0ODw==";
    assert_eq!(
        challenge_message(DEVICE, nonce),
        "21fe31dfa154a261626bf854046fd227|AAECAwQFBgcICQoLDA0ODw=="
    );
    let sig = sign_challenge(&key, DEVICE, nonce);
    assert_eq!(
        sig,
        "9y2DxMZTQxShSRi0Th8WAWAzmJGVXpQ1vLR3tRVLQxIK4vxXKtV9cLnXBWsa5u+7JKXfrisZ4iRosXmjQvVMDw=="
    );
    let public = key.verifying_key().to_bytes();
    verify_challenge(&public, DEVICE, nonce, &sig).unwrap();
    assert_eq!(
        verify_challenge(&public, DEVICE, "other", &sig),
        Err(ProtoError::BadSignature)
    );
}

#[test]
fn jwt_string() {
    let claims = Claims::new(DEVICE, "host", 1_700_000_000, 3600);
    assert_eq!(jwt_encode(b"test-jwt-secret", &claims), JWT);
    assert_eq!(
        jwt_verify(b"test-jwt-secret", JWT, 1_700_000_001).unwrap(),
        claims
    );
    assert_eq!(jwt_expiry_unverified(JWT), Some(1_700_003_600));
}

#[test]
fn pairing_secret() {
    let host = StaticSecret::from(key32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let mobile = StaticSecret::from(key32(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    let host_pub = PublicKey::from(&host).to_bytes();
    let mobile_pub = PublicKey::from(&mobile).to_bytes();
    assert_eq!(
        hex::encode(host_pub),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        STANDARD.encode(host_pub),
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    );
    assert_eq!(
        STANDARD.encode(mobile_pub),
        "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="
    );
    assert_eq!(
        hex::encode(host.diffie_hellman(&PublicKey::from(mobile_pub)).as_bytes()),
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    );
    // The v1 HKDF output over Z alone (§7) stays a checked intermediate value.
    let z = host.diffie_hellman(&PublicKey::from(mobile_pub));
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"muxlink"), z.as_bytes());
    let mut k_v1 = [0u8; 32];
    hk.expand(b"muxlink-pairing-v1", &mut k_v1).unwrap();
    assert_eq!(
        hex::encode(k_v1),
        "eb63cff233223cddd4651afe2f877b33f4c918c867c5b9d2ad5cf0de06cf6ccc"
    );
}

/// Pairing v2 vector, pairing.md §9.1: `K` over `Z ‖ T`, the confirmation
/// message and MAC, and the 5-field QR payload.
#[test]
fn pairing_v2_vector() {
    let host = StaticSecret::from(key32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let mobile = StaticSecret::from(key32(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    let host_pub = PublicKey::from(&host).to_bytes();
    let mobile_pub = PublicKey::from(&mobile).to_bytes();
    let token: [u8; 16] = std::array::from_fn(|i| 0xf0 + i as u8);
    assert_eq!(STANDARD.encode(token), "8PHy8/T19vf4+fr7/P3+/w==");

    let k_host = derive_pairing_secret(&host, &mobile_pub, &token).unwrap();
    let k_mobile = derive_pairing_secret(&mobile, &host_pub, &token).unwrap();
    assert_eq!(*k_host, *k_mobile);
    assert_eq!(
        hex::encode(*k_host),
        "c568e156200eee0049bddd189ddce76e5d120eb3d6957cb6fc79c08902582ed9"
    );
    assert_eq!(
        STANDARD.encode(*k_host),
        "xWjhViAO7gBJvd0Yndznbl0SDrPWlXy2/HnAiQJYLtk="
    );

    let mobile_id = "0123456789abcdef0123456789abcdef";
    let mobile_b64 = STANDARD.encode(mobile_pub);
    assert_eq!(
        signaling_proto::pairing::confirmation_message(mobile_id, &mobile_b64, DEVICE),
        "muxlink-pair-confirm-v2|0123456789abcdef0123456789abcdef|3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=|21fe31dfa154a261626bf854046fd227"
    );
    let c = pairing_confirmation(&k_mobile, mobile_id, &mobile_b64, DEVICE);
    assert_eq!(c, "QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=");
    assert_eq!(
        hex::encode(STANDARD.decode(&c).unwrap()),
        "42c3bc977d6cfd62afacf03d2fee911606bc34940402001b22e9e1ce3655314a"
    );
    verify_pairing_confirmation(&k_host, mobile_id, &mobile_b64, DEVICE, &c).unwrap();

    let text = "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net|8PHy8/T19vf4+fr7/P3+/w==";
    let qr = QrPayload::parse(text).unwrap();
    assert_eq!(*qr.token, token);
    assert_eq!(qr.to_string(), text);
}

/// Every way a relayed confirmation can be wrong is refused (pairing.md §9.6).
#[test]
fn pairing_confirmation_failures() {
    let k = [5u8; 32];
    let (m, key, h) = (
        "0123456789abcdef0123456789abcdef",
        "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=",
        DEVICE,
    );
    let good = pairing_confirmation(&k, m, key, h);
    verify_pairing_confirmation(&k, m, key, h, &good).unwrap();
    let refused = |c: &str| {
        matches!(
            verify_pairing_confirmation(&k, m, key, h, c),
            Err(ProtoError::BadConfirmation(_))
        )
    };
    assert!(refused(""), "missing");
    assert!(refused(&"A".repeat(129)), "too long");
    assert!(refused("not base64!"), "malformed");
    assert!(refused(good.trim_end_matches('=')), "unpadded");
    assert!(refused("AAAA"), "short");
    // Another key, another phone key, another phone id, another host id.
    assert!(!matches!(
        verify_pairing_confirmation(&[6u8; 32], m, key, h, &good),
        Ok(())
    ));
    let other_key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
    assert!(verify_pairing_confirmation(&k, m, other_key, h, &good).is_err());
    assert!(
        verify_pairing_confirmation(&k, "1123456789abcdef0123456789abcdef", key, h, &good).is_err()
    );
    assert!(
        verify_pairing_confirmation(&k, m, key, "31fe31dfa154a261626bf854046fd227", &good).is_err()
    );
}

#[test]
fn all_zero_shared_secret_rejected() {
    let own = StaticSecret::from([7u8; 32]);
    // The identity point and other small-order points give an all-zero output.
    let t = [9u8; 16];
    assert_eq!(
        derive_pairing_secret(&own, &[0u8; 32], &t).map(|k| *k),
        Err(ProtoError::LowOrderKey)
    );
    let mut one = [0u8; 32];
    one[0] = 1;
    assert_eq!(
        derive_pairing_secret(&own, &one, &t).map(|k| *k),
        Err(ProtoError::LowOrderKey)
    );
}

#[test]
fn qr_payload_example() {
    let text = "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net|8PHy8/T19vf4+fr7/P3+/w==";
    let qr = QrPayload::parse(text).unwrap();
    assert_eq!(qr.code, "ABC234");
    assert_eq!(
        qr.host_x25519_public_key,
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    );
    assert_eq!(qr.host_device_id, DEVICE);
    assert_eq!(qr.server_url, "https://signal.example.net");
    assert_eq!(qr.to_string(), text);
    assert_eq!(
        hex::encode(qr.host_x25519_bytes().unwrap()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    // The v1 four-field example of §7 has no token and is refused.
    let v1 = "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net";
    assert!(QrPayload::parse(v1).is_err());
}
