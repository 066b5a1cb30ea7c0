//! `veil dev-decrypt` as a process: the known-answer vector of `crypto/CIPHERTEXT.md`
//! decrypts to its payload, and each broken ciphertext is refused with the check it fails.
//! Also the one check of CIPHERTEXT.md's "Limits" that needs the crates above veil-crypto: the
//! padding buckets fit the ingress's admission and frame limits, and stop there.

use std::process::{Command, Output};

use veil_crypto::dev::DevCommittee;
use veil_crypto::{MAX_CIPHERTEXT_LEN, PADDING_BUCKETS};
use veil_primitives::{hexbytes, Amount, ChainId, Eon, RollupId, Slot, TxMeta};

const VEIL: &str = env!("CARGO_BIN_EXE_veil");
const SPEC: &str = include_str!("../../../crypto/CIPHERTEXT.md");

/// The hex value of `label` in the section of CIPHERTEXT.md that starts with `heading`,
/// continuation lines joined.
fn spec_value(heading: &str, label: &str) -> String {
    let section = &SPEC[SPEC.find(heading).expect("heading in CIPHERTEXT.md")..];
    let mut lines = section
        .lines()
        .skip_while(|l| l.split_once('=').is_none_or(|(name, _)| name.trim() != label));
    let first = lines.next().expect("label in the section");
    let mut value = first.split_once('=').unwrap().1.trim().to_string();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.contains('=') || line.starts_with("```") {
            break;
        }
        value.push_str(line);
    }
    value
}

/// `veil dev-decrypt` for the committee of the vectors (seed 7, 3 keypers, t = 1), with
/// `extra` arguments.
fn dev_decrypt(extra: &[&str]) -> Output {
    Command::new(VEIL)
        .args(["dev-decrypt", "--keypers", "3", "--threshold", "1"])
        .args(extra)
        .output()
        .unwrap()
}

fn refused_by(out: &Output) -> String {
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TEST committee"), "the warning is printed: {stderr}");
    let at = stderr.find("check failed: ").unwrap_or_else(|| panic!("{stderr}"));
    stderr[at + "check failed: ".len()..].split(':').next().unwrap().to_string()
}

#[test]
fn dev_decrypt_opens_the_known_answer_vector_and_names_failed_checks() {
    let vector = "### Vector 1";
    let ct = spec_value(vector, "ciphertext");
    let out = dev_decrypt(&["--seed", "7", "--ciphertext", &ct]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("id          {}", spec_value(vector, "id"))), "{stdout}");
    assert!(stdout.contains(&format!("hex         {}", spec_value(vector, "payload"))));
    assert!(stdout.contains("text        \"veil known-answer vector 1\""), "{stdout}");
    assert!(stdout.contains("rollup      7\n") && stdout.contains("bundle      none\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING"));

    // The same bytes from a file, raw and as hex; a bundle part shows its bundle.
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("ct.bin");
    std::fs::write(&raw, hexbytes::decode(&ct).unwrap()).unwrap();
    let out = dev_decrypt(&["--seed", "7", "--file", raw.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = tmp.path().join("ct.hex");
    std::fs::write(&text, format!("{}\n", spec_value("### Vector 2", "ciphertext"))).unwrap();
    let out = dev_decrypt(&["--seed", "7", "--file", text.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("part 1 of 2"), "{stdout}");

    // Each check, in the order nodes apply them.
    assert_eq!(refused_by(&dev_decrypt(&["--seed", "7", "--ciphertext", "0x01"])), "decoding");
    let other_chain = dev_decrypt(&["--seed", "7", "--chain-id", "2", "--ciphertext", &ct]);
    assert_eq!(refused_by(&other_chain), "context");
    let mut tampered = hexbytes::decode(&ct).unwrap();
    *tampered.last_mut().unwrap() ^= 1;
    let tampered = hexbytes::encode(&tampered);
    assert_eq!(refused_by(&dev_decrypt(&["--seed", "7", "--ciphertext", &tampered])), "proof");
    // Another dev committee of the same chain and eon: the proof holds, the key is not theirs.
    assert_eq!(refused_by(&dev_decrypt(&["--seed", "8", "--ciphertext", &ct])), "aead");

    // A ciphertext made here, with a non-UTF-8 payload: hex only.
    let c = DevCommittee::from_seed(ChainId(1), Eon(1), 3, 1, 9).unwrap();
    let ad = TxMeta {
        chain_id: ChainId(1),
        eon: Eon(1),
        rollup: RollupId(2),
        fee_payer: crate::payers::public(3),
        max_fee: Amount(4),
        gas_limit: 5,
        expiry_slot: Slot(6),
        bundle: None,
    };
    let ct = c.pks.encrypt(&ad, &[0xff, 0xfe], &mut veil_crypto::dev::rng(1)).unwrap();
    let out = dev_decrypt(&["--seed", "9", "--ciphertext", &hexbytes::encode(ct.as_bytes())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hex         0xfffe\n") && !stdout.contains("text"), "{stdout}");
}

/// CIPHERTEXT.md's buckets stop at the largest one the ingress admits by default: the largest
/// ciphertext (a bundle part in the last bucket) is admissible and fits a frame, and a next
/// bucket one step further (the same step as the last) would not be admissible.
#[test]
fn padding_buckets_stop_at_the_admission_limit() {
    let admission = veil_mempool::pool::DEFAULT_MAX_CIPHERTEXT_SIZE;
    let frame = veil_wire::ingress::DEFAULT_MAX_FRAME_SIZE;
    assert!(MAX_CIPHERTEXT_LEN <= admission, "{MAX_CIPHERTEXT_LEN} > {admission}");
    // A submit frame adds a few header bytes and varints (and, with v2, a 64-byte signature).
    assert!(MAX_CIPHERTEXT_LEN + 256 <= frame, "{MAX_CIPHERTEXT_LEN} + framing > {frame}");
    let [.., before, last] = PADDING_BUCKETS;
    let next = last + (last - before);
    assert!(MAX_CIPHERTEXT_LEN - last + next > admission, "a bucket of {next} would fit too");
    assert_eq!(
        usize::from(veil_crypto::MAX_BUNDLE_PARTS),
        veil_mempool::pool::DEFAULT_MAX_BUNDLE_PARTS
    );
    // A whole bundle of the most parts, each of the largest size, travels in one frame: the
    // body is a request id, a deadline, a part count and each part with its length (varints
    // of at most 10, 5, 3 and 3 bytes).
    let bundle = 10 + 5 + 3 + usize::from(veil_crypto::MAX_BUNDLE_PARTS) * (3 + MAX_CIPHERTEXT_LEN);
    assert!(
        bundle + 2 <= frame,
        "a full bundle of {bundle} bytes does not fit a {frame}-byte frame"
    );
}
