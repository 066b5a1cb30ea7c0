//! The known-answer vectors and the limits of `CIPHERTEXT.md`, checked against the code.
//!
//! Each test computes every value through this crate's own functions (the KDF, the padding,
//! the challenge, the encryption with injected randomness, the keypers' shares), compares it
//! with the constants below, and then checks that `CIPHERTEXT.md` carries exactly those
//! constants, whitespace ignored. So the code cannot change an encryption without failing
//! here, and the document cannot drift from the code. When a test fails it prints the block
//! the document should hold.

use blstrs::{G1Affine, G1Projective, Scalar};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ff::Field;
use group::{prime::PrimeCurveAffine, Curve, Group};
use sha3::{Digest, Sha3_256, Sha3_512};
use veil_primitives::{Amount, BundleId, BundleRef, ChainId, Eon, PublicKeyBytes, RollupId, Slot};

use crate::ciphertext::{
    challenge, ciphertext_len, pad, payload_key, EncryptionSecrets, MAX_BUNDLE_PARTS,
    MAX_CIPHERTEXT_LEN, MAX_PAYLOAD, PADDING_BUCKETS,
};
use crate::curve::{self, G1_COFACTOR};
use crate::dev::DevCommittee;
use crate::TxMeta;

const SPEC: &str = include_str!("../CIPHERTEXT.md");

/// The dev committee of the vectors: `veil dev-committee --seed 7 --keypers 3 --threshold 1
/// --chain-id 1` (eon 1).
const SEED: u64 = 7;
const KEYPERS: u16 = 3;
const THRESHOLD: u16 = 1;

/// The secret key of RFC 8032's first Ed25519 test vector: the vectors' fee payer.
const FEE_PAYER_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// The group constants block of `CIPHERTEXT.md`.
const CONSTANTS: &[(&str, &str)] = &[
    ("q", "0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001"),
    ("h", "0x396c8c005555e1568c00aaab0000aaab"),
    ("1/h", "0x73eda753299d7d44e34f0b31458fbb21d07c8ff73bf14809ec0000020005fffb"),
    (
        "g1",
        concat!(
            "0x",
            "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac58",
            "6c55e83ff97a1aeffb3af00adb22c6bb08b3f481e3aaa0f1a09e30ed741d8ae4",
            "fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1",
        ),
    ),
];

/// The key set block.
const KEY_SET: &[(&str, &str)] = &[
    ("x_1", "0x27b65814a16122b73df0d05461f150aa9e0e3ac237e9b46f35569450b444df52"),
    ("x_2", "0x06c4e58220ee8876885397350bea73c6b340686d99cbd34e64b3d5ea413f798b"),
    ("x_3", "0x59c11a42ca196b7e05f0361dbf856ee81c303a1bfbac4e2c94111782ce3a13c5"),
    ("x", "0x48a7caa721d3bcf7f38e0973b7f82d8e88dc0d16d607959005f952b7274a4519"),
    (
        "X1",
        concat!(
            "0x",
            "89bdd02844fb92e963ba3ff097e6fd81369f1239ef8e53127e01dbd6dfc5c3d5",
            "e1d836fb802116592a31331f399a51db",
        ),
    ),
    (
        "X2",
        concat!(
            "0x",
            "a57c2cbd6aeffafcce65fc8ba45fea0e5a189ed2a2fdcb7843c14f0366e975f0",
            "1f93484496fcc957f47ff4e85651d9e507e8dbdac5fef45274136017b45d6578",
            "d37c03f469d14e536571055b326e3e3f702b495014081a7fc1126b80f24027f8",
        ),
    ),
];

/// Vector 1: one transaction, no bundle.
const VECTOR_1: &[(&str, &str)] = &[
    ("payload", "0x7665696c206b6e6f776e2d616e7377657220766563746f722031"),
    (
        "ad",
        concat!(
            "0x",
            "010000000000000001000000000000000100000007d75a980182b10ab7d54bfe",
            "d3c964073a0ee172f3daa62325af021a68f707511a0000000000000000000000",
            "009502f900000000000000520800000000000003e800",
        ),
    ),
    (
        "padded",
        concat!(
            "0x",
            "0000001a7665696c206b6e6f776e2d616e7377657220766563746f7220310000",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ),
    ("r", "0x4e675274ab99138c039a4ddbd6a9be9d52609e48a30937e89e3203b5bacced80"),
    ("k", "0x193cc25c78f0b784f84af8739df5408d1d01ec7f95a4dd8116b42fbef6fea62f"),
    (
        "U",
        concat!(
            "0x",
            "099188888ac5ebd7e64e0c4a83eee7e4115f9f4a879c681d8f1f7ce0ff5246b4",
            "862ab69c8f927643825d79974fb85ba50f3ecf1e915206c330d14cecba58b8e7",
            "595c5776b1ccc78650698452410f9954f0207d7613c0f931335ae2bc483ff04b",
        ),
    ),
    (
        "K",
        concat!(
            "0x",
            "a9fa052c215e7d1e2aa38767e15aa9f5080b029bc86068397caaf67a86e46229",
            "45a07ab6eb4ed81155b945f2062ef218",
        ),
    ),
    ("key", "0x9d815cb670165ce2bcd85524a71a2dc6da154f4866196463569aeff93b5dbad8"),
    ("nonce", "0x000000000000000000000000"),
    (
        "body",
        concat!(
            "0x",
            "b13927ec95fe219b0a108b87d72a46cd7492981de4dedbaa83eaecf0b237907e",
            "f5e96818bf10637f01b5e6b454e38c8b013be82c06fdefecacfee8d03ec2f45b",
            "a9875ccced963a308ba36907375ba597",
        ),
    ),
    ("k/h", "0x29159c5c1e2b2d16e36d2b1ca26f08cbec29449a64bd4c3abac5744ff6b9cca3"),
    (
        "A'",
        concat!(
            "0x",
            "099e4c2f6c19ef754d0263ae72b8da89e27e629d6c0e485ec6481ff338087bbd",
            "90294b526c8e2e00e5aee3366ef30bf50009677a606fbed7718f3e0e2a119000",
            "1eb1b458054bf43c6b3c7c955881a42f132966d950ed36834a81ee0d52734873",
        ),
    ),
    (
        "A",
        concat!(
            "0x",
            "a79ba6b6c6ceef79f65ccf5cf303c4c3776d4df986f319dfb2015ecccb5c252b",
            "b19b7748ca324171ca54fc48fc81fc41",
        ),
    ),
    ("H(body)", "0x250537d1b335df9b90261298a0a761c5c5a484b7d3c04776705b66f908986f56"),
    (
        "H_c",
        concat!(
            "0x",
            "4a2661bc6e27115a95650a51c474bd3b240983d106d149cda0182764af9868ec",
            "d474d1e00742615185b1cf1035c19d94a85eef403677796c5719d256dd411f6f",
        ),
    ),
    ("c", "0x2b21c17e8f8aac25cdb2e76803d03c8bb89003a4121119e33a2836e6804fd54c"),
    ("z", "0x28e7f32c6e8cb85142221aa235ebd58c956ff8182a6af1c55ea2fd09017e7984"),
    (
        "ciphertext",
        concat!(
            "0x",
            "010000000000000001000000000000000100000007d75a980182b10ab7d54bfe",
            "d3c964073a0ee172f3daa62325af021a68f707511a0000000000000000000000",
            "009502f900000000000000520800000000000003e800099188888ac5ebd7e64e",
            "0c4a83eee7e4115f9f4a879c681d8f1f7ce0ff5246b4862ab69c8f927643825d",
            "79974fb85ba50f3ecf1e915206c330d14cecba58b8e7595c5776b1ccc7865069",
            "8452410f9954f0207d7613c0f931335ae2bc483ff04b099e4c2f6c19ef754d02",
            "63ae72b8da89e27e629d6c0e485ec6481ff338087bbd90294b526c8e2e00e5ae",
            "e3366ef30bf50009677a606fbed7718f3e0e2a1190001eb1b458054bf43c6b3c",
            "7c955881a42f132966d950ed36834a81ee0d5273487328e7f32c6e8cb8514222",
            "1aa235ebd58c956ff8182a6af1c55ea2fd09017e798400000050b13927ec95fe",
            "219b0a108b87d72a46cd7492981de4dedbaa83eaecf0b237907ef5e96818bf10",
            "637f01b5e6b454e38c8b013be82c06fdefecacfee8d03ec2f45ba9875ccced96",
            "3a308ba36907375ba597",
        ),
    ),
    ("id", "0x05ec2e1e5efb885fe1891694faec821cb2dbe16c1f931d9f915e5e39a54418b6"),
];

/// Vector 2: a part of a bundle (122 bytes of associated data, the 128-byte bucket).
const VECTOR_2: &[(&str, &str)] = &[
    (
        "payload",
        concat!(
            "0x",
            "7665696c206b6e6f776e2d616e7377657220766563746f7220323a2070617274",
            "2031206f6620612074776f2d706172742062756e646c652c206c6f6e6720656e",
            "6f75676820666f7220746865203132382d62797465206275636b6574",
        ),
    ),
    (
        "ad",
        concat!(
            "0x",
            "010000000000000001000000000000000100000008d75a980182b10ab7d54bfe",
            "d3c964073a0ee172f3daa62325af021a68f707511a0000000000000000000000",
            "000000000100000000000186a000000000000004d20100010203040506070809",
            "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00010002",
        ),
    ),
    (
        "padded",
        concat!(
            "0x",
            "0000005c7665696c206b6e6f776e2d616e7377657220766563746f7220323a20",
            "706172742031206f6620612074776f2d706172742062756e646c652c206c6f6e",
            "6720656e6f75676820666f7220746865203132382d62797465206275636b6574",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ),
    ("r", "0x43698240e79ab687f734ad880d098ce96f62a0989135b95f765d58941397da37"),
    ("k", "0x4d2189da664701c46a8e1c6bea46398d6ea7dd6b8de67661283007976253e142"),
    (
        "U",
        concat!(
            "0x",
            "16ac76143fd6ef5db430a09209ccc4202244c514bbc3e2b04a9a6a57960773a3",
            "e0b51652d252a4480fef0693440886ac118bd0412815d5cfe974ff4c5805f7dc",
            "d1a57a4a835f33a260dc821c4fa09b3a0b4a0f9578d8c482235ffff03d80fff3",
        ),
    ),
    (
        "K",
        concat!(
            "0x",
            "b4c907f17bb3f73b929570731847a36ee80a3e6bd9a5d6791f52edb15fcb076d",
            "37d1cba29875da301c6fe8d13bd7502a",
        ),
    ),
    ("key", "0xdc7640eadedaf721bba0519a15c2c42b41875a50af66fa315f45829d3c2bd1d8"),
    ("nonce", "0x000000000000000000000000"),
    (
        "body",
        concat!(
            "0x",
            "6eb6152aab40e79bcba6bd9d1fc1a412c499871cde306606f15e2dfc24ebdcc2",
            "f62d1617a96f188399770a934af76d230f7bb1bf47b6968d386791c76f596aba",
            "17985d67f95f0f042514790c338f820806d285fd838ea4a6c47c98cd242535d7",
            "f8a9ac536c3c9b1bfe6f1bf32dd0d8c5a75135af283aa1912dd403458dd034f7",
            "7463fc67aec6fe19b741652069705070",
        ),
    ),
    ("k/h", "0x38c5cdda0928547cc3835cb05033e4763fbf829d0d07eb829fafb5986aeabf32"),
    (
        "A'",
        concat!(
            "0x",
            "01fe5786c042c4da6d17f5396654350d6422bcb1844b6bad6fe243715bfec12b",
            "27744ba2dbfe22fe6cc458ddeb3c2f2910ae0be58e915653a3254f71950301d4",
            "a17771d2f00dcf2691120be01f2e7d25391d7e2e35c056787bbe44d617fef8a1",
        ),
    ),
    (
        "A",
        concat!(
            "0x",
            "a6228410cb8199c63ad6412657a72013e0228318e1b8653111b402674d7e2899",
            "430779108a663c32ca0ce830a770bede",
        ),
    ),
    ("H(body)", "0xeb1ca868862f2e0ecc0148b938ab6e00bd544b3c4f12eaa8a361b8209b075257"),
    (
        "H_c",
        concat!(
            "0x",
            "efca5990137bd99d9e3ff34f49ee428554a57ff2f538a8327e5de90016629704",
            "1177cdffb22370bdb64c111bc88dbcbc51d9a7a822b674433edd76592380ba63",
        ),
    ),
    ("c", "0x6c7ce6c78074214d8ab590cd478c341af7d709d1b95cc36fedc8d7030cc9ff44"),
    ("z", "0x0f5d73827874678d2a55f5e5287893af217de1b38c0b19ed80f72b30d1b8a444"),
    (
        "ciphertext",
        concat!(
            "0x",
            "010000000000000001000000000000000100000008d75a980182b10ab7d54bfe",
            "d3c964073a0ee172f3daa62325af021a68f707511a0000000000000000000000",
            "000000000100000000000186a000000000000004d20100010203040506070809",
            "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0001000216ac76143fd6",
            "ef5db430a09209ccc4202244c514bbc3e2b04a9a6a57960773a3e0b51652d252",
            "a4480fef0693440886ac118bd0412815d5cfe974ff4c5805f7dcd1a57a4a835f",
            "33a260dc821c4fa09b3a0b4a0f9578d8c482235ffff03d80fff301fe5786c042",
            "c4da6d17f5396654350d6422bcb1844b6bad6fe243715bfec12b27744ba2dbfe",
            "22fe6cc458ddeb3c2f2910ae0be58e915653a3254f71950301d4a17771d2f00d",
            "cf2691120be01f2e7d25391d7e2e35c056787bbe44d617fef8a10f5d73827874",
            "678d2a55f5e5287893af217de1b38c0b19ed80f72b30d1b8a444000000906eb6",
            "152aab40e79bcba6bd9d1fc1a412c499871cde306606f15e2dfc24ebdcc2f62d",
            "1617a96f188399770a934af76d230f7bb1bf47b6968d386791c76f596aba1798",
            "5d67f95f0f042514790c338f820806d285fd838ea4a6c47c98cd242535d7f8a9",
            "ac536c3c9b1bfe6f1bf32dd0d8c5a75135af283aa1912dd403458dd034f77463",
            "fc67aec6fe19b741652069705070",
        ),
    ),
    ("id", "0xab3405f593a3f95ecd2199700d8feced8be68ea81ee1d6886de4f4c31dd914cf"),
];

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// `wide(SHA3-512(label))`: how the vectors' fixed `r` and `k` were chosen.
fn fixed_scalar(label: &str) -> Scalar {
    curve::scalar_from_wide(&Sha3_512::digest(label.as_bytes()).into())
}

/// One `label = value` line per value, hex wrapped at 64 digits, continuation lines indented.
fn render(values: &[(&str, &str)]) -> String {
    const WIDTH: usize = 10;
    let mut out = String::new();
    for (label, value) in values {
        let (prefix, digits) = value.strip_prefix("0x").map_or(("", *value), |d| ("0x", d));
        let mut chunks = digits.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap());
        out.push_str(&format!("{label:<WIDTH$} = {prefix}{}\n", chunks.next().unwrap_or("")));
        for chunk in chunks {
            out.push_str(&format!("{:width$}{chunk}\n", "", width = WIDTH + 5));
        }
    }
    out
}

/// The same values as Rust constants, for pasting above.
fn as_rust(values: &[(&str, &str)]) -> String {
    let mut out = String::from("&[\n");
    for (label, value) in values {
        if value.len() <= 70 {
            out.push_str(&format!("    ({label:?}, {value:?}),\n"));
        } else {
            out.push_str(&format!(
                "    (\n        {label:?},\n        concat!(\n            \"0x\",\n"
            ));
            for chunk in value.as_bytes()[2..].chunks(64) {
                out.push_str(&format!("            {:?},\n", std::str::from_utf8(chunk).unwrap()));
            }
            out.push_str("        ),\n    ),\n");
        }
    }
    out.push_str("]\n");
    out
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Checks that the computed values equal the constants, and that the document holds them.
fn check_block(name: &str, computed: &[(&'static str, String)], constants: &[(&str, &str)]) {
    let computed: Vec<(&str, &str)> = computed.iter().map(|(l, v)| (*l, v.as_str())).collect();
    assert!(
        computed == constants,
        "{name}: the code computes other values than the constants; if the change is meant, \
         paste these constants\n{}\nand this block into CIPHERTEXT.md\n{}",
        as_rust(&computed),
        render(&computed),
    );
    assert!(
        squash(SPEC).contains(&squash(&render(constants))),
        "{name}: CIPHERTEXT.md does not hold this block (whitespace aside):\n{}",
        render(constants),
    );
}

fn committee() -> DevCommittee {
    DevCommittee::from_seed(ChainId(1), Eon(1), KEYPERS, THRESHOLD, SEED).unwrap()
}

fn fee_payer() -> PublicKeyBytes {
    let secret: [u8; 32] = hex::decode(FEE_PAYER_SECRET).unwrap().try_into().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&secret);
    PublicKeyBytes(key.verifying_key().to_bytes())
}

/// The master secret `x = f(0)`, interpolated from the default responders' shares.
fn master_secret(c: &DevCommittee) -> Scalar {
    let set = c.pks.default_responders();
    set.members()
        .iter()
        .zip(set.lagrange_coefficients())
        .map(|(m, l)| l * c.shares[usize::from(m.get()) - 1].secret())
        .sum()
}

#[test]
fn group_constants() {
    let q_minus_1 = (-Scalar::ONE).to_bytes_be();
    assert_eq!(*q_minus_1.last().unwrap(), 0, "q ends in 0x01");
    let mut q = q_minus_1;
    q[31] = 1;
    let h_inv = curve::cofactor_inverse();
    let h = curve::scalar_from_u128(&G1_COFACTOR.to_le_bytes());
    assert_eq!(h * h_inv, Scalar::ONE);
    let computed = [
        ("q", hex(&q)),
        ("h", hex(&G1_COFACTOR.to_be_bytes())),
        ("1/h", hex(&h_inv.to_bytes_be())),
        ("g1", hex(&G1Affine::generator().to_uncompressed())),
    ];
    check_block("group constants", &computed, CONSTANTS);
}

#[test]
fn key_set() {
    let c = committee();
    let x = master_secret(&c);
    let x1 = c.pks.key_g1();
    assert_eq!((G1Affine::generator() * x).to_affine(), *x1);
    let mut computed = vec![];
    for (label, share) in ["x_1", "x_2", "x_3"].into_iter().zip(&c.shares) {
        computed.push((label, hex(&share.secret().to_bytes_be())));
    }
    computed.push(("x", hex(&x.to_bytes_be())));
    computed.push(("X1", hex(&x1.to_compressed())));
    computed.push(("X2", hex(&c.pks.key_g2().to_compressed())));
    check_block("key set", &computed, KEY_SET);
}

/// Encrypts `payload` with `ad` and the fixed randomness of `vector`, recomputes every
/// intermediate value step by step, and returns them in the order of `CIPHERTEXT.md`.
fn vector(vector: &str, ad: &TxMeta, payload: &[u8]) -> Vec<(&'static str, String)> {
    let c = committee();
    let r = fixed_scalar(&format!("veil/kat/{vector}/r"));
    let k = fixed_scalar(&format!("veil/kat/{vector}/k"));
    let ct = c.pks.encrypt_with(ad, payload, &EncryptionSecrets::fixed(r, k)).unwrap();
    let bytes = ct.as_bytes();

    // Step by step, as CIPHERTEXT.md describes it.
    let mut ad_bytes = Vec::new();
    crate::ciphertext::AssociatedData::encode_into(ad, &mut ad_bytes);
    let padded = pad(payload).unwrap();
    let g = G1Projective::generator();
    let u = (g * r).to_affine();
    let big_k = (G1Projective::from(*c.pks.key_g1()) * r).to_affine();
    assert_eq!(big_k, (u * master_secret(&c)).to_affine(), "K = r·X1 = x·U");
    let u_bytes = u.to_uncompressed();
    let key = payload_key(&big_k, &u_bytes);
    let nonce = [0u8; 12];
    let body = ChaCha20Poly1305::new(Key::from_slice(&key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &padded, aad: &ad_bytes })
        .unwrap();
    let k_over_h = k * curve::cofactor_inverse();
    let a_prime = (g * k_over_h).to_affine();
    let a = curve::mul_by_cofactor(&G1Projective::from(a_prime)).to_affine();
    assert_eq!(a, (g * k).to_affine(), "h·A′ = k·g1");
    let a_bytes = a_prime.to_uncompressed();
    let body_hash = Sha3_256::digest(&body);
    let mut h = Sha3_512::new();
    h.update([0x1c]);
    h.update(b"veil/v1/ciphertext-challenge");
    h.update(&ad_bytes);
    h.update(u_bytes);
    h.update(a_bytes);
    h.update(body_hash);
    let challenge_hash: [u8; 64] = h.finalize().into();
    let c_scalar = curve::scalar_from_wide(&challenge_hash);
    assert_eq!(c_scalar, challenge(&ad_bytes, &u_bytes, &a_bytes, &body));
    let z = k + c_scalar * r;
    let mut expected = ad_bytes.clone();
    expected.extend_from_slice(&u_bytes);
    expected.extend_from_slice(&a_bytes);
    expected.extend_from_slice(&z.to_bytes_be());
    expected.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    expected.extend_from_slice(&body);
    assert_eq!(bytes, expected.as_slice(), "the encoding is ad ‖ U ‖ A′ ‖ z ‖ len ‖ body");
    assert_eq!(ct.id().0, <[u8; 32]>::from(Sha3_256::digest(bytes)));
    c.pks.verify(&ct).unwrap();

    // And back: the keypers' shares of the dev committee open it.
    let (opened, plain) = c.decrypt(bytes).unwrap();
    assert_eq!((opened.ad(), plain.as_slice()), (ad, payload));

    vec![
        ("payload", hex(payload)),
        ("ad", hex(&ad_bytes)),
        ("padded", hex(&padded)),
        ("r", hex(&r.to_bytes_be())),
        ("k", hex(&k.to_bytes_be())),
        ("U", hex(&u_bytes)),
        ("K", hex(&big_k.to_compressed())),
        ("key", hex(&key)),
        ("nonce", hex(&nonce)),
        ("body", hex(&body)),
        ("k/h", hex(&k_over_h.to_bytes_be())),
        ("A'", hex(&a_bytes)),
        ("A", hex(&a.to_compressed())),
        ("H(body)", hex(&body_hash)),
        ("H_c", hex(&challenge_hash)),
        ("c", hex(&c_scalar.to_bytes_be())),
        ("z", hex(&z.to_bytes_be())),
        ("ciphertext", hex(bytes)),
        ("id", hex(&ct.id().0)),
    ]
}

#[test]
fn vector_1_one_transaction() {
    let ad = TxMeta {
        chain_id: ChainId(1),
        eon: Eon(1),
        rollup: RollupId(7),
        fee_payer: fee_payer(),
        max_fee: Amount(2_500_000_000),
        gas_limit: 21_000,
        expiry_slot: Slot(1_000),
        bundle: None,
    };
    let computed = vector("vector-1", &ad, b"veil known-answer vector 1");
    check_block("vector 1", &computed, VECTOR_1);
}

#[test]
fn vector_2_bundle_part() {
    let mut id = [0u8; 32];
    id.iter_mut().zip(0u8..).for_each(|(b, i)| *b = i);
    let ad = TxMeta {
        chain_id: ChainId(1),
        eon: Eon(1),
        rollup: RollupId(8),
        fee_payer: fee_payer(),
        max_fee: Amount(1),
        gas_limit: 100_000,
        expiry_slot: Slot(1_234),
        bundle: Some(BundleRef { id: BundleId(id), index: 1, count: 2 }),
    };
    let payload = b"veil known-answer vector 2: part 1 of a two-part bundle, long enough for the 128-byte bucket";
    assert!(payload.len() + 4 > 64 && payload.len() + 4 <= 128);
    let computed = vector("vector-2", &ad, payload);
    check_block("vector 2", &computed, VECTOR_2);
}

/// Groups the digits of `n` by thousands, as the document writes numbers.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The "Limits" table of `CIPHERTEXT.md`, rendered from the constants.
fn limits_table() -> String {
    let mut out = String::from(
        "| bucket | payload lengths | body | ciphertext | ciphertext of a bundle part |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    let mut smallest = 0;
    for &bucket in &PADDING_BUCKETS {
        out.push_str(&format!(
            "| {} | {}–{} | {} | {} | {} |\n",
            thousands(bucket),
            thousands(smallest),
            thousands(bucket - 4),
            thousands(bucket + 16),
            thousands(ciphertext_len(bucket, false)),
            thousands(ciphertext_len(bucket, true)),
        ));
        smallest = bucket - 3;
    }
    out.push_str(&format!(
        "\nThe largest payload is **{} bytes**, the largest ciphertext **{} bytes** (a bundle \
         part in the last bucket), and a bundle has 1 to {} parts.\n",
        thousands(MAX_PAYLOAD),
        thousands(MAX_CIPHERTEXT_LEN),
        MAX_BUNDLE_PARTS,
    ));
    out
}

#[test]
fn limits_table_matches_the_constants() {
    assert_eq!(MAX_PAYLOAD, 6_140);
    assert_eq!(MAX_CIPHERTEXT_LEN, 6_510);
    let table = limits_table();
    assert!(
        squash(SPEC).contains(&squash(&table)),
        "CIPHERTEXT.md (\"Limits\") does not hold this table (whitespace aside):\n{table}"
    );
    // Every bucket's ciphertext, decoded, is accepted; one byte of payload more is refused.
    let c = committee();
    let mut rng = crate::dev::rng(1);
    let mut ad = c.ad(1, 1);
    ad.bundle = Some(BundleRef { id: BundleId([9; 32]), index: 0, count: MAX_BUNDLE_PARTS });
    for &bucket in &PADDING_BUCKETS {
        let ct = c.pks.encrypt(&ad, &vec![1; bucket - 4], &mut rng).unwrap();
        assert_eq!(ct.encoded_len(), ciphertext_len(bucket, true));
        crate::Ciphertext::from_bytes(ct.as_bytes()).unwrap();
    }
    assert!(c.pks.encrypt(&ad, &vec![1; MAX_PAYLOAD + 1], &mut rng).is_err());
    ad.bundle = Some(BundleRef { id: BundleId([9; 32]), index: 0, count: MAX_BUNDLE_PARTS + 1 });
    assert!(c.pks.encrypt(&ad, b"", &mut rng).is_err());
}
