//! Names for containers created without `--name`: `adjective_noun`, as docker makes
//! them (the words are strata's own).

use std::time::{SystemTime, UNIX_EPOCH};

const ADJECTIVES: [&str; 24] = [
    "amber", "brave", "calm", "clever", "eager", "fond", "gentle", "happy", "jolly", "keen", "lively", "lucid",
    "merry", "nimble", "patient", "quiet", "rapid", "serene", "sharp", "steady", "swift", "tidy", "vivid", "witty",
];

const NOUNS: [&str; 24] = [
    "badger", "beaver", "crane", "falcon", "ferret", "gecko", "heron", "ibis", "jackal", "koala", "lemur", "lynx",
    "marten", "newt", "otter", "panda", "quail", "raven", "salmon", "tapir", "urchin", "vole", "walrus", "yak",
];

/// A name `taken` says is free: `adjective_noun`, then with a number after it.
pub(crate) fn generate(taken: impl Fn(&str) -> bool) -> String {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) as usize
        ^ std::process::id() as usize;
    for attempt in 0..ADJECTIVES.len() * NOUNS.len() {
        let k = seed.wrapping_add(attempt.wrapping_mul(7919));
        let name = format!("{}_{}", ADJECTIVES[k % ADJECTIVES.len()], NOUNS[(k / ADJECTIVES.len()) % NOUNS.len()]);
        if !taken(&name) {
            return name;
        }
    }
    (1..)
        .map(|n| format!("{}_{}{n}", ADJECTIVES[seed % 24], NOUNS[(seed / 24) % 24]))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_free_and_valid() {
        let a = super::generate(|_| false);
        super::super::check_name(&a).unwrap();
        let b = super::generate(|n| n == a);
        assert_ne!(a, b);
        // Every plain name taken: a numbered one.
        let c = super::generate(|n| !n.chars().last().unwrap().is_ascii_digit());
        assert!(c.ends_with('1'), "{c}");
    }
}
