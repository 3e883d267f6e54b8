//! Checking an RFC 3161 time-stamp token: a CMS SignedData over a TSTInfo.
//! The ASN.1 is the RustCrypto `cms`, `x509-cert` and `x509-tsp` types;
//! the signature math is `rsa` and `p256`. What this file decides is only
//! which checks make a token believable, in the order a reader expects:
//!
//! 1. the ContentInfo is SignedData, its content a TSTInfo;
//! 2. the TSTInfo's imprint is SHA-256 over what was meant (and its nonce
//!    the one sent, when the token is fresh from a TSA);
//! 3. one SignerInfo, SHA-256, whose signed attributes say the content is
//!    a TSTInfo and carry the TSTInfo's SHA-256 as messageDigest;
//! 4. the signed attributes' DER, signed by the certificate the token
//!    carries for that signer (RSA PKCS#1 v1.5 or ECDSA P-256, SHA-256);
//! 5. that certificate is a TSA's: the critical extendedKeyUsage
//!    timeStamping, and genTime inside its validity.
//!
//! Whether the signer is one the user trusts is [`chains_to`]'s question,
//! asked offline by `verify --tsa-cert`.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_tsp::TstInfo;

const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
pub(super) const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
const TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");

/// What a checked token says.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The TSA's time, RFC 3339 (UTC).
    pub time: String,
    /// The TSA's certificate's subject.
    pub signer: String,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA policy the token was issued under.
    pub policy: String,
}

/// A token whose own signature holds, with the certificate that made it.
pub struct Checked {
    pub stamp: Stamp,
    pub signer: Certificate,
}

/// Check `token` (a DER ContentInfo) for the SHA-256 `imprint`, and, when
/// given, the request's `nonce`. The error is one sentence saying which
/// check failed.
pub fn check(token: &[u8], imprint: &[u8; 32], nonce: Option<&[u8]>) -> Result<Checked, String> {
    let info = ContentInfo::from_der(token).map_err(|e| format!("not a CMS ContentInfo ({e})"))?;
    if info.content_type != SIGNED_DATA {
        return Err(format!(
            "its content type is {}, not SignedData",
            info.content_type
        ));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("its SignedData does not parse ({e})"))?;
    let encap = &signed.encap_content_info;
    if encap.econtent_type != TST_INFO {
        return Err(format!("it signs a {}, not a TSTInfo", encap.econtent_type));
    }
    let tst_der = encap
        .econtent
        .as_ref()
        .ok_or("it carries no TSTInfo")?
        .decode_as::<OctetString>()
        .map_err(|e| format!("its eContent is not an OCTET STRING ({e})"))?;
    let tst_der = tst_der.as_bytes();
    let tst =
        TstInfo::from_der(tst_der).map_err(|e| format!("its TSTInfo does not parse ({e})"))?;
    let mi = &tst.message_imprint;
    if mi.hash_algorithm.oid != SHA256 {
        return Err(format!(
            "its imprint uses {}, not SHA-256",
            mi.hash_algorithm.oid
        ));
    }
    if mi.hashed_message.as_bytes() != imprint {
        return Err(format!(
            "it is for another imprint ({}), not SHA-256 of the envelope's signature ({})",
            crate::receipt::hex(mi.hashed_message.as_bytes()),
            crate::receipt::hex(imprint)
        ));
    }
    if let Some(sent) = nonce {
        let got = tst.nonce.as_ref().map(|n| n.as_bytes());
        if got != Some(sent) {
            return Err("its nonce is not the one sent: it answers another request".into());
        }
    }
    let infos = signed.signer_infos.0.as_slice();
    let [si] = infos else {
        return Err(format!("it has {} signers, not one", infos.len()));
    };
    if si.digest_alg.oid != SHA256 {
        return Err(format!(
            "its signer uses digest {}; only SHA-256 is supported",
            si.digest_alg.oid
        ));
    }
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or("its signer has no signed attributes")?;
    let attr = |oid: Oid| {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
    };
    let content_type = attr(CONTENT_TYPE)
        .and_then(|v| v.decode_as::<Oid>().ok())
        .ok_or("its signed attributes have no contentType")?;
    if content_type != TST_INFO {
        return Err("its signed contentType is not TSTInfo".into());
    }
    let digest = attr(MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or("its signed attributes have no messageDigest")?;
    if digest.as_bytes() != Sha256::digest(tst_der).as_slice() {
        return Err("its messageDigest is not the TSTInfo's: the TSTInfo was changed".into());
    }
    let carried: Vec<Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c.clone()),
                    CertificateChoices::Other(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let signer = carried
        .iter()
        .find(|c| identifies(&si.sid, c))
        .cloned()
        .ok_or("it does not carry its signer's certificate (ask the TSA with certReq)")?;
    let signed_attrs = attrs
        .to_der()
        .map_err(|e| format!("its signed attributes do not encode ({e})"))?;
    verify_signature(
        &signer.tbs_certificate.subject_public_key_info,
        &si.signature_algorithm.oid,
        &signed_attrs,
        si.signature.as_bytes(),
    )
    .map_err(|why| format!("its signature does not verify with its signer's certificate: {why}"))?;
    is_tsa_certificate(&signer)?;
    let time = tst.gen_time.to_unix_duration();
    let validity = &signer.tbs_certificate.validity;
    if time < validity.not_before.to_unix_duration() || time > validity.not_after.to_unix_duration()
    {
        return Err("its time is outside its signer certificate's validity".into());
    }
    let time = jiff::Timestamp::from_second(i64::try_from(time.as_secs()).unwrap_or(i64::MAX))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{}s after 1970", time.as_secs()));
    Ok(Checked {
        stamp: Stamp {
            time,
            signer: signer.tbs_certificate.subject.to_string(),
            serial: crate::receipt::hex(tst.serial_number.as_bytes()),
            policy: tst.policy.to_string(),
        },
        signer,
    })
}

/// Whether `sid` names `cert`.
fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => {
            is.issuer == cert.tbs_certificate.issuer
                && is.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == Oid::new_unwrap("2.5.29.14"))
            .any(|e| e.extn_value.as_bytes().ends_with(ski.0.as_bytes())),
    }
}

/// RFC 3161 §2.3: the TSA's certificate has exactly one extended key
/// usage, timeStamping, and the extension is critical.
fn is_tsa_certificate(cert: &Certificate) -> Result<(), String> {
    let eku = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == EXT_KEY_USAGE)
        .ok_or("its signer certificate has no extendedKeyUsage: it is not a TSA's")?;
    let usages = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| format!("its signer certificate's extendedKeyUsage does not parse ({e})"))?;
    if !eku.critical || usages.0 != [TIME_STAMPING] {
        return Err(
            "its signer certificate is not a TSA's (extendedKeyUsage is not critical timeStamping alone)"
                .into(),
        );
    }
    Ok(())
}

/// Whether `cert` is `anchor`, or is signed by `anchor`'s key and names it
/// as issuer.
pub fn chains_to(cert: &Certificate, anchor: &Certificate) -> bool {
    if cert == anchor {
        return true;
    }
    if cert.tbs_certificate.issuer != anchor.tbs_certificate.subject {
        return false;
    }
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    verify_signature(
        &anchor.tbs_certificate.subject_public_key_info,
        &cert.signature_algorithm.oid,
        &tbs,
        cert.signature.raw_bytes(),
    )
    .is_ok()
}

/// Verify `signature` over SHA-256 of `message` with the key in `spki`.
/// The key types this supports are what OpenSSL and the common public TSAs
/// sign with: RSA (PKCS#1 v1.5) and ECDSA on P-256.
fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &Oid,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let digest = Sha256::digest(message);
    let key = spki.subject_public_key.raw_bytes();
    match spki.algorithm.oid {
        RSA if [RSA, RSA_SHA256].contains(algorithm) => {
            use rsa::pkcs1::DecodeRsaPublicKey as _;
            let public =
                rsa::RsaPublicKey::from_pkcs1_der(key).map_err(|e| format!("bad RSA key ({e})"))?;
            public
                .verify(
                    rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
                    &digest,
                    signature,
                )
                .map_err(|_| "the RSA signature does not match".to_owned())
        }
        EC_PUBLIC_KEY if *algorithm == ECDSA_SHA256 => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<Oid>().ok());
            if curve != Some(P256) {
                return Err("an EC key that is not on P-256 (unsupported)".into());
            }
            let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map_err(|e| format!("bad P-256 key ({e})"))?;
            let sig = p256::ecdsa::Signature::from_der(signature)
                .map_err(|e| format!("bad ECDSA signature encoding ({e})"))?;
            public
                .verify_prehash(&digest, &sig)
                .map_err(|_| "the ECDSA signature does not match".to_owned())
        }
        other => Err(format!(
            "key type {other} with signature algorithm {algorithm} is not supported (RSA or ECDSA P-256 with SHA-256 are)"
        )),
    }
}
