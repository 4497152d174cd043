use passerelle_ids::{GlobalGroupId, IdError, MemberId, SecurityServerId, ServiceId, SubsystemId};

#[test]
fn every_kind_round_trips_through_its_canonical_string_and_serde() {
    fn check<T>(text: &str)
    where
        T: std::str::FromStr<Err = IdError>
            + std::fmt::Display
            + serde::Serialize
            + serde::de::DeserializeOwned
            + PartialEq
            + std::fmt::Debug,
    {
        let parsed: T = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.to_string(), text);
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), parsed);
    }
    check::<MemberId>("BJ/GOV/MINSANTE");
    check::<SubsystemId>("BJ/GOV/MINSANTE/patients");
    check::<ServiceId>("BJ/GOV/MINSANTE/patients/vaccinations");
    check::<SecurityServerId>("BJ/GOV/MINSANTE/ss1");
    check::<GlobalGroupId>("BJ/health-agencies");
    check::<ServiceId>("TN/COM/a'b(c)d+e,f-g.h=i?j_k/x/y");
    let longest = "A".repeat(255);
    check::<MemberId>(&format!("{longest}/{longest}/{longest}"));
}

#[test]
fn accessors_name_each_part() {
    let service: ServiceId = "BJ/GOV/MINSANTE/patients/vaccinations".parse().unwrap();
    assert_eq!(service.instance().as_str(), "BJ");
    assert_eq!(service.member().member_class().as_str(), "GOV");
    assert_eq!(service.member().member_code().as_str(), "MINSANTE");
    assert_eq!(service.subsystem().subsystem_code().as_str(), "patients");
    assert_eq!(service.service_code().as_str(), "vaccinations");
    assert_eq!(service.subsystem().to_string(), "BJ/GOV/MINSANTE/patients");
    let server: SecurityServerId = "BJ/GOV/MINSANTE/ss1".parse().unwrap();
    assert_eq!(server.owner().to_string(), "BJ/GOV/MINSANTE");
    assert_eq!(server.server_code().as_str(), "ss1");
}

#[test]
fn each_forbidden_character_is_named_with_its_part_and_position() {
    for character in [
        '/', ' ', ':', ';', '@', '#', '%', '&', '*', '!', '"', '\\', '<', '>', '[', ']', '{', '}',
        '|', '~', '^', '$', '`', '\t', '\n', '\0', 'é', 'ا', '😀',
    ] {
        let text = format!("BJ/GOV/MIN{character}SANTE");
        let error = text.parse::<MemberId>().unwrap_err();
        if character == '/' {
            assert_eq!(
                error,
                IdError::WrongPartCount {
                    kind: "member",
                    expected: 3,
                    found: 4
                }
            );
        } else {
            assert_eq!(
                error,
                IdError::ForbiddenCharacter {
                    kind: "member",
                    part: "member code",
                    character,
                    position: 4
                },
                "{character:?}"
            );
        }
    }
}

#[test]
fn shape_errors_are_precise() {
    let cases: &[(&str, IdError)] = &[
        (
            "",
            IdError::WrongPartCount {
                kind: "member",
                expected: 3,
                found: 1,
            },
        ),
        (
            "BJ/GOV",
            IdError::WrongPartCount {
                kind: "member",
                expected: 3,
                found: 2,
            },
        ),
        (
            "BJ/GOV/A/B",
            IdError::WrongPartCount {
                kind: "member",
                expected: 3,
                found: 4,
            },
        ),
        (
            "/GOV/A",
            IdError::EmptyPart {
                kind: "member",
                part: "instance",
            },
        ),
        (
            "BJ//A",
            IdError::EmptyPart {
                kind: "member",
                part: "member class",
            },
        ),
        (
            "BJ/GOV/",
            IdError::EmptyPart {
                kind: "member",
                part: "member code",
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&text.parse::<MemberId>().unwrap_err(), expected, "{text:?}");
    }
    assert_eq!(
        "BJ/GOV/A/".parse::<SubsystemId>().unwrap_err(),
        IdError::EmptyPart {
            kind: "subsystem",
            part: "subsystem code"
        }
    );
    assert_eq!(
        "BJ/GOV/A/s".parse::<ServiceId>().unwrap_err(),
        IdError::WrongPartCount {
            kind: "service",
            expected: 5,
            found: 4
        }
    );
    assert_eq!(
        "BJ/GOV/A/ss1/x".parse::<SecurityServerId>().unwrap_err(),
        IdError::WrongPartCount {
            kind: "security server",
            expected: 4,
            found: 5
        }
    );
    assert_eq!(
        "BJ".parse::<GlobalGroupId>().unwrap_err(),
        IdError::WrongPartCount {
            kind: "global group",
            expected: 2,
            found: 1
        }
    );
    let long = "x".repeat(256);
    assert_eq!(
        format!("BJ/{long}/A").parse::<MemberId>().unwrap_err(),
        IdError::PartTooLong {
            kind: "member",
            part: "member class",
            length: 256
        }
    );
    assert!(serde_json::from_str::<MemberId>("\"BJ/GOV\"").is_err());
    assert!(serde_json::from_str::<MemberId>("42").is_err());
}

/// The parsers are fed a committed corpus, plus truncations and bit flips of every entry and a
/// stream of pseudo-random strings; they must answer Ok or Err, never panic.
#[test]
fn parsers_never_panic_on_hostile_input() {
    let corpus_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/corpus");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(corpus_dir)
        .expect("testdata/corpus exists")
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(inputs.len() >= 5, "the corpus is committed");
    let seeds = inputs.clone();
    for seed in &seeds {
        for cut in 0..seed.len() {
            inputs.push(seed[..cut].to_vec());
        }
        for bit in 0..seed.len() * 8 {
            let mut flipped = seed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            inputs.push(flipped);
        }
    }
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..5000 {
        let length = (next(&mut state) % 80) as usize;
        const ALPHABET: &[u8] = b"/%BJGOV0a.'?\xff\x00 ";
        inputs.push(
            (0..length)
                .map(|_| ALPHABET[(next(&mut state) % ALPHABET.len() as u64) as usize])
                .collect(),
        );
    }
    for input in &inputs {
        let text = String::from_utf8_lossy(input);
        let _ = text.parse::<MemberId>();
        let _ = text.parse::<SubsystemId>();
        let _ = text.parse::<ServiceId>();
        let _ = text.parse::<SecurityServerId>();
        let _ = text.parse::<GlobalGroupId>();
        let _ = passerelle_ids::ServicePath::parse(&text);
        let _ = passerelle_ids::ServicePath::parse(&format!("/r1/{text}"));
    }
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
