//! DSSE v1 envelopes (the Dead Simple Signing Envelope of the Secure
//! Systems Lab): a payload, its type, and Ed25519 signatures over the
//! pre-authentication encoding (PAE) of both. A verifier checks a signature
//! over the PAE of the bytes it received before it parses the payload.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::callback::keys;

/// The envelope as it is written: `payload` and `sig` in standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<Sig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sig {
    pub keyid: String,
    pub sig: String,
}

/// Why an envelope does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a DSSE envelope (JSON, base64), or no signature at all.
    Malformed(String),
    /// No signature is by a key the verifier trusts; the key ids found.
    UnknownKey(Vec<String>),
    /// A signature by a trusted key does not verify: the payload or its
    /// type was changed, or the signature was.
    BadSignature(String),
}

/// `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Sign `payload` of `payload_type` with `key` (Ed25519 is
    /// deterministic: the same input gives the same envelope).
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        let sig = key.sign(&pae(payload_type, payload));
        Envelope {
            payload_type: payload_type.to_owned(),
            payload: STANDARD.encode(payload),
            signatures: vec![Sig {
                keyid: keys::key_id(&key.verifying_key()),
                sig: STANDARD.encode(sig.to_bytes()),
            }],
        }
    }

    /// The envelope as it is written to a file: pretty JSON and a newline.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Envelope, Refused> {
        serde_json::from_slice(bytes)
            .map_err(|e| Refused::Malformed(format!("not a DSSE envelope: {e}")))
    }

    /// The payload, once a signature by a key in `trusted` (by key id)
    /// verifies over it; with the key id that signed.
    pub fn verify(
        &self,
        trusted: &HashMap<String, VerifyingKey>,
    ) -> Result<(String, Vec<u8>), Refused> {
        let payload = STANDARD
            .decode(&self.payload)
            .map_err(|e| Refused::Malformed(format!("its payload is not base64: {e}")))?;
        if self.signatures.is_empty() {
            return Err(Refused::Malformed("it holds no signature".into()));
        }
        let message = pae(&self.payload_type, &payload);
        let mut bad = None;
        for s in &self.signatures {
            let Some(key) = trusted.get(&s.keyid) else {
                continue;
            };
            // A signature by this key id that does not verify is reported
            // unless another trusted one does.
            let checked = STANDARD
                .decode(&s.sig)
                .ok()
                .and_then(|b| Signature::from_slice(&b).ok())
                .is_some_and(|sig| key.verify(&message, &sig).is_ok());
            if checked {
                return Ok((s.keyid.clone(), payload));
            }
            bad = Some(s.keyid.clone());
        }
        match bad {
            Some(keyid) => Err(Refused::BadSignature(keyid)),
            None => Err(Refused::UnknownKey(
                self.signatures.iter().map(|s| s.keyid.clone()).collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn pae_matches_the_dsse_specifications_example() {
        // The protocol's own example: type "http://example.com/HelloWorld",
        // body "hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_envelope_verifies_and_any_change_is_refused() {
        let k = key(7);
        let trusted = HashMap::from([(keys::key_id(&k.verifying_key()), k.verifying_key())]);
        let env = Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}", &k);
        let (keyid, payload) = env.verify(&trusted).expect("verifies");
        assert_eq!(keyid, keys::key_id(&k.verifying_key()));
        assert_eq!(payload, b"{\"a\":1}");

        let mut changed = env.clone();
        changed.payload = STANDARD.encode(b"{\"a\":2}");
        assert!(matches!(
            changed.verify(&trusted),
            Err(Refused::BadSignature(_))
        ));

        let mut retyped = env.clone();
        retyped.payload_type = "text/plain".into();
        assert!(matches!(
            retyped.verify(&trusted),
            Err(Refused::BadSignature(_))
        ));

        let other = key(8);
        let stranger =
            HashMap::from([(keys::key_id(&other.verifying_key()), other.verifying_key())]);
        assert!(matches!(env.verify(&stranger), Err(Refused::UnknownKey(_))));

        let parsed = Envelope::parse(&env.to_json_bytes()).expect("parses");
        assert_eq!(parsed, env);
    }
}
