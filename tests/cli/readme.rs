//! README.md's examples are the binary's real output: a spawn's summary is
//! checked line by line, with only what differs between machines (the
//! path, the commit id and the Merkle root) left out of the comparison.

use crate::support::Sandbox;

/// The lines of the README's first `console` block that follow `$ COMMAND`.
fn readme_output_of(command: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let block = readme
        .split("```console\n")
        .skip(1)
        .find_map(|b| b.strip_prefix(&format!("$ {command}\n")))
        .unwrap_or_else(|| panic!("no console block for `$ {command}` in README.md"));
    let end = block.find("```").expect("the block ends");
    block[..end].lines().map(str::to_owned).collect()
}

/// `line` with each run of exactly `len` hex digits replaced by `<hexLEN>`,
/// and `home` by `/home/you`.
fn normalised(line: &str, home: &str) -> String {
    let line = line.replace(home, "/home/you");
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hex = word
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        if hex && (word.len() == 12 || word.len() == 64) {
            out.push_str(&format!("<hex{}>", word.len()));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[test]
fn the_readmes_example_spawn_prints_what_a_spawn_prints() {
    let sb = Sandbox::new();
    let wanted = readme_output_of("spawn-elite payments");
    // Into the default ~/repos, as the README's example does.
    let out = sb.run(["payments"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let home = sb.home().display().to_string();
    let got: Vec<String> = out.stdout.lines().map(|l| normalised(l, &home)).collect();
    let wanted: Vec<String> = wanted.iter().map(|l| normalised(l, "/home/you")).collect();
    assert_eq!(
        got, wanted,
        "README.md's example output (the first console block) differs from a real spawn; update the README"
    );
    // The counts it shows are the real ones.
    let receipt: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.home().join("repos/payments/.spawn-elite/receipt.json"))
            .expect("receipt"),
    )
    .expect("json");
    let files = receipt["leaf_count"].as_u64().expect("leaf_count");
    assert!(
        wanted[1].starts_with(&format!("  {files} files, initial commit ")),
        "{files} files in the receipt vs {:?}",
        wanted[1]
    );
}
