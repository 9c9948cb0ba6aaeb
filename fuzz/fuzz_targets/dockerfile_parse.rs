//! The Dockerfile parser, the word lexer (variable substitution) and the .dockerignore
//! parser on any text: no panic, and no blow-up in time or memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_build::dockerfile::{Dockerfile, Ignore, Lexer};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(df) = Dockerfile::parse("Dockerfile", &text) {
        let _ = df.stage_index("base");
        let lexer = df.lexer();
        let env = |k: &str| (k.len() < 4).then(|| format!("v{k}"));
        for s in &df.stages {
            for i in std::iter::once(&s.from).chain(&s.instructions) {
                let _ = i.instruction.keyword();
                let _ = lexer.process_words(&i.text, &env);
            }
        }
    }
    for escape in ['\\', '`'] {
        let lexer = Lexer::new(escape);
        let env = |k: &str| (!k.is_empty() && k.len() < 4).then(|| k.repeat(3));
        let _ = lexer.process_word(&text, &env);
        let _ = lexer.process_words(&text, &env);
    }
    if let Ok(ig) = Ignore::parse(&text) {
        for p in ["a", "a/b", "Dockerfile", "x/y/z.txt", ".git", "", "/", "../a"] {
            let _ = ig.is_ignored(p);
        }
        let _ = ig.has_exceptions();
        // Paths taken from the input too.
        for line in text.lines().take(8) {
            let _ = ig.is_ignored(line);
        }
    }
});
