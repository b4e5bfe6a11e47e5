//! Every committed fuzz input, replayed through its target on the ordinary
//! build: the seeds, and the inputs of crashes found and fixed, so a
//! regression fails `cargo test` without an instrumented build.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use herald_fuzz_targets::TARGETS;

/// `fuzz/`, beside this crate.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_committed_input_passes_its_target() {
    let mut failures = Vec::new();
    let mut inputs = 0;
    for (name, run) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let files = names_in(&dir);
        assert!(!files.is_empty(), "{name} has no seeds in {}", dir.display());
        for file in files {
            let path = dir.join(&file);
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            inputs += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                failures.push(format!("{name} on {}: {message}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {inputs} inputs failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_target_has_a_corpus_and_a_libfuzzer_binary() {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names_in(&fuzz_dir().join("corpus")), names, "fuzz/corpus/ has one directory per target");
    let binaries: Vec<String> =
        names_in(&fuzz_dir().join("fuzz_targets")).iter().map(|file| file.trim_end_matches(".rs").to_owned()).collect();
    assert_eq!(binaries, names, "fuzz/fuzz_targets/ has one file per target");
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in names {
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
    }
}
