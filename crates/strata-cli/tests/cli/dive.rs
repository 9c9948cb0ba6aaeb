//! `strata dive --ci`: dive's rules on generated images built to sit either side of each
//! threshold, a `.dive-ci` file, `--json FILE`, `--archive`, and the numbers agreeing
//! with `strata layers`.

use serde_json::Value;

use crate::common::{Entry, Env, write_tar};

/// `waste:1`: a base of two 1000-byte files (`keep`, `big`); layer 2 writes `big` again
/// (1000 bytes) and adds `gone`; layer 3 deletes `gone`. Wasted: the first `big` and
/// `gone` (10 bytes) = 1010 of 3010 added; above the base 1010 added, so the user
/// wasted percent is 1.0.
pub fn waste_image() -> Env {
    let env = Env::new();
    std::fs::create_dir_all(env.path("root")).unwrap();
    std::fs::write(env.path("root/keep"), [1u8; 1000]).unwrap();
    std::fs::write(env.path("root/big"), [2u8; 1000]).unwrap();
    env.ok(&["import", "root", "base:1"]);
    write_tar(&env.path("l2.tar"), &[Entry::File("big", &[3u8; 1000]), Entry::File("gone", &[4u8; 10])]);
    env.ok(&["append", "base:1", "l2.tar", "waste:0", "-m", "rewrite big"]);
    write_tar(&env.path("l3.tar"), &[Entry::File(".wh.gone", b"")]);
    env.ok(&["append", "waste:0", "l3.tar", "waste:1", "-m", "delete gone"]);
    env
}

/// The rule flags that leave only `only` judged.
fn only(rule: &str, value: &str) -> Vec<String> {
    ["lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent"]
        .iter()
        .map(|r| format!("--{r}={}", if *r == rule { value } else { "disabled" }))
        .collect()
}

fn dive(env: &Env, args: &[String]) -> crate::common::Run {
    let mut all: Vec<&str> = vec!["dive", "--ci", "waste:1"];
    all.extend(args.iter().map(String::as_str));
    env.run(&all)
}

#[test]
fn each_rule_passes_and_fails_either_side_of_its_threshold() {
    let env = waste_image();
    // efficiency 1 - 1010/3010 = 0.664..; wasted 1010 bytes; user wasted 1010/1010 = 1.0.
    let cases = [
        ("lowestEfficiency", "0.66", "0.67"),
        ("highestWastedBytes", "1010", "1009"),
        ("highestWastedBytes", "1.01kB", "1kB"),
        ("highestUserWastedPercent", "1.0", "0.99"),
    ];
    for (rule, pass, fail) in cases {
        let r = dive(&env, &only(rule, pass));
        assert_eq!(r.code, 0, "{rule}={pass}:\n{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("PASS: {rule}")), "{}", r.stdout);
        assert!(r.stdout.contains("Result:PASS [Total:3] [Passed:1] [Failed:0] [Warn:0] [Skipped:2]"), "{}", r.stdout);
        let r = dive(&env, &only(rule, fail));
        assert_eq!(r.code, 1, "{rule}={fail}:\n{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("FAIL: {rule}: ")), "{}", r.stdout);
        assert!(r.stdout.contains("Result:FAIL [Total:3] [Passed:0] [Failed:1]"), "{}", r.stdout);
    }
    // Kebab case is the same flag.
    let r = env.run(&["dive", "--ci", "waste:1", "--lowest-efficiency=0.67", "--highest-user-wasted-percent", "2"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("FAIL: lowestEfficiency") && r.stdout.contains("PASS: highestUserWastedPercent"));
    // A bad value fails its rule, saying why.
    let r = dive(&env, &only("highestWastedBytes", "lots"));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("invalid config value ('lots')"), "{}", r.stdout);
    // The wasted files, biggest first, with how many times each was written.
    assert!(r.stdout.contains("    2           1kB  /big\n    1           10B  /gone"), "{}", r.stdout);
    // A clean image passes dive's defaults.
    let r = env.run(&["dive", "--ci", "base:1"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("SKIP: highestWastedBytes: rule disabled"), "{}", r.stdout);
}

#[test]
fn a_dive_ci_file_is_read_and_flags_override_it() {
    let env = waste_image();
    // .dive-ci in the current directory is read by default.
    std::fs::write(
        env.path(".dive-ci"),
        "rules:\n  # dive's format\n  lowestEfficiency: 0.67\n  highestWastedBytes: disabled\n  highestUserWastedPercent: \"disabled\"\n",
    )
    .unwrap();
    let r = env.run(&["dive", "--ci", "waste:1"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Using CI config: .dive-ci"), "{}", r.stdout);
    assert!(r.stdout.contains("FAIL: lowestEfficiency") && r.stdout.contains("[Skipped:2]"), "{}", r.stdout);
    // A flag overrides the file.
    let r = env.run(&["dive", "--ci", "waste:1", "--lowestEfficiency=0.5"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // --ci-config names another file; what it leaves out takes dive's defaults.
    std::fs::write(env.path("other.yaml"), "rules:\n  highestWastedBytes: 2KB\n").unwrap();
    let r = env.run(&["dive", "--ci", "--ci-config", "other.yaml", "waste:1"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("PASS: highestWastedBytes"), "{}", r.stdout);
    assert!(r.stdout.contains("FAIL: highestUserWastedPercent") && r.stdout.contains("FAIL: lowestEfficiency"));
    // A broken file, or a missing one named, is an error (exit 1, clean message).
    std::fs::write(env.path("bad.yaml"), "rules: [").unwrap();
    let err = env.fails(&["dive", "--ci", "--ci-config", "bad.yaml", "waste:1"], 1);
    assert!(err.contains("bad.yaml"), "{err}");
    let err = env.fails(&["dive", "--ci", "--ci-config", "nope.yaml", "waste:1"], 1);
    assert!(err.contains("nope.yaml"), "{err}");
}

#[test]
fn json_file_archive_and_layers_agree() {
    let env = waste_image();
    let r = env.run(&["dive", "--ci", "waste:1", "--json", "a.json", "--lowestEfficiency=disabled"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let a: Value = serde_json::from_slice(&std::fs::read(env.path("a.json")).unwrap()).unwrap();
    let layers: Value = serde_json::from_str(&env.ok(&["--json", "layers", "waste:1"])).unwrap();
    for k in ["bytes_added", "bytes_wasted", "efficiency", "size"] {
        assert_eq!(a[k], layers[k], "{k}");
    }
    assert_eq!(a["bytes_wasted"], 1010);
    assert_eq!(a["user_wasted_percent"], 1.0);
    let l = a["layers"].as_array().unwrap();
    let changes =
        |i: usize| (l[i]["paths_added"].clone(), l[i]["paths_modified"].clone(), l[i]["paths_removed"].clone());
    assert_eq!(changes(1), (1.into(), 1.into(), 0.into()));
    assert_eq!(changes(2), (0.into(), 0.into(), 1.into()));
    assert_eq!(l[2]["created_by"], "strata append");
    assert_eq!(a["wasted_files"][0]["path"], "/big");
    assert_eq!(a["wasted_files"][0]["writes"], 2);
    assert_eq!(a["wasted_files"][1]["path"], "/gone");
    // The same image from an archive, read without the store.
    env.ok(&["save", "waste:1", "-o", "w.tar"]);
    let r = Env::new().run(&[
        "dive",
        "--ci",
        "--archive",
        env.path("w.tar").to_str().unwrap(),
        "--json=b.json",
        "--highestWastedBytes=1010",
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PASS: highestWastedBytes") && r.stdout.contains("wastedBytes: 1010 bytes"));
    // Without --ci (and CI unset): the layers and the details, exit 0.
    let mut c = env.cmd(&["dive", "waste:1"]);
    c.env_remove("CI");
    let r = crate::common::run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("strata append") && r.stdout.contains("Inefficient Files:"), "{}", r.stdout);
    assert!(!r.stdout.contains("Result:"), "{}", r.stdout);
}

#[test]
fn a_registry_reference_is_pulled_into_a_temporary_store_or_kept() {
    if !strata_testkit::require_tool("docker-registry") {
        return;
    }
    let reg = strata_testkit::Registry::start("", "");
    let env = waste_image();
    let dest = format!("{}/waste:1", reg.host());
    env.ok(&["push", "waste:1", &dest]);
    // A fresh store: the image is pulled to a temporary store, analysed, and the store
    // stays as it was (not even created).
    let other = Env::new();
    let r = other.run(&["dive", "--ci", &dest, "--highestWastedBytes=1010", "--json", "pulled.json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("PASS: highestWastedBytes") && r.stdout.contains("wastedBytes: 1010 bytes"),
        "{}",
        r.stdout
    );
    let a: Value = serde_json::from_slice(&std::fs::read(other.path("pulled.json")).unwrap()).unwrap();
    assert_eq!(a["layers"].as_array().unwrap().len(), 3);
    assert!(!other.store().exists());
    // --keep: pulled into the store, there after.
    let r = other.run(&["dive", "--ci", "--keep", &dest, "--highestWastedBytes=1010"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(other.ok(&["images"]).contains(&format!("{}/waste", reg.host())));
    // A registry reference nobody serves is a clean error.
    let err = Env::new().fails(&["dive", "--ci", &format!("{}/nope:1", reg.host())], 1);
    assert!(err.contains("nope"), "{err}");
}
