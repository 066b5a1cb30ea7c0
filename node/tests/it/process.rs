//! Tests of the `veil` binary as a real process on 127.0.0.1.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use veil_builder_api::loadgen::{self, LoadConfig};
use veil_crypto::{Ciphertext, PublicKeySet};
use veil_primitives::TxId;
use veil_storage::sqlite::SqliteTxStore;
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::tls::{CertFingerprint, Pin};

const VEIL: &str = env!("CARGO_BIN_EXE_veil");

fn committee(dir: &Path) -> (PathBuf, PublicKeySet) {
    let path = dir.join("committee.json");
    let ok = Command::new(VEIL)
        .args(["dev-committee", "--seed", "3", "--out"])
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let pks = PublicKeySet::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, pks)
}

/// Starts `veil ingress` and reads its "listening ADDR fingerprint FP" line.
fn spawn_ingress(data: &Path, committee: &Path) -> (Child, SocketAddr, CertFingerprint) {
    let mut child = Command::new(VEIL)
        .args(["ingress", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--committee")
        .arg(committee)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"listening"), "{line}");
    (child, words[1].parse().unwrap(), words[3].parse().unwrap())
}

/// Runs `veil devnet` with a small committee and short slots; returns the JSON lines.
fn devnet(dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(VEIL)
        .args(["devnet", "--json", "--slots", "3", "--keypers", "4", "--threshold", "1"])
        .args(["--slot-ms", "1000", "--bid-window-ms", "400", "--release-timeout-ms", "2000"])
        .args(["--rate", "40", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The whole slot lifecycle: users' ciphertexts committed, released, decrypted into exactly
/// what they sent, and every payment paid out to the rollups, to the unit.
#[test]
fn devnet_runs_slots_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = devnet(&tmp.path().join("honest"), &[]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["slots"], 3);
    assert_eq!(summary["undecryptable"], 0);
    assert_eq!(summary["plaintext_mismatches"], 0);
    assert_eq!(summary["payments"], summary["payouts"]);
    assert_eq!(summary["fees_charged"], summary["fees_credited"]);
    assert_ne!(summary["fees_charged"], "0", "included transactions pay their fees");
    assert!(summary["included"].as_u64().unwrap() > 0, "{summary}");
    for slot in &lines[..lines.len() - 1] {
        assert_eq!(slot["payments"], slot["payouts"], "{slot}");
        assert_eq!(slot["fees_charged"], slot["fees_credited"], "{slot}");
    }
    // Rollup 2 registered itself and rollup 1 changed its terms over HTTP, each from a later
    // slot on.
    let updates: Vec<(String, u64)> = lines
        .iter()
        .filter_map(|l| Some((l["rollup_update"].as_str()?.to_string(), l["rollup"].as_u64()?)))
        .collect();
    assert_eq!(updates, vec![("register".to_string(), 2), ("configure".to_string(), 1)]);
    // A change whose slot came within the run is shown in force from that slot, not before.
    for t in lines.iter().filter(|l| l["rollup_terms"].is_u64()) {
        assert_ne!(t["reserve_before"], t["reserve"], "{t}");
        assert_eq!(t["slot"].as_u64().unwrap(), t["slot_before"].as_u64().unwrap() + 1);
    }

    // Keypers as separate `veil keyper` processes, linked over QUIC. A byzantine keyper in
    // the default responder set: blamed, and the slots still decrypt.
    let lines = devnet(&tmp.path().join("byzantine"), &["--byzantine", "1", "--keyper-processes"]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["undecryptable"], 0, "{summary}");
    assert!(summary["blamed"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(summary["plaintext_mismatches"], 0);

    // A silent keyper in the default responder set (keyper 1 of {1, 2}); keypers outside
    // it send only when asked: at half the release timeout the sequencer asks a set without
    // the silent one, and every slot decrypts.
    let lines = devnet(&tmp.path().join("one-silent"), &["--silent", "1", "--keyper-processes"]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["undecryptable"], 0, "{summary}");
    assert!(summary["included"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["plaintext_mismatches"], 0);

    // Below the threshold (separate processes again): every slot undecryptable, nothing
    // revealed.
    let lines = devnet(&tmp.path().join("silent"), &["--silent", "3", "--keyper-processes"]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["undecryptable"], 3, "{summary}");
    assert_eq!(summary["included"], 0);
}

/// kill -9 of the ingress under load; after restart every acknowledged id is present.
#[test]
fn kill_9_under_load_loses_no_acknowledged_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (committee_path, pks) = committee(&dir);
    let data = dir.join("data");
    let payers = veil_builder_api::loadgen::payer_keys(7, 16);
    let txs = veil_builder_api::loadgen::prepare_transactions(&pks, 2000, 512, 4, &payers);
    let (mut child, addr, fp) = spawn_ingress(&data, &committee_path);

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut client = ClientConfig::new(addr, Pin::Fingerprint(fp));
    client.request_timeout = Duration::from_secs(5);
    client.idle_timeout = Duration::from_secs(2);
    client.keep_alive = Some(Duration::from_millis(300));
    let config = LoadConfig { client: client.clone(), connections: 2, rate: None, window: 64 };
    let progress = Arc::new(AtomicU64::new(0));
    let load = rt.spawn(loadgen::run(config, txs.clone(), progress.clone()));
    // Kill while the load is running.
    while progress.load(Ordering::Relaxed) < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let report = rt.block_on(load).unwrap().unwrap();
    assert!(report.acked >= 300, "{report:?}");
    assert!(report.failed > 0, "the kill happened under load: {} acked of 2000", report.acked);

    // Every acknowledged id is in the database the killed process left behind.
    let (store, rows) = SqliteTxStore::open(&data).unwrap();
    let stored: HashSet<TxId> = rows.iter().map(|r| r.candidate.id).collect();
    drop(store);
    let missing = report.acked_ids.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(missing, 0, "{missing} acknowledged transactions lost of {}", report.acked);

    // A restarted ingress rebuilt its pool: resubmitting acknowledged ones is a duplicate.
    let (mut child, addr, fp2) = spawn_ingress(&data, &committee_path);
    assert_eq!(fp, fp2);
    let acked: HashSet<TxId> = report.acked_ids.iter().copied().collect();
    let sample: Vec<veil_wire::ingress::SignedCiphertext> = txs
        .iter()
        .filter(|t| acked.contains(&Ciphertext::from_bytes(&t.ciphertext).unwrap().id()))
        .take(20)
        .cloned()
        .collect();
    rt.block_on(async {
        let c =
            IngressClient::connect(ClientConfig::new(addr, Pin::Fingerprint(fp2))).await.unwrap();
        for b in sample {
            assert!(c.submit(b).await.unwrap().duplicate);
        }
        c.close().await;
    });
    child.kill().unwrap();
    child.wait().unwrap();
}
