//! The few DER encodings this crate writes itself: SubjectPublicKeyInfo structures for keys that
//! ring hands over as raw points or RSAPublicKey structures.

pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_NULL: u8 = 0x05;
const TAG_BIT_STRING: u8 = 0x03;

/// One tag-length-value with a definite DER length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }`
/// for an algorithm OID and optional encoded parameters.
pub(crate) fn spki(algorithm_oid: &[u8], parameters: Option<&[u8]>, public_key: &[u8]) -> Vec<u8> {
    let mut algorithm = tlv(TAG_OID, algorithm_oid);
    if let Some(parameters) = parameters {
        algorithm.extend_from_slice(parameters);
    }
    let algorithm = tlv(TAG_SEQUENCE, &algorithm);
    let mut bits = Vec::with_capacity(public_key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(public_key);
    let mut body = algorithm;
    body.extend_from_slice(&tlv(TAG_BIT_STRING, &bits));
    tlv(TAG_SEQUENCE, &body)
}

pub(crate) fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
    spki(OID_EC_PUBLIC_KEY, Some(&tlv(TAG_OID, curve_oid)), point)
}

pub(crate) fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    spki(OID_RSA_ENCRYPTION, Some(&[TAG_NULL, 0x00]), rsa_public_key)
}

pub(crate) fn ed25519_spki(public_key: &[u8]) -> Vec<u8> {
    spki(OID_ED25519, None, public_key)
}

/// `ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId` holding only id-kp-timeStamping,
/// as the content of an extension (rcgen writes its own EKU extension non-critical, and RFC 3161
/// wants this one critical).
pub(crate) fn eku_time_stamping_only() -> Vec<u8> {
    const OID_KP_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
    tlv(TAG_SEQUENCE, &tlv(TAG_OID, OID_KP_TIME_STAMPING))
}

/// The DER of ASN.1 NULL, the value of the id-pkix-ocsp-nocheck extension.
pub(crate) const NULL: &[u8] = &[TAG_NULL, 0x00];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_use_the_long_form() {
        let content = vec![0u8; 300];
        let encoded = tlv(0x04, &content);
        assert_eq!(&encoded[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(encoded.len(), 304);
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 0x02, 1, 2]);
    }
}
