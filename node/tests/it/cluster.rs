//! `veil sequencer` and `veil keyper` as separate processes on 127.0.0.1: the slot lifecycle
//! end to end, crashes of the sequencer at every stage, a keyper restarted mid-run, and a
//! forged second commitment refused by every keyper.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use veil_builder_api::{encrypt, RetryPolicy, Submitter};
use veil_crypto::PublicKeySet;
use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot, TxId, TxMeta};
use veil_sequencer::slot::{SlotRecord, TxResult};
use veil_storage::records::RecordLog;
use veil_wire::client::ClientConfig;
use veil_wire::tls::{CertFingerprint, Pin};

const VEIL: &str = env!("CARGO_BIN_EXE_veil");

fn free_udp() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A sequencer's configuration directory: committee, keys, TOML with fixed ports.
struct Setup {
    dir: PathBuf,
    pks: PublicKeySet,
    keypers: u16,
}

impl Setup {
    fn new(dir: &Path, keypers: u16, threshold: u16, slot_ms: u64) -> Setup {
        let run = |args: &[&str]| {
            let out = Command::new(VEIL).args(args).current_dir(dir).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        let (n, t) = (keypers.to_string(), threshold.to_string());
        run(&[
            "dev-committee",
            "--out",
            "committee.json",
            "--keyper-keys",
            "keys",
            "--keypers",
            &n,
            "--threshold",
            &t,
            "--seed",
            "9",
        ]);
        run(&["keygen", "--out", "sequencer.key"]);
        let out = Command::new(VEIL)
            .args(["keygen", "--out", "admin.key"])
            .current_dir(dir)
            .output()
            .unwrap();
        let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let rollups: String = (0..2)
            .map(|id| {
                format!(
                    "[[rollups]]\nid = {id}\nreserve = \"0\"\ngas_limit = 30000000\nadmin = \"{admin}\"\n\
                     treasury_bps = 8000\nuser_rebates_bps = 1500\nprotocol_fee_bps = 500\n"
                )
            })
            .collect();
        // The test payers these tests sign with, funded at genesis.
        let fee_payers: String = [7u8, 9]
            .iter()
            .map(|n| {
                format!(
                    "[[fee_payers]]\nkey = \"{}\"\ndeposit = \"{}\"\n",
                    crate::payers::public(*n),
                    crate::payers::FUNDS
                )
            })
            .collect();
        let config = format!(
            "data_dir = \"data\"\n\
             [ingress]\nlisten = \"{}\"\n\
             [keypers]\nlisten = \"{}\"\n\
             [metrics]\nlisten = \"{}\"\n\
             [slots]\nslot_ms = {slot_ms}\nbid_window_ms = {}\nrelease_timeout_ms = 2000\n\
             {rollups}{fee_payers}",
            free_udp(),
            free_udp(),
            free_tcp(),
            slot_ms / 2
        );
        std::fs::write(dir.join("veil.toml"), config).unwrap();
        let pks =
            PublicKeySet::from_json(&std::fs::read_to_string(dir.join("committee.json")).unwrap())
                .unwrap();
        Setup { dir: dir.to_path_buf(), pks, keypers }
    }
}

/// A running `veil sequencer` and the lines it printed.
struct Sequencer {
    child: Child,
    ingress: SocketAddr,
    fingerprint: CertFingerprint,
    keyper_addr: SocketAddr,
    key: String,
    http: String,
    lines: mpsc::Receiver<String>,
}

impl Sequencer {
    fn start(setup: &Setup, failpoint: Option<&str>) -> Sequencer {
        let mut cmd = Command::new(VEIL);
        cmd.args(["sequencer", "--config", "veil.toml"])
            .current_dir(&setup.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(f) = failpoint {
            cmd.env("VEIL_FAILPOINT", f);
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        out.read_line(&mut ready).unwrap();
        let w: Vec<&str> = ready.split_whitespace().collect();
        assert_eq!(w.first(), Some(&"ready"), "{ready}");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Sequencer {
            child,
            ingress: w[2].parse().unwrap(),
            fingerprint: w[4].parse().unwrap(),
            keyper_addr: w[6].parse().unwrap(),
            key: w[8].to_string(),
            http: format!("http://{}", w[10]),
            lines,
        }
    }

    /// Waits for the report of a slot at or after `slot`; returns the line.
    fn wait_slot(&self, slot: u64, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let line = self.lines.recv_timeout(left).ok()?;
            let n: Option<u64> = line
                .strip_prefix("slot ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok());
            if n.is_some_and(|n| n >= slot) {
                return Some(line);
            }
        }
        None
    }

    /// SIGTERM and wait.
    fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn spawn_keyper(setup: &Setup, seq: &Sequencer, i: u16, behaviour: &str) -> Child {
    spawn_keyper_at(setup, seq.keyper_addr, &seq.key, i, behaviour)
}

fn spawn_keyper_at(setup: &Setup, addr: SocketAddr, key: &str, i: u16, behaviour: &str) -> Child {
    let dir = setup.dir.join(format!("keyper-{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("log")).unwrap();
    Command::new(VEIL)
        .args(["keyper", "--committee", "committee.json", "--key-file"])
        .arg(format!("keys/keyper-{i}.json"))
        .args(["--sequencer", &addr.to_string(), "--sequencer-key", key])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--behaviour", behaviour])
        .env("RUST_LOG", "info")
        .current_dir(&setup.dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Users submitting in the background; what they sent and got acknowledged.
struct Users {
    sent: Arc<Mutex<HashMap<TxId, Vec<u8>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Users {
    fn start(setup: &Setup, seq: &Sequencer, per_second: u64) -> Users {
        let pks = &setup.pks;
        let (genesis_ms, slot_ms) = genesis(setup);
        let sent: Arc<Mutex<HashMap<TxId, Vec<u8>>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pks, addr, fp) = (pks.clone(), seq.ingress, seq.fingerprint);
        let (sent2, stop2) = (sent.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let submitter = Submitter::new(
                    ClientConfig::new(addr, Pin::Fingerprint(fp)),
                    RetryPolicy::default(),
                );
                let mut n = 0u64;
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    let meta = TxMeta {
                        chain_id: pks.chain_id(),
                        eon: pks.eon(),
                        rollup: RollupId((n % 2) as u32),
                        fee_payer: PublicKeyBytes(
                            SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes(),
                        ),
                        max_fee: Amount(u128::from(1 + n % 50)),
                        gas_limit: 21_000,
                        expiry_slot: Slot(now_ms().saturating_sub(genesis_ms) / slot_ms + 60),
                        bundle: None,
                    };
                    let payload = format!("cluster tx {n}").into_bytes();
                    let ct = encrypt(&pks, &meta, &payload).unwrap();
                    // Only acknowledged transactions count: a crash may refuse some.
                    if let Ok(id) =
                        submitter.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await
                    {
                        sent2.lock().unwrap().insert(id, payload);
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(1000 / per_second.max(1))).await;
                }
            });
        });
        Users { sent, stop, thread }
    }

    fn stop(self) -> HashMap<TxId, Vec<u8>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
        Arc::try_unwrap(self.sent).unwrap().into_inner().unwrap()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The genesis time and slot length the sequencer pinned in its data directory.
fn genesis(setup: &Setup) -> (u64, u64) {
    let g: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(setup.dir.join("data/genesis.json")).unwrap(),
    )
    .unwrap();
    (g["genesis_ms"].as_u64().unwrap(), g["timing"]["slot_ms"].as_u64().unwrap())
}

/// Every slot record the sequencer left in its log, by slot.
fn records(setup: &Setup) -> BTreeMap<u64, Vec<SlotRecord>> {
    let (_log, stored) = RecordLog::open(&setup.dir.join("data/sequencer.sqlite")).unwrap();
    let mut by_slot: BTreeMap<u64, Vec<SlotRecord>> = BTreeMap::new();
    for r in stored {
        let record: SlotRecord = serde_json::from_slice(&r.body).unwrap();
        by_slot.entry(r.slot.0).or_default().push(record);
    }
    by_slot
}

/// One signed commitment per slot, every published plaintext is what its user sent, and
/// every acknowledged transaction is either published or still pending in the store.
fn check_log(setup: &Setup, sent: &HashMap<TxId, Vec<u8>>) -> (usize, usize) {
    let by_slot = records(setup);
    let mut published: HashMap<TxId, TxResult> = HashMap::new();
    for (slot, recs) in &by_slot {
        let signed: HashSet<[u8; 32]> = recs
            .iter()
            .filter_map(|r| match r {
                SlotRecord::Signed { signed } => Some(signed.message.id()),
                _ => None,
            })
            .collect();
        assert!(signed.len() <= 1, "slot {slot}: {} different signed commitments", signed.len());
        for r in recs {
            if let SlotRecord::Decrypted { published: p } = r {
                for b in &p.blocks {
                    for t in &b.txs {
                        published.insert(t.id, t.result.clone());
                    }
                }
            }
        }
    }
    let mut included = 0;
    for (id, result) in &published {
        if let (TxResult::Included(plain), Some(expected)) = (result, sent.get(id)) {
            assert_eq!(plain, expected, "the plaintext of {id} is what its user sent");
            included += 1;
        }
    }
    let (store, rows) =
        veil_storage::sqlite::SqliteTxStore::open(&setup.dir.join("data/ingress")).unwrap();
    drop(store);
    let pending: HashSet<TxId> = rows.iter().map(|r| r.candidate.id).collect();
    let lost: Vec<&TxId> =
        sent.keys().filter(|id| !published.contains_key(id) && !pending.contains(id)).collect();
    let summary: Vec<String> = by_slot
        .iter()
        .map(|(slot, recs)| {
            let kinds: Vec<&str> = recs
                .iter()
                .map(|r| match r {
                    SlotRecord::Decided { commitment, .. } => {
                        if commitment.blocks.is_empty() {
                            "decided(empty)"
                        } else {
                            "decided"
                        }
                    }
                    SlotRecord::Signed { .. } => "signed",
                    SlotRecord::Decrypted { .. } => "decrypted",
                    SlotRecord::Settled { .. } => "settled",
                    SlotRecord::Undecryptable { .. } => "undecryptable",
                    SlotRecord::Registry { .. } => "registry",
                })
                .collect();
            format!("{slot}:{}", kinds.join("+"))
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged transactions lost of {} ({} published, {} pending); slots {}",
        lost.len(),
        sent.len(),
        published.len(),
        pending.len(),
        summary.join(" ")
    );
    (included, published.len())
}

fn no_equivocation_reported(setup: &Setup) {
    for i in 1..=setup.keypers {
        let log =
            std::fs::read_to_string(setup.dir.join(format!("keyper-{i}/log"))).unwrap_or_default();
        assert!(!log.contains("EQUIVOCATION"), "keyper {i} saw two commitments for a slot");
    }
}

/// The whole lifecycle over processes, then `kill -9` of the sequencer right after each
/// kind of record is durable (a failpoint aborts the process there), and a restart: no slot
/// ever gets a second commitment, nothing acknowledged is lost, every plaintext is right.
#[test]
fn sequencer_killed_at_every_stage_recovers_with_keyper_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let setup = Setup::new(tmp.path(), 4, 1, 500);
    let seq = Sequencer::start(&setup, None);
    let keypers: Vec<Child> = (1..=4).map(|i| spawn_keyper(&setup, &seq, i, "honest")).collect();
    let users = Users::start(&setup, &seq, 40);
    assert!(seq.wait_slot(3, Duration::from_secs(30)).is_some(), "slots run");
    let mut seq = seq;
    for kind in ["decided", "signed", "decrypted", "settled"] {
        // Arm the failpoint two slots ahead, on a fresh process.
        seq.stop();
        let genesis: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(setup.dir.join("data/genesis.json")).unwrap(),
        )
        .unwrap();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as u64;
        let slot = (now - genesis["genesis_ms"].as_u64().unwrap()) / 500 + 6;
        let armed = Sequencer::start(&setup, Some(&format!("after:{kind}:{slot}")));
        let status = {
            let mut child = armed.child;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let lines: Vec<String> = armed.lines.try_iter().collect();
                    let k1 = std::fs::read_to_string(setup.dir.join("keyper-1/log")).unwrap();
                    let tail: Vec<&str> = k1.lines().rev().take(30).collect();
                    panic!("the failpoint after {kind} at slot {slot} never fired: {lines:#?}\nkeyper 1: {tail:#?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(!status.success(), "aborted after {kind}");
        seq = Sequencer::start(&setup, None);
        assert!(
            seq.wait_slot(slot + 3, Duration::from_secs(30)).is_some(),
            "slots continue after a crash after {kind}"
        );
    }
    // Keypers 1 and 2 (the default responder set for t = 1) killed and restarted: they come
    // back with an empty validated set, catch up from the feed and by fetching, and carry the
    // slots alone once 3 and 4 are gone.
    let mut keypers: Vec<Option<Child>> = keypers.into_iter().map(Some).collect();
    for i in [0, 1] {
        kill(keypers[i].take().unwrap());
    }
    let (genesis_ms, slot_ms) = genesis(&setup);
    let now = now_ms().saturating_sub(genesis_ms) / slot_ms;
    assert!(seq.wait_slot(now + 2, Duration::from_secs(30)).is_some());
    for i in [0, 1] {
        keypers[i] = Some(spawn_keyper(&setup, &seq, i as u16 + 1, "honest"));
    }
    let now = now_ms().saturating_sub(genesis_ms) / slot_ms;
    assert!(seq.wait_slot(now + 4, Duration::from_secs(30)).is_some());
    for i in [2, 3] {
        kill(keypers[i].take().unwrap());
    }
    let now = now_ms().saturating_sub(genesis_ms) / slot_ms;
    // The slot in flight when 3 and 4 died may miss; after it, only 1 and 2 decrypt.
    let mut decrypted = 0;
    while decrypted < 3 {
        let line = seq.wait_slot(now + 2, Duration::from_secs(30)).expect("slots continue");
        assert!(!line.contains("undecryptable"), "restarted keypers 1 and 2 must decrypt: {line}");
        if !line.contains(" 0 committed") {
            decrypted += 1;
        }
    }
    let sent = users.stop();
    seq.stop();
    for k in keypers.into_iter().flatten() {
        kill(k);
    }
    let (included, published) = check_log(&setup, &sent);
    assert!(included > 20, "{included} of {} sent were included", sent.len());
    assert!(published >= included);
    no_equivocation_reported(&setup);
}

/// The sequencer key signs two different commitments for one slot (what a compromised or
/// buggy sequencer would do): every keyper process releases for the first, refuses the second
/// and reports it, and still refuses it after a `kill -9` and restart.
#[test]
fn a_forged_second_commitment_is_refused_by_every_keyper_even_after_a_restart() {
    use veil_mempool::pool::PoolConfig;
    use veil_mempool::validate::CommitteeValidator;
    use veil_node::services::ingress::{Ingress, IngressConfig};
    use veil_node::services::keyper_server::{KeyperServer, KeyperServerConfig};
    use veil_node::services::sequencer::SequencerInput;
    use veil_primitives::signed::Signed;
    use veil_sequencer::slot::KeyperRequest;
    use veil_sequencer::{Commitment, CommittedBlock};
    use veil_wire::client::IngressClient;

    let tmp = tempfile::tempdir().unwrap();
    let setup = Setup::new(tmp.path(), 4, 1, 500);
    let pks = setup.pks.clone();
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let key_hex = veil_primitives::hexbytes::encode(key.verifying_key().as_bytes());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (batches_tx, batches) = mpsc::channel::<SequencerInput>();
    let (ingress, server) = rt.block_on(async {
        let mut cfg = IngressConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            setup.dir.join("ingress"),
            PoolConfig::new(pks.chain_id()),
        );
        cfg.eons = vec![pks.eon()];
        let ingress = Arc::new(
            Ingress::start(cfg, Arc::new(CommitteeValidator::new(vec![pks.clone()])))
                .await
                .unwrap(),
        );
        let server = KeyperServer::start(
            KeyperServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls_dir: setup.dir.join("ingress"),
                pks: pks.clone(),
                sequencer_key: key.clone(),
            },
            ingress.clone(),
            batches_tx,
        )
        .unwrap();
        (ingress, server)
    });
    let addr = server.local_addr();
    let mut keypers: Vec<Child> =
        (1..=4).map(|i| spawn_keyper_at(&setup, addr, &key_hex, i, "honest")).collect();

    // Two ciphertexts every keyper validates from the feed.
    let ids: Vec<TxId> = rt.block_on(async {
        let client = IngressClient::connect(ClientConfig::new(
            ingress.local_addr(),
            Pin::Fingerprint(ingress.fingerprint()),
        ))
        .await
        .unwrap();
        let mut ids = Vec::new();
        for n in 0..2u8 {
            let meta = TxMeta {
                chain_id: pks.chain_id(),
                eon: pks.eon(),
                rollup: RollupId(0),
                fee_payer: crate::payers::public(9),
                max_fee: Amount(5),
                gas_limit: 21_000,
                expiry_slot: Slot(100),
                bundle: None,
            };
            let ct = encrypt(&pks, &meta, &[n; 8]).unwrap();
            ids.push(client.submit(crate::payers::signed(&ct)).await.unwrap().ids[0]);
        }
        ids
    });
    let commitment = |id: TxId, hash: u8| {
        Signed::sign(
            Commitment {
                chain_id: pks.chain_id(),
                slot: Slot(3),
                eon: pks.eon(),
                blocks: vec![CommittedBlock {
                    rollup: RollupId(0),
                    winner: None,
                    payment: Amount(0),
                    ciphertexts: vec![id],
                }],
                outcome_hash: [hash; 32],
            },
            &key,
        )
    };
    let first = commitment(ids[0], 1);
    let forged = commitment(ids[1], 2);
    // Batches received within `wait`, by keyper, as the id each one covers (each block here
    // is one id: a batch names its block by the digest of the ordered ids).
    let by_block: std::collections::HashMap<veil_crypto::BlockDigest, TxId> =
        ids.iter().map(|id| (veil_crypto::BlockDigest::of(&[*id]), *id)).collect();
    let collect = |wait: Duration| -> Vec<(u16, TxId)> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match batches.recv_timeout(left) {
                // The endpoint verified it on arrival.
                Ok(SequencerInput::VerifiedBatch(b)) => {
                    let id = by_block.get(b.block()).expect("a block of one submitted id");
                    got.push((b.keyper().get(), *id));
                }
                Ok(SequencerInput::Batch(b)) => panic!("a batch that failed to verify: {b:?}"),
                _ => {}
            }
        }
        got
    };
    let links = server.links();
    // Wait until all four are linked and have validated what was submitted.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.connected().len() < 4 {
        assert!(Instant::now() < deadline, "keypers did not link");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The default responder set ({1, 2} at t = 1) sends at once; keypers 3 and 4 record the
    // release and send when a fallback round names them.
    links.send(KeyperRequest::Commitment(first.clone()));
    let got = collect(Duration::from_secs(3));
    let released: HashSet<u16> =
        got.iter().filter(|(_, id)| *id == ids[0]).map(|(k, _)| *k).collect();
    assert_eq!(released, HashSet::from([1, 2]), "the default responders release: {got:?}");
    let others = veil_crypto::ResponderSet::new(
        &pks,
        vec![veil_crypto::KeyperIndex::new(3).unwrap(), veil_crypto::KeyperIndex::new(4).unwrap()],
    )
    .unwrap();
    links.send(KeyperRequest::Rescale { slot: Slot(3), responders: others });
    let got = collect(Duration::from_secs(3));
    let released: HashSet<u16> =
        got.iter().filter(|(_, id)| *id == ids[0]).map(|(k, _)| *k).collect();
    assert_eq!(released, HashSet::from([3, 4]), "the others release when asked: {got:?}");

    links.send(KeyperRequest::Commitment(forged.clone()));
    let got = collect(Duration::from_secs(2));
    assert!(got.iter().all(|(_, id)| *id != ids[1]), "no share for the forged commitment: {got:?}");

    // Keyper 1 killed and restarted: its durable first commitment still wins. On its new link
    // the sequencer replays both commitments; it re-sends the first's batch only.
    kill(keypers.remove(0));
    keypers.insert(0, spawn_keyper_at(&setup, addr, &key_hex, 1, "honest"));
    let got = collect(Duration::from_secs(6));
    assert!(
        got.iter().all(|(_, id)| *id != ids[1]),
        "no share for the forged one after a restart: {got:?}"
    );
    assert!(got.contains(&(1, ids[0])), "the restarted keyper re-sends its release: {got:?}");

    for k in keypers {
        kill(k);
    }
    for i in 1..=4 {
        let log = std::fs::read_to_string(setup.dir.join(format!("keyper-{i}/log"))).unwrap();
        assert!(log.contains("EQUIVOCATION"), "keyper {i} reported the equivocation");
    }
    rt.block_on(async move {
        server.shutdown().await;
        if let Ok(ingress) = Arc::try_unwrap(ingress) {
            ingress.shutdown().await;
        }
    });
}

/// A deposit notice is durable before it is answered: the sequencer aborts (as `kill -9`
/// would stop it) right after the registry record is written and before its answer; after the
/// restart the deposit is credited, and the same notice sent again is answered as a repeat
/// without a second credit.
#[test]
fn a_deposit_is_durable_before_its_answer() {
    let tmp = tempfile::tempdir().unwrap();
    // Minute-long slots: everything here happens in slot 0.
    let setup = Setup::new(tmp.path(), 4, 1, 60_000);
    let keygen = |name: &str| {
        let out = Command::new(VEIL)
            .args(["keygen", "--out", name])
            .current_dir(&setup.dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let bridge = keygen("bridge.key");
    let builder = keygen("builder.key");
    let mut config = std::fs::read_to_string(setup.dir.join("veil.toml")).unwrap();
    config.push_str(&format!("[bridge]\nkey = \"{bridge}\"\n"));
    std::fs::write(setup.dir.join("veil.toml"), config).unwrap();
    let deposit_id = format!("0x{}", "d1".repeat(32));
    let deposit = |seq: &Sequencer| {
        Command::new(VEIL)
            .args(["builder", "deposit", "--url", &seq.http, "--bridge-key", "bridge.key"])
            .args(["--deposit-id", &deposit_id, "--account", &builder, "--amount", "777"])
            .current_dir(&setup.dir)
            .output()
            .unwrap()
    };

    let mut armed = Sequencer::start(&setup, Some("after:registry:0"));
    let out = deposit(&armed);
    assert!(!out.status.success(), "answered although the process was to abort: {out:?}");
    let status = armed.child.wait().unwrap();
    assert!(!status.success(), "the failpoint did not abort the sequencer");

    let seq = Sequencer::start(&setup, None);
    let collateral = |seq: &Sequencer| {
        let out = Command::new(VEIL)
            .args(["builder", "collateral", "--url", &seq.http, "--builder", &builder, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(collateral(&seq)["balance"], "777", "the deposit did not survive the abort");
    // The same notice again: answered, not credited twice.
    let out = deposit(&seq);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(collateral(&seq)["balance"], "777");
    seq.stop();
}
