//! The committed test PKI in `certs/` is complete and valid at the fixed validation time.

use passerelle_pki::devca::DevCa;
use passerelle_pki::{Certificate, Purpose, SigningKey, validate_chain};

use crate::{certs_dir, test_pki_now};

fn load(file: &str) -> Vec<Certificate> {
    Certificate::load(&certs_dir().join(file))
        .unwrap_or_else(|error| panic!("certs/{file}: {error}"))
}

#[test]
fn committed_test_pki_validates_at_the_fixed_time() {
    let ca = DevCa::open(&certs_dir()).unwrap();
    assert_eq!(ca.instance().as_str(), "DEV");
    let anchors = load("root.cert.pem");
    let intermediates = load("intermediate.cert.pem");
    for (prefix, purpose, member) in [
        ("config-signing", Purpose::ConfigSigning, None),
        ("tsa", Purpose::TimeStamping, None),
        ("ocsp", Purpose::OcspSigning, None),
        ("ss-health", Purpose::TlsAuth, None),
        ("ss-education", Purpose::TlsAuth, None),
        ("sign-health", Purpose::Signing, Some("DEV/GOV/HEALTH")),
        (
            "sign-education",
            Purpose::Signing,
            Some("DEV/GOV/EDUCATION"),
        ),
    ] {
        let leaf = load(&format!("{prefix}.cert.pem")).remove(0);
        let chain = load(&format!("{prefix}.chain.pem"));
        assert_eq!(chain[0], leaf, "{prefix}.chain.pem starts with the leaf");
        let path = validate_chain(&leaf, &chain[1..], &anchors, test_pki_now(), purpose)
            .unwrap_or_else(|error| panic!("{prefix}: {error}"));
        assert_eq!(path.len(), 3);
        assert_eq!(path[1], intermediates[0]);
        let key = SigningKey::load(&certs_dir().join(format!("{prefix}.key.pem"))).unwrap();
        assert!(leaf.matches_key(&key), "{prefix}.key.pem does not match");
        assert_eq!(
            leaf.member_id().map(|member| member.to_string()).as_deref(),
            member,
            "{prefix}"
        );
        assert!(
            ca.find_issued(&leaf.serial_hex()).unwrap().is_some(),
            "{prefix} is not in the index"
        );
    }
    for prefix in ["ss-health", "ss-education"] {
        let leaf = load(&format!("{prefix}.cert.pem")).remove(0);
        assert_eq!(leaf.dns_names(), ["localhost"]);
        assert_eq!(
            leaf.ip_addresses(),
            ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
    }
}
