//! `docs/errors.md` and the `FaultCode` enum must list the same codes with the same statuses and
//! meanings; this test fails as soon as one changes without the other.

use std::collections::BTreeMap;

use passerelle_ids::FaultCode;

fn documented_rows() -> BTreeMap<String, (u16, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
    let text = std::fs::read_to_string(path).expect("docs/errors.md is readable");
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `Code` | status | meaning |
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let code = cells[1].trim_matches('`').to_owned();
        let status = cells[2]
            .parse()
            .unwrap_or_else(|_| panic!("{code}: status {:?}", cells[2]));
        let previous = rows.insert(code.clone(), (status, cells[3].to_owned()));
        assert!(previous.is_none(), "{code} is documented twice");
    }
    rows
}

#[test]
fn every_fault_code_is_documented_exactly() {
    let documented = documented_rows();
    let in_code: BTreeMap<String, (u16, String)> = FaultCode::ALL
        .iter()
        .map(|fault| {
            (
                fault.code().to_owned(),
                (fault.http_status(), fault.meaning().to_owned()),
            )
        })
        .collect();
    for (code, row) in &in_code {
        assert_eq!(
            documented.get(code),
            Some(row),
            "docs/errors.md disagrees with the enum on {code}"
        );
    }
    for code in documented.keys() {
        assert!(
            in_code.contains_key(code),
            "docs/errors.md lists {code}, which the enum does not have"
        );
    }
}
