//! HTTP Message Signatures (RFC 9421) with Ed25519, and `Content-Digest`
//! (RFC 9530, `sha-256`), for the spawn callback.
//!
//! # Why our own signature base and not an RFC 9421 crate
//!
//! The crates that implement the whole of RFC 9421 (`httpsig`, `http-msgsign`)
//! were looked at. They are pre-1.0 (0.0.x / 0.1), each brings its own key
//! types and HTTP abstraction (the `http` crate's request types, `hyper`
//! adapters), and neither knows about ureq 3 or tiny_http, so we would still
//! translate requests in both directions. What we need is much smaller: one
//! algorithm (`ed25519`), one fixed set of covered components
//! (`"@method" "@authority" "@path" ["@query"] "content-type"
//! "content-digest"`) and a fixed parameter list, all prescribed by the
//! callback issue. The only genuinely tricky part, RFC 8941 structured-field
//! serialization and parsing of `Signature-Input`, `Signature` and
//! `Content-Digest`, is delegated to the `sfv` crate; this module only glues
//! the §2.5 signature base together from those serializations. The RFC's own
//! Appendix B.2.6 vector is reproduced byte for byte in `tests/httpsig_rfc.rs`.
//!
//! It depends on external crates only: the library exports it as
//! `spawn_elite::callback::httpsig` for tests and other verifiers.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sfv::{
    BareItem, DictSerializer, Dictionary, InnerList, Item, KeyRef, ListEntry, ListSerializer,
    Parser, StringRef, Version,
};
use sha2::{Digest as _, Sha256};

/// Signature label used by spawn-elite in `Signature-Input` and `Signature`.
pub const LABEL: &str = "spawn";
/// Value of the `tag` signature parameter (RFC 9421 §2.3).
pub const TAG: &str = "spawn-elite";
/// Value of the `tag` parameter of a signed read of the registry's API
/// (`spawn-elite registry`): a read's signature can never pass for a
/// callback's, nor the other way round.
pub const READ_TAG: &str = "spawn-elite-read";
/// Value of the `alg` signature parameter (RFC 9421 §3.3.6).
pub const ALG: &str = "ed25519";
/// Lifetime of a signature: `expires = created + VALIDITY_SECS`.
pub const VALIDITY_SECS: i64 = 300;

/// The parts of an HTTP request that derived components are taken from.
#[derive(Debug, Clone)]
pub struct RequestParts {
    /// Request method, e.g. `POST` (case-sensitive, as sent).
    pub method: String,
    /// Host and port as in the `Host` header: lowercase, default port omitted.
    pub authority: String,
    /// Absolute path; an empty path is `/`.
    pub path: String,
    /// Query string without the leading `?`, if the target has one.
    pub query: Option<String>,
    /// Header fields as (name, value); names compared case-insensitively.
    pub headers: Vec<(String, String)>,
}

impl RequestParts {
    /// All values of a header field, combined as RFC 9421 §2.1 says:
    /// trimmed, joined with `", "`. `None` when the field is absent.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join(", "))
        }
    }

    /// The value of one covered component (RFC 9421 §2.1 and §2.2).
    pub fn component(&self, name: &str) -> Result<String, SigError> {
        match name {
            "@method" => Ok(self.method.clone()),
            "@authority" => Ok(self.authority.to_ascii_lowercase()),
            "@path" => Ok(if self.path.is_empty() {
                "/".to_owned()
            } else {
                self.path.clone()
            }),
            "@query" => Ok(format!("?{}", self.query.as_deref().unwrap_or(""))),
            n if n.starts_with('@') => Err(SigError::Malformed(format!(
                "derived component {n} is not supported"
            ))),
            n => self
                .header(n)
                .ok_or_else(|| SigError::Malformed(format!("covered header field {n} is missing"))),
        }
    }
}

/// Signature parameters (RFC 9421 §2.3), serialized in the order
/// created, expires, nonce, keyid, alg, tag; absent ones are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureParams {
    /// Covered component identifiers, lowercase, in signing order.
    pub components: Vec<String>,
    pub created: Option<i64>,
    pub expires: Option<i64>,
    pub nonce: Option<String>,
    pub keyid: Option<String>,
    pub alg: Option<String>,
    pub tag: Option<String>,
}

impl SignatureParams {
    /// The parameters spawn-elite signs with: our covered components (plus
    /// `@query` when there is one), `expires = created + 300`, and the
    /// fixed `alg` and `tag`.
    pub fn spawn(created: i64, nonce: String, keyid: String, with_query: bool) -> Self {
        let mut params = Self::request(created, nonce, keyid, with_query, TAG);
        params.components.push("content-type".to_owned());
        params.components.push("content-digest".to_owned());
        params
    }

    /// The parameters of a signed read (`GET` of the registry's API): the
    /// method, authority and path (plus `@query` when there is one), no
    /// body, and the tag [`READ_TAG`].
    pub fn read(created: i64, nonce: String, keyid: String, with_query: bool) -> Self {
        Self::request(created, nonce, keyid, with_query, READ_TAG)
    }

    /// What every signed request covers: method, authority, path, and the
    /// query when there is one.
    fn request(created: i64, nonce: String, keyid: String, with_query: bool, tag: &str) -> Self {
        let mut components: Vec<String> = ["@method", "@authority", "@path"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if with_query {
            components.push("@query".to_owned());
        }
        SignatureParams {
            components,
            created: Some(created),
            expires: Some(created + VALIDITY_SECS),
            nonce: Some(nonce),
            keyid: Some(keyid),
            alg: Some(ALG.to_owned()),
            tag: Some(tag.to_owned()),
        }
    }

    /// As an sfv inner list with parameters, ready to serialize.
    pub fn to_inner_list(&self) -> Result<InnerList, SigError> {
        let mut items = Vec::with_capacity(self.components.len());
        for c in &self.components {
            if c.chars().any(|ch| ch.is_ascii_uppercase()) {
                return Err(SigError::Malformed(format!(
                    "component name {c} must be lowercase"
                )));
            }
            items.push(Item::new(sf_string(c)?));
        }
        let mut params = sfv::Parameters::new();
        let mut put = |k: &str, v: BareItem| -> Result<(), SigError> {
            params.insert(sf_key(k)?.to_owned(), v);
            Ok(())
        };
        if let Some(v) = self.created {
            put("created", BareItem::Integer(sf_int(v)?))?;
        }
        if let Some(v) = self.expires {
            put("expires", BareItem::Integer(sf_int(v)?))?;
        }
        if let Some(v) = &self.nonce {
            put("nonce", sf_string(v)?)?;
        }
        if let Some(v) = &self.keyid {
            put("keyid", sf_string(v)?)?;
        }
        if let Some(v) = &self.alg {
            put("alg", sf_string(v)?)?;
        }
        if let Some(v) = &self.tag {
            put("tag", sf_string(v)?)?;
        }
        Ok(InnerList::with_params(items, params))
    }

    /// Read the parameters back from a parsed inner list. Unknown parameters
    /// are an error, so nothing signed goes unnoticed.
    pub fn from_inner_list(list: &InnerList) -> Result<Self, SigError> {
        let mut out = SignatureParams::default();
        for item in &list.items {
            if !item.params.is_empty() {
                return Err(SigError::Malformed(
                    "component parameters (;sf, ;key, …) are not supported".to_owned(),
                ));
            }
            let name = item.bare_item.as_string().ok_or_else(|| {
                SigError::Malformed("covered components must be strings".to_owned())
            })?;
            out.components.push(name.as_str().to_owned());
        }
        for (k, v) in &list.params {
            let int = || {
                v.as_integer().map(i64::from).ok_or_else(|| {
                    SigError::Malformed(format!("parameter {} must be an integer", k.as_str()))
                })
            };
            let string = || {
                v.as_string().map(|s| s.as_str().to_owned()).ok_or_else(|| {
                    SigError::Malformed(format!("parameter {} must be a string", k.as_str()))
                })
            };
            match k.as_str() {
                "created" => out.created = Some(int()?),
                "expires" => out.expires = Some(int()?),
                "nonce" => out.nonce = Some(string()?),
                "keyid" => out.keyid = Some(string()?),
                "alg" => out.alg = Some(string()?),
                "tag" => out.tag = Some(string()?),
                other => {
                    return Err(SigError::Malformed(format!(
                        "unknown signature parameter {other}"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Serialize an inner list with its parameters the way RFC 9421 §2.3 puts
/// it after `"@signature-params": ` (an RFC 8941 inner list).
pub fn serialize_inner_list(list: &InnerList) -> Result<String, SigError> {
    let mut ser = ListSerializer::new();
    ser.members([&ListEntry::InnerList(list.clone())]);
    ser.finish()
        .ok_or_else(|| SigError::Malformed("empty signature parameters".to_owned()))
}

/// The signature base of RFC 9421 §2.5 for `parts` and the given
/// signature parameters (already serialized, see [`serialize_inner_list`]).
pub fn signature_base(
    parts: &RequestParts,
    components: &[String],
    params_serialized: &str,
) -> Result<String, SigError> {
    let mut base = String::new();
    for name in components {
        if name == "@signature-params" {
            return Err(SigError::Malformed(
                "@signature-params cannot be a covered component".to_owned(),
            ));
        }
        let value = parts.component(name)?;
        if value.contains('\n') || value.contains('\r') {
            return Err(SigError::Malformed(format!(
                "value of {name} contains a line break"
            )));
        }
        base.push_str(&sf_string_serialized(name)?);
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_serialized);
    Ok(base)
}

/// Headers produced by signing, and the signature base they cover.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Value of the `Signature-Input` header field.
    pub signature_input: String,
    /// Value of the `Signature` header field.
    pub signature: String,
    /// The exact bytes that were signed.
    pub base: String,
}

/// Sign `parts` with `key` under `label`.
pub fn sign(
    parts: &RequestParts,
    params: &SignatureParams,
    key: &SigningKey,
    label: &str,
) -> Result<Signed, SigError> {
    let list = params.to_inner_list()?;
    let serialized = serialize_inner_list(&list)?;
    let base = signature_base(parts, &params.components, &serialized)?;
    let sig: Signature = key.sign(base.as_bytes());

    let label = sf_key(label)?;
    let mut ser = DictSerializer::new();
    ser.members([(label, &ListEntry::InnerList(list))]);
    let signature_input = ser
        .finish()
        .ok_or_else(|| SigError::Malformed("empty Signature-Input".to_owned()))?;
    let mut ser = DictSerializer::new();
    ser.bare_item(label, sig.to_bytes().as_slice());
    let signature = ser
        .finish()
        .ok_or_else(|| SigError::Malformed("empty Signature".to_owned()))?;
    Ok(Signed {
        signature_input,
        signature,
        base,
    })
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    pub params: SignatureParams,
    /// The signature base that was checked.
    #[allow(dead_code)] // read by the conformance tests and for diagnostics
    pub base: String,
}

/// Verify the signature labelled `label` on a request (RFC 9421 §3.2).
///
/// `key_for` maps the `keyid` parameter to a trusted public key. Checking
/// `created`/`expires` against the clock, the nonce against replays and the
/// covered set against a policy is the caller's job (see `receive.rs`).
pub fn verify(
    parts: &RequestParts,
    signature_input: &str,
    signature: &str,
    label: &str,
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
) -> Result<Verified, SigError> {
    let inputs = parse_dictionary("Signature-Input", signature_input)?;
    let sigs = parse_dictionary("Signature", signature)?;
    let list = match inputs.get(label) {
        Some(ListEntry::InnerList(l)) => l,
        Some(ListEntry::Item(_)) => {
            return Err(SigError::Malformed(format!(
                "Signature-Input member {label} is not an inner list"
            )));
        }
        None => {
            return Err(SigError::Malformed(format!(
                "Signature-Input has no signature labelled {label}"
            )));
        }
    };
    let sig_bytes = match sigs.get(label) {
        Some(ListEntry::Item(item)) => item.bare_item.as_byte_sequence().ok_or_else(|| {
            SigError::Malformed(format!("Signature member {label} is not a byte sequence"))
        })?,
        _ => {
            return Err(SigError::Malformed(format!(
                "Signature has no byte sequence labelled {label}"
            )));
        }
    };
    let params = SignatureParams::from_inner_list(list)?;
    if let Some(alg) = &params.alg
        && alg != ALG
    {
        return Err(SigError::BadSignature(format!(
            "algorithm {alg} is not accepted, only {ALG}"
        )));
    }
    let keyid = params
        .keyid
        .as_deref()
        .ok_or_else(|| SigError::Malformed("signature has no keyid parameter".to_owned()))?;
    let key = key_for(keyid).ok_or_else(|| SigError::UnknownKey(keyid.to_owned()))?;
    let serialized = serialize_inner_list(list)?;
    let base = signature_base(parts, &params.components, &serialized)?;
    let sig_array: [u8; 64] = sig_bytes.try_into().map_err(|_| {
        SigError::BadSignature(format!(
            "an Ed25519 signature is 64 bytes, this one is {}",
            sig_bytes.len()
        ))
    })?;
    let sig = Signature::from_bytes(&sig_array);
    key.verify_strict(base.as_bytes(), &sig)
        .map_err(|_| SigError::BadSignature("signature does not match the request".to_owned()))?;
    Ok(Verified { params, base })
}

/// `Content-Digest` value for `body`: `sha-256=:<base64>:` (RFC 9530).
pub fn content_digest(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut ser = DictSerializer::new();
    // "sha-256" is a valid key; the fallback keeps this infallible.
    if let Ok(k) = KeyRef::from_str("sha-256") {
        ser.bare_item(k, digest.as_slice());
    }
    ser.finish().unwrap_or_default()
}

/// Check a received `Content-Digest` against the body. Only `sha-256` is
/// understood; other algorithms in the field are ignored, but `sha-256`
/// must be there.
pub fn check_content_digest(field: &str, body: &[u8]) -> Result<(), SigError> {
    let dict = parse_dictionary("Content-Digest", field)?;
    let claimed = match dict.get("sha-256") {
        Some(ListEntry::Item(item)) => item.bare_item.as_byte_sequence().ok_or_else(|| {
            SigError::Malformed("Content-Digest sha-256 is not a byte sequence".to_owned())
        })?,
        _ => {
            return Err(SigError::Malformed(
                "Content-Digest has no sha-256 member".to_owned(),
            ));
        }
    };
    if Sha256::digest(body).as_slice() == claimed {
        Ok(())
    } else {
        Err(SigError::DigestMismatch)
    }
}

/// Why a signature or digest was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// A field is not well-formed or lacks something required.
    Malformed(String),
    /// No trusted key has this key id.
    UnknownKey(String),
    /// The signature does not verify, or uses an algorithm we refuse.
    BadSignature(String),
    /// The body does not hash to the `Content-Digest` value.
    DigestMismatch,
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigError::Malformed(m) => write!(f, "malformed request: {m}"),
            SigError::UnknownKey(k) => write!(
                f,
                "unknown key id {k}: add its .pub file to the trust directory"
            ),
            SigError::BadSignature(m) => write!(f, "bad signature: {m}"),
            SigError::DigestMismatch => write!(f, "body does not match its Content-Digest"),
        }
    }
}

impl std::error::Error for SigError {}

fn parse_dictionary(field: &str, value: &str) -> Result<Dictionary, SigError> {
    Parser::new(value)
        .with_version(Version::Rfc8941)
        .parse::<Dictionary>()
        .map_err(|e| SigError::Malformed(format!("{field} is not a structured dictionary: {e}")))
}

fn sf_string(s: &str) -> Result<BareItem, SigError> {
    StringRef::from_str(s)
        .map(|r| BareItem::String(r.to_owned()))
        .map_err(|e| SigError::Malformed(format!("{s:?} cannot be a structured-field string: {e}")))
}

fn sf_string_serialized(s: &str) -> Result<String, SigError> {
    let r = StringRef::from_str(s)
        .map_err(|e| SigError::Malformed(format!("{s:?} cannot be a component name: {e}")))?;
    Ok(sfv::ItemSerializer::new().bare_item(r).finish())
}

fn sf_key(s: &str) -> Result<&KeyRef, SigError> {
    KeyRef::from_str(s)
        .map_err(|e| SigError::Malformed(format!("{s:?} cannot be a structured-field key: {e}")))
}

fn sf_int(v: i64) -> Result<sfv::Integer, SigError> {
    sfv::Integer::try_from(v)
        .map_err(|e| SigError::Malformed(format!("{v} is out of structured-field range: {e}")))
}
