//! Item 11: `--set` numbers are checked against exact patterns; a sign,
//! spaces, leading zeros or non-ASCII digits are refused (exit 2, nothing
//! created).

use std::ffi::OsStr;

use crate::support::Sandbox;

#[test]
fn signed_spaced_or_non_ascii_numbers_are_refused() {
    let sb = Sandbox::new();
    let repos = sb.repos();
    for set in [
        "port=+8000",
        "port= 8000",
        "port=8000 ",
        "port=08000",
        "port=８０００",
        "port=-8000",
        "python_version=3.+12",
        "python_version=3.+1",
        "python_version=3. 12",
        "python_version=3.１２",
        "python_version=+3.12",
        "version=+1.2.3",
        "version=1.+2.3",
    ] {
        let (key, _) = set.split_once('=').unwrap();
        sb.assert_error(
            [
                OsStr::new("svc"),
                OsStr::new("--set"),
                OsStr::new(set),
                OsStr::new("--out-dir"),
                repos.as_os_str(),
            ],
            2,
            &format!("invalid --set {key}="),
        );
        assert!(!repos.exists(), "--set {set} created something");
        assert!(!sb.data().join("spawn-elite/ledger.jsonl").exists());
    }
}
