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
use crate::curve::{self, G1_CLEAR};
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
    ("h", "0xd201000000010001"),
    ("1/h", "0x73eda753299d7d47a5e80b39939ed3351400480189fd0000ffff000000000001"),
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
            "020000000000000001000000000000000100000007d75a980182b10ab7d54bfe",
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
    ("r/h", "0x18c2a54c051cbb2dcd0484aea320af946f97f67d0a6f01934f187132fcadf470"),
    (
        "U'",
        concat!(
            "0x",
            "199b3a70ba34db431e94e2a2407dcadf745700c6ae7098d4be80468e220258f5",
            "571a24740ca169844a7f93c3a373f5a51554aa1347ca49fc0041c2098ba4fa1c",
            "ae495e6d5136c110a92d0958e72ed2f9a6f6a05e17baf062ce892ef124b6528e",
        ),
    ),
    (
        "U",
        concat!(
            "0x",
            "a99188888ac5ebd7e64e0c4a83eee7e4115f9f4a879c681d8f1f7ce0ff5246b4",
            "862ab69c8f927643825d79974fb85ba5",
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
    ("key", "0x0664d763c082138d3eb4d718987b835c883ab2974cbeceb79a0f72f1d480a0bb"),
    ("nonce", "0x000000000000000000000000"),
    (
        "body",
        concat!(
            "0x",
            "43c4644bb632dcede961c60758cfc19979516777574c02b100eaeadb660d2498",
            "131940110bdd2071b87776ff8c1153647384731303099bdf8d506debe59a72cb",
            "36259f397a5332583e76ffae2f7bd99c",
        ),
    ),
    ("k/h", "0x5a1e599bc2520ea921e48f40dd09914eab5001ef4b00cf3d32bf97ff30cdefb3"),
    (
        "A'",
        concat!(
            "0x",
            "0664ace23aa9eaac6029c72d4ba96e9b567163df678e5c5d75c33120b069072d",
            "fa5ef1d0ddec5bb6b9ecf1c969bbca3008652674375298b2dc2d9ad78bd2eeed",
            "c316c6d038fa5c3b9d231365e69204a374228c77c5c66bff875b2ee68a7bf399",
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
    ("H(body)", "0xc173af9bd9c5ac10515d50454669e531ec850f74449073b68bf5f96d67db3e52"),
    (
        "H_c",
        concat!(
            "0x",
            "9d3bdd93202858dd2024b67380c1315077e5c1e3d840294d38eed92cd5570128",
            "c21d49a5d50aeb509124e3ca309e4564ad0ac4f7bffbb697c76d59eb3c3c7f51",
        ),
    ),
    ("c", "0x6183107e7d53797d11e7d89338e2cdb27d6bd42e952299dd3d14a30a2ace88bf"),
    ("z", "0x1176ec2bf4dad9c01c5a1a0bbce5d5df094e1be3df2e8ba998bdbc1a23da4f22"),
    (
        "ciphertext",
        concat!(
            "0x",
            "020000000000000001000000000000000100000007d75a980182b10ab7d54bfe",
            "d3c964073a0ee172f3daa62325af021a68f707511a0000000000000000000000",
            "009502f900000000000000520800000000000003e800199b3a70ba34db431e94",
            "e2a2407dcadf745700c6ae7098d4be80468e220258f5571a24740ca169844a7f",
            "93c3a373f5a51554aa1347ca49fc0041c2098ba4fa1cae495e6d5136c110a92d",
            "0958e72ed2f9a6f6a05e17baf062ce892ef124b6528e0664ace23aa9eaac6029",
            "c72d4ba96e9b567163df678e5c5d75c33120b069072dfa5ef1d0ddec5bb6b9ec",
            "f1c969bbca3008652674375298b2dc2d9ad78bd2eeedc316c6d038fa5c3b9d23",
            "1365e69204a374228c77c5c66bff875b2ee68a7bf3991176ec2bf4dad9c01c5a",
            "1a0bbce5d5df094e1be3df2e8ba998bdbc1a23da4f220000005043c4644bb632",
            "dcede961c60758cfc19979516777574c02b100eaeadb660d2498131940110bdd",
            "2071b87776ff8c1153647384731303099bdf8d506debe59a72cb36259f397a53",
            "32583e76ffae2f7bd99c",
        ),
    ),
    ("id", "0xb1ff869f3a3835456dbe06fa39bc351e0057e075377c5f12da572d1cd17a3cf8"),
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
            "020000000000000001000000000000000100000008d75a980182b10ab7d54bfe",
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
    ("r/h", "0x3d7a5792bdbbbdfa22923a7966fa355229af88fb9abe0d540bc336a75fea947f"),
    (
        "U'",
        concat!(
            "0x",
            "029706a1774c20f5675381c659ea95eb302c1bb02a11e6a03298a8a11cf201bb",
            "43503a391cae59f17cce1908741eccfa0d593ba084cef43b269710a41689040f",
            "a4970c0452e3239be495637ae987b82d629c01a036a2848381e822c695939605",
        ),
    ),
    (
        "U",
        concat!(
            "0x",
            "b6ac76143fd6ef5db430a09209ccc4202244c514bbc3e2b04a9a6a57960773a3",
            "e0b51652d252a4480fef0693440886ac",
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
    ("key", "0x4c3577cfebeab59ebcb92b2c096952c5217c751d4500bfeff21dd5f3bd768f40"),
    ("nonce", "0x000000000000000000000000"),
    (
        "body",
        concat!(
            "0x",
            "f9b4169d640949516ad23fa808150fcea2a4982620dec205beac43406467f088",
            "68d9d805c21732d02d6a448e58d8d70a1a9152c30bdd8f6c9523c502f027666e",
            "061ce7e8efda2880e7672dbe1a7a388d1053c01b9bfa3a453682b101bb5f5513",
            "d238a5c33edfe17dc8cf48afecca24e37275eef6e9d32b4fdc21483efc97af39",
            "fc969ae8e1155a47e2199452be4b79c4",
        ),
    ),
    ("k/h", "0x19a53cf115a0efaa9ce405fb7447c1dc625a97cc4998ad8fc53cca41d9582f11"),
    (
        "A'",
        concat!(
            "0x",
            "11e5074f888cc82ac1e17aa28e3edb02c0316fa3eccc32e2483d17e5150a9839",
            "d99bcb9c19dcc287482ce15820e6214c026e7927b80dc7c369a143ec312d907e",
            "27e126dbd27b0d9246e3e8634fba4fe00091d2bab28cf8788343f04a490a8bc4",
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
    ("H(body)", "0x88b00cec8517d6b441699e3fffea3f591a14f9ae64ef04171a13268847517fb5"),
    (
        "H_c",
        concat!(
            "0x",
            "6bd89a90276a63fea269e380bc094a80c68849388ba1c7c3bc587c80b9ba1e93",
            "f933c0a7a00453b0974dfe2b365b1cc69a7a6f40a4394ec33d991ffcae160ef4",
        ),
    ),
    ("c", "0x0f93c6c986e31279686aac2044707be73434b4d82d9941dd84cda402d76d54e9"),
    ("z", "0x1ade17de7bcf536c2f2dbd9f2def95e258aa0acb5200ae1f188640779c9b06bd"),
    (
        "ciphertext",
        concat!(
            "0x",
            "020000000000000001000000000000000100000008d75a980182b10ab7d54bfe",
            "d3c964073a0ee172f3daa62325af021a68f707511a0000000000000000000000",
            "000000000100000000000186a000000000000004d20100010203040506070809",
            "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00010002029706a1774c",
            "20f5675381c659ea95eb302c1bb02a11e6a03298a8a11cf201bb43503a391cae",
            "59f17cce1908741eccfa0d593ba084cef43b269710a41689040fa4970c0452e3",
            "239be495637ae987b82d629c01a036a2848381e822c69593960511e5074f888c",
            "c82ac1e17aa28e3edb02c0316fa3eccc32e2483d17e5150a9839d99bcb9c19dc",
            "c287482ce15820e6214c026e7927b80dc7c369a143ec312d907e27e126dbd27b",
            "0d9246e3e8634fba4fe00091d2bab28cf8788343f04a490a8bc41ade17de7bcf",
            "536c2f2dbd9f2def95e258aa0acb5200ae1f188640779c9b06bd00000090f9b4",
            "169d640949516ad23fa808150fcea2a4982620dec205beac43406467f08868d9",
            "d805c21732d02d6a448e58d8d70a1a9152c30bdd8f6c9523c502f027666e061c",
            "e7e8efda2880e7672dbe1a7a388d1053c01b9bfa3a453682b101bb5f5513d238",
            "a5c33edfe17dc8cf48afecca24e37275eef6e9d32b4fdc21483efc97af39fc96",
            "9ae8e1155a47e2199452be4b79c4",
        ),
    ),
    ("id", "0x1a7d5df40ac4db54983f53408e588e1176bdd096d58d748c969c27dd4ecbf447"),
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
    assert_eq!(Scalar::from(G1_CLEAR) * h_inv, Scalar::ONE);
    let computed = [
        ("q", hex(&q)),
        ("h", hex(&G1_CLEAR.to_be_bytes())),
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
    let r_over_h = r * curve::cofactor_inverse();
    let u_prime = (g * r_over_h).to_affine();
    let u = curve::clear_cofactor(&G1Projective::from(u_prime)).to_affine();
    assert_eq!(u, (g * r).to_affine(), "U = h·U′ = r·g1");
    let big_k = (G1Projective::from(*c.pks.key_g1()) * r).to_affine();
    assert_eq!(big_k, (u * master_secret(&c)).to_affine(), "K = r·X1 = x·U");
    let u_bytes = u_prime.to_uncompressed();
    let key = payload_key(&big_k, &u_bytes);
    let nonce = [0u8; 12];
    let body = ChaCha20Poly1305::new(Key::from_slice(&key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &padded, aad: &ad_bytes })
        .unwrap();
    let k_over_h = k * curve::cofactor_inverse();
    let a_prime = (g * k_over_h).to_affine();
    let a = curve::clear_cofactor(&G1Projective::from(a_prime)).to_affine();
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
    assert_eq!(bytes, expected.as_slice(), "the encoding is ad ‖ U′ ‖ A′ ‖ z ‖ len ‖ body");
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
        ("r/h", hex(&r_over_h.to_bytes_be())),
        ("U'", hex(&u_bytes)),
        ("U", hex(&u.to_compressed())),
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
