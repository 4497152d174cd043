//! Registration requests: who must sign what, and the reasons given when it is not so.

use passerelle_globalconf::{
    ConfError, RegistrationRequest, RequestAction, RequestSigner, SignedRequest, SignerRole,
};
use passerelle_ids::SecurityServerId;
use passerelle_pki::Certificate;

use crate::support::{Pki, now, pki};

fn trust(pki: &Pki) -> (Vec<Certificate>, Vec<Certificate>) {
    (
        vec![pki.ca.root().clone()],
        vec![pki.ca.intermediate().certificate.clone()],
    )
}

fn auth_request(server: &SecurityServerId, auth: &Certificate) -> RegistrationRequest {
    RegistrationRequest {
        created_at: now(),
        action: RequestAction::AuthCertificate {
            server: server.clone(),
            address: "ss1.dev:5500".to_owned(),
            certificate: auth.to_pem(),
        },
    }
}

fn signer(issued: &passerelle_pki::devca::Issued) -> RequestSigner<'_> {
    RequestSigner {
        role: SignerRole::Member,
        key: issued.key.as_ref().unwrap(),
        chain: &issued.chain,
    }
}

fn reason(error: ConfError) -> String {
    match error {
        ConfError::RequestRejected { reason } => reason,
        other => panic!("expected a rejection, got {other}"),
    }
}

#[test]
fn auth_certificate_registration() {
    let pki = pki("DEV");
    let stranger_ca = crate::support::pki("DEV");
    let (roots, intermediates) = trust(&pki);
    let server: SecurityServerId = "DEV/GOV/HEALTH/ss1".parse().unwrap();
    let auth = pki.auth_cert("ss1.dev");
    let owner = pki.sign_cert("DEV/GOV/HEALTH");
    let other_member = pki.sign_cert("DEV/GOV/EDU");
    let other_auth = pki.auth_cert("ss2.dev");
    let foreign_auth = stranger_ca.auth_cert("ss1.dev");
    let foreign_owner = stranger_ca.sign_cert("DEV/GOV/HEALTH");

    let sign = |request: &RegistrationRequest,
                auth_issued: &passerelle_pki::devca::Issued,
                auth_key_of: &passerelle_pki::devca::Issued,
                member: &passerelle_pki::devca::Issued| {
        SignedRequest::sign(
            request,
            &[
                RequestSigner {
                    role: SignerRole::AuthKey,
                    key: auth_key_of.key.as_ref().unwrap(),
                    chain: &auth_issued.chain,
                },
                RequestSigner {
                    role: SignerRole::Member,
                    key: member.key.as_ref().unwrap(),
                    chain: &member.chain,
                },
            ],
        )
        .unwrap()
    };

    let good = sign(
        &auth_request(&server, &auth.certificate),
        &auth,
        &auth,
        &owner,
    );
    let verified = SignedRequest::from_json(&good.to_json())
        .unwrap()
        .verify(&roots, &intermediates, now())
        .unwrap();
    assert_eq!(verified.signed_by, vec!["DEV/GOV/HEALTH".parse().unwrap()]);
    assert_eq!(
        verified.auth_cert_hash.unwrap().0,
        auth.certificate.sha256_fingerprint()
    );

    let unapproved = sign(
        &auth_request(&server, &foreign_auth.certificate),
        &foreign_auth,
        &foreign_auth,
        &foreign_owner,
    );
    let text = reason(
        unapproved
            .verify(&roots, &intermediates, now())
            .unwrap_err(),
    );
    assert!(text.contains("not from an approved ca"), "{text}");

    let wrong_owner = sign(
        &auth_request(&server, &auth.certificate),
        &auth,
        &auth,
        &other_member,
    );
    let text = reason(
        wrong_owner
            .verify(&roots, &intermediates, now())
            .unwrap_err(),
    );
    assert!(
        text.contains("not signed by the server owner DEV/GOV/HEALTH (signed by: DEV/GOV/EDU)"),
        "{text}"
    );

    // Signed with another auth key, presenting its own certificate.
    let mismatched = sign(
        &auth_request(&server, &auth.certificate),
        &other_auth,
        &other_auth,
        &owner,
    );
    let text = reason(
        mismatched
            .verify(&roots, &intermediates, now())
            .unwrap_err(),
    );
    assert!(text.contains("auth key mismatch"), "{text}");

    // Signed with another auth key, presenting the registered certificate.
    let forged = sign(
        &auth_request(&server, &auth.certificate),
        &auth,
        &other_auth,
        &owner,
    );
    let text = reason(forged.verify(&roots, &intermediates, now()).unwrap_err());
    assert!(text.contains("does not verify"), "{text}");

    // Any change to the signed text breaks the signatures.
    let mut tampered = good.clone();
    tampered.request = tampered.request.replace("ss1.dev:5500", "evil.dev:5500");
    let text = reason(tampered.verify(&roots, &intermediates, now()).unwrap_err());
    assert!(text.contains("does not verify"), "{text}");
}

#[test]
fn client_registration_needs_both_members() {
    let pki = pki("DEV");
    let (roots, intermediates) = trust(&pki);
    let owner = pki.sign_cert("DEV/GOV/HEALTH");
    let client_member = pki.sign_cert("DEV/GOV/EDU");
    let request = RegistrationRequest {
        created_at: now(),
        action: RequestAction::Client {
            server: "DEV/GOV/HEALTH/ss1".parse().unwrap(),
            client: "DEV/GOV/EDU/schools".parse().unwrap(),
        },
    };
    let both = SignedRequest::sign(&request, &[signer(&owner), signer(&client_member)]).unwrap();
    both.verify(&roots, &intermediates, now()).unwrap();
    let only_owner = SignedRequest::sign(&request, &[signer(&owner)]).unwrap();
    let text = reason(
        only_owner
            .verify(&roots, &intermediates, now())
            .unwrap_err(),
    );
    assert!(
        text.contains("not signed by the client's member DEV/GOV/EDU"),
        "{text}"
    );
}

#[test]
fn service_publication_is_signed_by_the_provider() {
    let pki = pki("DEV");
    let (roots, intermediates) = trust(&pki);
    let provider = pki.sign_cert("DEV/GOV/HEALTH");
    let service = passerelle_globalconf::ServiceDescriptor {
        id: "DEV/GOV/EDU/schools/pupils".parse().unwrap(),
        title: "Pupils".to_owned(),
        description: String::new(),
        endpoints: vec![],
        openapi_url: None,
        openapi_sha256: None,
    };
    let request = RegistrationRequest {
        created_at: now(),
        action: RequestAction::ServicePublication {
            provider: "DEV/GOV/HEALTH/registry".parse().unwrap(),
            services: vec![service],
        },
    };
    let signed = SignedRequest::sign(
        &request,
        &[RequestSigner {
            role: SignerRole::Member,
            key: provider.key.as_ref().unwrap(),
            chain: &provider.chain,
        }],
    )
    .unwrap();
    let text = reason(signed.verify(&roots, &intermediates, now()).unwrap_err());
    assert!(
        text.contains(
            "service DEV/GOV/EDU/schools/pupils does not belong to provider DEV/GOV/HEALTH/registry"
        ),
        "{text}"
    );
}
