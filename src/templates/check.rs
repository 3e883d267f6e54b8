//! What `templates check` reports: every problem of a set, found by
//! rendering each type with and without elite from the keys' defaults,
//! then looking for unknown variables in branches those renders skipped.

use std::collections::{BTreeMap, BTreeSet};

use super::render::unknown_variable_message;
use super::{Problem, TemplateSet, context};

impl TemplateSet {
    /// Every problem of the set: what loading found, then every type
    /// rendered with and without elite from the keys' defaults, then any
    /// unknown variable in a branch those renders did not take.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = self.problems.clone();
        let push = |p: Problem, out: &mut Vec<Problem>| {
            if !out.contains(&p) {
                out.push(p);
            }
        };
        if !out.is_empty() {
            return out;
        }
        let now = jiff::Timestamp::now();
        for spec in &self.manifest.types {
            let mut values = BTreeMap::new();
            for key in &self.manifest.keys {
                if let Ok(v) = key.default_for(&spec.name) {
                    values.insert(key.name.clone(), v);
                }
            }
            for elite in [false, true] {
                let ctx = context("my-repo", &spec.name, elite, now, &values);
                let (_, problems, of_outputs) = self.plan(spec, elite, "my-repo", &ctx, false);
                for p in problems.into_iter().chain(of_outputs) {
                    push(p, &mut out);
                }
            }
        }
        let env = self.environment();
        let known: BTreeSet<String> = self
            .known_variables()
            .into_iter()
            .chain(env.globals().map(|(n, _)| n.to_owned()))
            .collect();
        for (path, file) in self.files.iter() {
            if !path.ends_with(&self.manifest.files.template_suffix) {
                continue;
            }
            let Ok(tmpl) = env.get_template(path) else {
                continue;
            };
            let mut unknown: Vec<String> = tmpl
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !known.contains(v))
                .collect();
            unknown.sort();
            let text = String::from_utf8_lossy(&file.contents);
            for var in unknown {
                let line = first_line_with_word(&text, &var);
                let p = Problem {
                    file: file.shown.clone(),
                    line: Some(line),
                    message: unknown_variable_message(&var, &known_list(self)),
                };
                if !out
                    .iter()
                    .any(|o| o.file == p.file && o.line == p.line && o.message.contains(&var))
                {
                    out.push(p);
                }
            }
        }
        out
    }
}

fn known_list(set: &TemplateSet) -> String {
    set.known_variables().join(", ")
}

/// The first line of `text` where `word` appears as a whole identifier.
fn first_line_with_word(text: &str, word: &str) -> usize {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = line[from..].find(word) {
            let start = from + pos;
            let end = start + word.len();
            let before = line[..start].chars().next_back();
            let after = line[end..].chars().next();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                return i + 1;
            }
            from = end;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_set_loads_and_checks_clean() {
        let set = TemplateSet::embedded().expect("embedded set");
        assert_eq!(set.manifest.type_names(), ["service", "infra", "tool"]);
        let keys: Vec<&str> = set.manifest.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            keys,
            ["description", "org", "python_version", "port", "version"]
        );
        assert_eq!(set.check(), Vec::<Problem>::new());
    }
}
