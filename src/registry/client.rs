//! Reading a registry over HTTP (`spawn-elite registry`): the same API the
//! page and other tools use, with an RFC 9421 signature when a key is given
//! (what a receiver asks of reads from another host; see
//! `receive::verify::check_read`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;
use ureq::Agent;

use super::filter::Filter;
use super::{API_VERSION, RepoDetail, RepoPage, SetUse};
use crate::callback::httpsig::{self, RequestParts, SignatureParams};
use crate::callback::options::Target;
use crate::callback::{keys, request};
use crate::error::{ExitCode, fail};

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// The receiver's base URL, e.g. `https://registry.example` (the API is
    /// under `/v1/` of it).
    pub url: String,
    /// Sign each read with this private key (needed from another host).
    pub key: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub allow_insecure_http: bool,
    pub timeout: Duration,
}

pub struct Client {
    target: Target,
    scheme: &'static str,
    agent: Agent,
    key: Option<(SigningKey, String)>,
}

impl Client {
    pub fn new(opts: &Options) -> Result<Client> {
        let target = Target::parse_for("registry", &opts.url, opts.allow_insecure_http)?;
        let scheme = if opts.url.starts_with("https:") {
            "https"
        } else {
            "http"
        };
        let key = opts
            .key
            .as_deref()
            .map(|p: &Path| -> Result<(SigningKey, String)> {
                let k = keys::load_signing_key(p)?;
                let id = keys::key_id(&k.verifying_key());
                Ok((k, id))
            })
            .transpose()?;
        let agent = request::http_agent(opts.ca_file.clone(), opts.timeout, opts.timeout)?;
        Ok(Client {
            target,
            scheme,
            agent,
            key,
        })
    }

    /// `GET /v1/repos` with `filter`.
    pub fn repos(&self, filter: &Filter) -> Result<RepoPage> {
        let query = filter.to_query();
        let query = (!query.is_empty()).then_some(query);
        self.get_json("repos", query)?
            .ok_or_else(|| self.failed(404, "the registry has no /v1/repos"))
    }

    /// `GET /v1/repos/{name}`; `None` when the registry never heard of it.
    pub fn repo(&self, name: &str) -> Result<Option<RepoDetail>> {
        // Repository names are DNS-1123 labels: nothing to escape. Anything
        // else is refused here rather than sent as a surprising path.
        if let Some(problem) = crate::templates::values::name_problem(name) {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "not a repository name: {problem}; {}",
                    crate::templates::values::NAME_RULE
                ),
            ));
        }
        self.get_json(&format!("repos/{name}"), None)
    }

    /// `GET /v1/sets`.
    pub fn sets(&self) -> Result<Vec<SetUse>> {
        #[derive(serde::Deserialize)]
        struct Sets {
            sets: Vec<SetUse>,
        }
        let sets: Sets = self
            .get_json("sets", None)?
            .ok_or_else(|| self.failed(404, "the registry has no /v1/sets"))?;
        Ok(sets.sets)
    }

    /// GET `/v1/{what}`: the decoded answer, `None` on 404, an error
    /// naming the registry's own message otherwise.
    fn get_json<T: DeserializeOwned>(
        &self,
        what: &str,
        query: Option<String>,
    ) -> Result<Option<T>> {
        let base = self.target.path.trim_end_matches('/');
        let path = format!("{base}/{API_VERSION}/{what}");
        let url = match &query {
            Some(q) => format!("{}://{}{path}?{q}", self.scheme, self.target.authority),
            None => format!("{}://{}{path}", self.scheme, self.target.authority),
        };
        let mut req = self.agent.get(&url).header("Accept", "application/json");
        if let Some((key, id)) = &self.key {
            for (name, value) in sign(&self.target.authority, &path, query, key, id)? {
                req = req.header(name, value);
            }
        }
        let mut resp = req.call().map_err(|e| {
            fail(
                ExitCode::Registry,
                format!(
                    "cannot reach the registry at {}: {e}; check --url and that `spawn-elite receive` runs there",
                    self.target.url
                ),
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| self.failed(status, &format!("the answer could not be read: {e}")))?;
        match status {
            200 => serde_json::from_slice(&body).map(Some).map_err(|e| {
                self.failed(
                    status,
                    &format!("the answer is not the registry's JSON: {e}"),
                )
            }),
            404 if what.starts_with("repos/") => Ok(None),
            _ => {
                #[derive(serde::Deserialize)]
                struct Refusal {
                    error: String,
                }
                let why = serde_json::from_slice::<Refusal>(&body)
                    .map(|r| r.error)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_owned());
                Err(self.failed(status, &why))
            }
        }
    }

    fn failed(&self, status: u16, why: &str) -> anyhow::Error {
        let hint = match status {
            401 => "; a signed read needs --key with a key in the receiver's --readers directory",
            400 => "; check the filters",
            _ => "",
        };
        let code = if status == 400 {
            ExitCode::Usage
        } else {
            ExitCode::Registry
        };
        fail(
            code,
            format!(
                "the registry at {} answered {status}: {why}{hint}",
                self.target.url
            ),
        )
    }
}

/// The signature headers of one read.
fn sign(
    authority: &str,
    path: &str,
    query: Option<String>,
    key: &SigningKey,
    key_id: &str,
) -> Result<Vec<(&'static str, String)>> {
    let nonce = URL_SAFE_NO_PAD.encode(request::random_bytes::<16>()?);
    let with_query = query.is_some();
    let parts = RequestParts {
        method: "GET".to_owned(),
        authority: authority.to_owned(),
        path: path.to_owned(),
        query,
        headers: Vec::new(),
    };
    let params = SignatureParams::read(request::unix_now(), nonce, key_id.to_owned(), with_query);
    let signed = httpsig::sign(&parts, &params, key, httpsig::LABEL)
        .map_err(|e| anyhow::anyhow!("cannot sign the read: {e}"))?;
    Ok(vec![
        ("Signature-Input", signed.signature_input),
        ("Signature", signed.signature),
    ])
}
