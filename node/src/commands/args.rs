//! Argument types shared by the commands, each parsed by clap through `FromStr` into a typed
//! value (fingerprints, keys, payloads, bundle parts), never by hand from strings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use veil_crypto::PublicKeySet;
use veil_primitives::hexbytes::HexBytes;
use veil_primitives::RollupId;
use veil_wire::client::ClientConfig;
use veil_wire::tls::{CertFingerprint, Pin};

/// How a client finds and recognises the ingress.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The ingress's UDP address.
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub server: SocketAddr,
    /// The ingress certificate's fingerprint (0x-hex sha3-256 of its DER).
    #[arg(long, conflicts_with = "cert")]
    pub fingerprint: Option<CertFingerprint>,
    /// The ingress certificate file (DER), instead of a fingerprint.
    #[arg(long)]
    pub cert: Option<PathBuf>,
}

/// The ingress, and the committee to encrypt to.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where the ingress is and how to recognise it.
    #[command(flatten)]
    pub ingress: ConnectArgs,
    /// The committee's public key set (JSON) to encrypt to.
    #[arg(long)]
    pub committee: PathBuf,
}

impl ServerArgs {
    /// The client configuration pinning the ingress certificate.
    ///
    /// # Errors
    /// Neither a fingerprint nor a certificate given, or an unreadable certificate file.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        self.ingress.client_config()
    }
}

/// The parameters of a development committee whose secrets follow from a public seed, as
/// `veil dev-committee` writes it and `veil dev-decrypt` rebuilds it.
#[derive(Debug, Args)]
pub struct DevCommitteeParams {
    /// Seed (the seed is the secret: these keys are for tests and local runs only).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Committee size.
    #[arg(long, default_value_t = 4)]
    pub keypers: u16,
    /// Threshold t: any t + 1 keypers decrypt.
    #[arg(long, default_value_t = 1)]
    pub threshold: u16,
    /// The Veil network's chain id.
    #[arg(long, default_value_t = 1)]
    pub chain_id: u64,
}

impl ConnectArgs {
    /// The client configuration pinning the ingress certificate.
    ///
    /// # Errors
    /// Neither a fingerprint nor a certificate given, or an unreadable certificate file.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let pin = match (self.fingerprint, &self.cert) {
            (Some(f), _) => Pin::Fingerprint(f),
            (None, Some(path)) => Pin::from_cert_file(path)?,
            (None, None) => bail!("pass --fingerprint or --cert to pin the ingress certificate"),
        };
        Ok(ClientConfig::new(self.server, pin))
    }
}

/// A bundle part on the command line: `ROLLUP:0xPAYLOAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePartArg {
    /// The rollup the part is for.
    pub rollup: RollupId,
    /// Its plaintext payload.
    pub payload: HexBytes,
}

impl std::str::FromStr for BundlePartArg {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (rollup, payload) = s.split_once(':').context("a part is ROLLUP:0xPAYLOAD")?;
        let rollup = rollup.parse::<u32>().context("the rollup id is a decimal number")?;
        let payload = payload.parse::<HexBytes>().context("the payload is 0x-hex")?;
        Ok(BundlePartArg { rollup: RollupId(rollup), payload })
    }
}

/// Reads a committee's public key set (JSON, validated).
///
/// # Errors
/// An unreadable or invalid file.
pub fn load_committee(path: &Path) -> anyhow::Result<PublicKeySet> {
    let json = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    PublicKeySet::from_json(&json).with_context(|| format!("parse {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_parts_parse_strictly() {
        let p: BundlePartArg = "7:0xaabb".parse().unwrap();
        assert_eq!(p, BundlePartArg { rollup: RollupId(7), payload: HexBytes(vec![0xaa, 0xbb]) });
        for bad in ["7", "x:0xaa", "7:aa", "7:0xzz", ":0xaa", "-1:0xaa"] {
            assert!(bad.parse::<BundlePartArg>().is_err(), "{bad} accepted");
        }
    }
}

/// Where the node's HTTP API is, and how to print its answers.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The node's HTTP API base URL (`veil sequencer`'s `[metrics] listen`; the devnet prints
    /// its own).
    #[arg(long, env = "VEIL_HTTP", default_value = "http://127.0.0.1:9464")]
    pub url: String,
    /// Print the API's JSON answer instead of the human-readable summary.
    #[arg(long)]
    pub json: bool,
}

impl HttpArgs {
    /// The SDK's HTTP client for the URL.
    ///
    /// # Errors
    /// A URL that is not an http(s) base URL.
    pub fn client(&self) -> anyhow::Result<veil_builder_api::http::HttpClient> {
        Ok(veil_builder_api::http::HttpClient::new(&self.url)?)
    }
}

/// A short form of a 0x-hex key or id for human-readable output (`0x1234abcd…`).
#[must_use]
pub fn short_hex(full: &str) -> String {
    full.get(..10).map_or_else(|| full.to_string(), |s| format!("{s}…"))
}

/// Refuses an ingress that says it does not admit the ciphertext encoding this build writes
/// (`veil_crypto::CIPHERTEXT_VERSION`): every submission would be refused as
/// `INVALID_CIPHERTEXT`. An answer that does not say (an older server) passes.
///
/// # Errors
/// The versions the ingress admits, beside this build's.
pub fn check_ciphertext_version(info: &veil_wire::ingress::ServerInfo) -> anyhow::Result<()> {
    let ours = veil_crypto::CIPHERTEXT_VERSION;
    if info.accepts_ciphertext_version(ours) == Some(false) {
        anyhow::bail!(
            "the ingress admits ciphertext versions {:?}; this build writes version {ours}",
            info.ciphertext_versions
        );
    }
    Ok(())
}
