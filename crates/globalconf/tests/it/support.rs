//! A development CA, a sample configuration and a signer, at a fixed time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_globalconf::{
    Anchor, ApprovedCa, ConfError, FetchFuture, Fetcher, GlobalConf, Member, MemberClass, Settings,
    sign_configuration,
};
use passerelle_ids::MemberId;
use passerelle_pki::devca::{
    DevCa, ExistingCa, IssueRequest, Issued, LeafKey, LeafProfile, Validity,
};

/// 2027-01-15T08:00:00Z: every test validates at a time derived from this one.
pub(crate) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub(crate) struct Pki {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) ca: DevCa,
}

/// A development CA for `instance`, valid from a day before [`now`] for ten years.
pub(crate) fn pki(instance: &str) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let validity = Validity::days_from(now() - Duration::from_secs(86_400), 3650);
    let ca = DevCa::init(dir.path(), instance, validity, ExistingCa::Refuse).unwrap();
    Pki { _dir: dir, ca }
}

impl Pki {
    pub(crate) fn sign_cert(&self, member: &str) -> Issued {
        let member: MemberId = member.parse().unwrap();
        self.issue(LeafProfile::Sign { member })
    }

    pub(crate) fn auth_cert(&self, name: &str) -> Issued {
        self.issue(LeafProfile::Auth {
            name: name.to_owned(),
            dns_names: vec![name.to_owned()],
            ip_addresses: vec![],
        })
    }

    fn issue(&self, profile: LeafProfile) -> Issued {
        let validity = Validity::days_from(now() - Duration::from_secs(3600), 365);
        self.ca
            .issue(&IssueRequest {
                profile,
                validity,
                key: LeafKey::Generate,
            })
            .unwrap()
    }

    pub(crate) fn anchor(&self) -> Anchor {
        Anchor {
            instance: self.ca.instance().as_str().parse().unwrap(),
            configuration_url: "http://central.invalid/globalconf/DEV/globalconf.json".to_owned(),
            signature_url: "http://central.invalid/globalconf/DEV/globalconf.json.sig".to_owned(),
            verification_certificates: vec![self.ca.config_signing().certificate.to_pem()],
            generated_at: now(),
        }
    }

    pub(crate) fn approved_ca(&self) -> ApprovedCa {
        ApprovedCa {
            name: "dev".to_owned(),
            certificates: vec![self.ca.root().to_pem()],
            intermediates: vec![self.ca.intermediate().certificate.to_pem()],
            ocsp_responders: vec!["http://127.0.0.1:8888".to_owned()],
        }
    }

    /// A configuration of `instance` with `serial`, generated at `generated_at`.
    pub(crate) fn conf(&self, instance: &str, serial: u64, generated_at: SystemTime) -> GlobalConf {
        let settings = Settings::default();
        let member: MemberId = format!("{instance}/GOV/HEALTH").parse().unwrap();
        GlobalConf {
            instance: instance.parse().unwrap(),
            serial,
            generated_at,
            expires_at: generated_at + settings.config_validity(),
            member_classes: vec![MemberClass {
                code: "GOV".to_owned(),
                description: "Government".to_owned(),
            }],
            members: vec![Member {
                subsystems: vec![format!("{member}/registry").parse().unwrap()],
                id: member,
                name: "Ministry of Health".to_owned(),
            }],
            security_servers: vec![],
            global_groups: vec![],
            approved_cas: vec![self.approved_ca()],
            approved_tsas: vec![],
            services: vec![],
            settings,
        }
    }

    /// Served bytes and their signature by the configuration-signing key.
    pub(crate) fn signed(&self, conf: &GlobalConf) -> (Vec<u8>, Vec<u8>) {
        let bytes = conf.to_json();
        let signature = sign_configuration(&bytes, &self.ca.config_signing().key).unwrap();
        (bytes, signature)
    }
}

/// A fetcher serving whatever the test put in it, or failing while `down` is set.
#[derive(Clone, Default)]
pub(crate) struct FakeCentral {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    conf: Option<(Vec<u8>, Vec<u8>)>,
    down: bool,
    fetches: usize,
}

impl FakeCentral {
    pub(crate) fn serve(&self, signed: (Vec<u8>, Vec<u8>)) {
        let mut state = self.inner.lock().unwrap();
        state.conf = Some(signed);
        state.down = false;
    }
    pub(crate) fn go_down(&self) {
        self.inner.lock().unwrap().down = true;
    }
    /// How many configuration downloads were attempted.
    pub(crate) fn fetches(&self) -> usize {
        self.inner.lock().unwrap().fetches
    }
}

impl Fetcher for FakeCentral {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        let mut state = self.inner.lock().unwrap();
        let result = if state.down {
            Err(ConfError::Fetch {
                url: url.to_owned(),
                reason: "connection refused".to_owned(),
            })
        } else {
            match &state.conf {
                Some((_, signature)) if url.ends_with(".sig") => Ok(signature.clone()),
                Some((bytes, _)) => Ok(bytes.clone()),
                None => Err(ConfError::Fetch {
                    url: url.to_owned(),
                    reason: "HTTP status 404".to_owned(),
                }),
            }
        };
        if !url.ends_with(".sig") {
            state.fetches += 1;
        }
        Box::pin(std::future::ready(result))
    }
}
