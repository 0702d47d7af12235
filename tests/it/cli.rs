//! The binary's command line: piped shell, check, plugins list.

use std::process::{Command, Output};

use deckhand_it::{config_text, deckhand_binary, plugin_library, run_deckhand};

fn setup(plugins: &[&str], extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    for name in plugins {
        let lib = plugin_library(name);
        std::fs::copy(&lib, plugin_dir.join(lib.file_name().unwrap())).unwrap();
    }
    let config = dir.path().join("deckhand.toml");
    std::fs::write(
        &config,
        config_text(&plugin_dir, &dir.path().join("state.db"), extra),
    )
    .unwrap();
    (dir, config)
}

fn deckhand(args: &[&str], config: &std::path::Path, stdin: &str) -> Output {
    deckhand_bytes(args, config, stdin.as_bytes())
}

fn deckhand_bytes(args: &[&str], config: &std::path::Path, stdin: &[u8]) -> Output {
    run_deckhand(args, config, &[], stdin)
}

#[test]
fn invalid_utf8_is_answered_and_the_session_goes_on() {
    let (_dir, config) = setup(&["echo"], "");
    let out = deckhand_bytes(&["shell"], &config, b"/echo caf\xff\n/whoami\n");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("the bot writes UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "error: line 1 is not valid UTF-8 (byte 0xff at column 10); nothing was run"
    );
    assert!(lines[1].starts_with("You are Local operator"), "{stdout}");
}

#[test]
fn control_characters_from_input_are_never_echoed_raw() {
    let (_dir, config) = setup(&["echo"], "");
    let out = deckhand(
        &["shell"],
        &config,
        "/nope\u{1b}[2J\u{7}\u{8}x\n/aks pools --cluster \u{1b}]0;pwned\u{7}\n/whoami\n",
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in {stdout:?}"
    );
    assert!(stdout.contains("/nope\\u{1b}[2J\\u{7}\\u{8}x"), "{stdout}");
    assert!(stdout.contains("You are Local operator"), "{stdout}");
}

#[test]
fn piped_shell_answers_each_line_in_order() {
    let (_dir, config) = setup(&["echo"], "");
    let out = deckhand(&["shell"], &config, "/echo hello\n\n/count\n/whoami\n");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(
        lines[1],
        "2 calls served by this copy (configured greeting)"
    );
    assert!(
        lines[2].starts_with("You are Local operator (user id local)"),
        "{stdout}"
    );
}

#[test]
fn check_passes_a_good_config_and_names_file_line_and_key_for_a_bad_one() {
    let (_dir, config) = setup(&["echo"], "");
    let ok = deckhand(&["check"], &config, "");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (1 plugins loaded)"));

    let (_dir, bad) = setup(&["echo"], "\n[terminal_typo]\nx = 1\n");
    let out = deckhand(&["check"], &bad, "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains("terminal_typo"), "{stderr}");
    let line = std::fs::read_to_string(&bad)
        .unwrap()
        .lines()
        .position(|l| l.contains("[terminal_typo]"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
}

#[test]
fn check_fails_when_a_plugin_does_not_load() {
    let (_dir, config) = setup(&["echo", "wrongabi"], "");
    let out = deckhand(&["check"], &config, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ABI version"));
}

#[test]
fn plugins_list_json_prints_manifests() {
    let (_dir, config) = setup(&["echo"], "");
    let out = deckhand(&["plugins", "list", "--json"], &config, "");
    assert!(out.status.success());
    let manifests: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifests[0]["name"], "echo");
    assert_eq!(manifests[0]["capabilities"]["programs"][0], "greet");
}

#[test]
fn missing_secret_variable_is_reported_with_its_line() {
    let (_dir, config) = setup(&["echo"], "");
    let out = Command::new(deckhand_binary())
        .args(["check", "--config"])
        .arg(&config)
        .env_remove("DECKHAND_IT_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable DECKHAND_IT_TOKEN is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("line "), "{stderr}");
}

#[test]
fn shell_with_sandbox_says_so_and_points_cloud_services_at_it() {
    let (_dir, config) = setup(&["cloudprobe"], "");
    let out = deckhand(
        &["shell", "--sandbox"],
        &config,
        "/kube list Node --cluster pangeoCluster\n/arm GET /resourceGroups/pangeo --api 2025-04-01\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no real cloud is touched"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let nodes: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(
        nodes["body"]["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()),
        "{stdout}"
    );
    let group: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(group["body"]["name"], "pangeo");
}

#[test]
fn shell_without_sandbox_never_starts_it() {
    let (_dir, config) = setup(&["cloudprobe"], "");
    let out = deckhand(
        &["shell"],
        &config,
        "/arm GET /resourceGroups/pangeo --api 2025-04-01\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Azure is not configured"), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sandbox"));
}

fn plugin_copy_folders(temp: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(temp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("deckhand-plugins-"))
        .collect();
    names.sort();
    names
}

fn shell_with_tmpdir(config: &std::path::Path, temp: &std::path::Path, stdin: &str) -> Output {
    run_deckhand(
        &["shell"],
        config,
        &[("TMPDIR", temp.as_os_str())],
        stdin.as_bytes(),
    )
}

#[test]
fn shell_exit_removes_its_plugin_copies() {
    let (dir, config) = setup(&["echo"], "");
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    for stdin in ["/help\n", "/quit\n/help\n", ""] {
        let out = shell_with_tmpdir(&config, &temp, stdin);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            plugin_copy_folders(&temp),
            Vec::<String>::new(),
            "after {stdin:?}"
        );
    }
}

#[test]
fn shell_start_removes_stale_plugin_copies_of_dead_processes_only() {
    let (dir, config) = setup(&["echo"], "");
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let dead = temp.join("deckhand-plugins-999999999-abc");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("1-libdeckhand_testplugin_echo.so"), b"stale").unwrap();
    let live = format!("deckhand-plugins-{}-abc", std::process::id());
    std::fs::create_dir(temp.join(&live)).unwrap();
    let foreign = "deckhand-plugins-notapid";
    std::fs::create_dir(temp.join(foreign)).unwrap();
    let out = shell_with_tmpdir(&config, &temp, "/whoami\n");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("You are Local operator"));
    assert_eq!(
        plugin_copy_folders(&temp),
        vec![live, foreign.to_owned()],
        "the dead pid's folder goes; the live pid's and a non-matching one stay"
    );
}

/// A mistyped key in `[plugins.config.vk]` (which vk's typed config refuses) is reported by
/// `deckhand check` with the file, the line and the key, and the known keys.
#[test]
fn check_reports_a_plugin_config_typo_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let vk = deckhand_it::product_plugin_library("vk");
    std::fs::copy(&vk, plugin_dir.join(vk.file_name().unwrap())).unwrap();
    let config = dir.path().join("deckhand.toml");
    let extra = "\n[plugins.config.vk]\nresource_group = \"pangeo\"\naci_subnt = \"aci\"\n";
    let text = config_text(&plugin_dir, &dir.path().join("state.db"), extra);
    let line = text
        .lines()
        .position(|l| l.starts_with("aci_subnt"))
        .unwrap()
        + 1;
    std::fs::write(&config, &text).unwrap();
    let out = deckhand(&["check"], &config, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:{line}: plugin vk: [plugins.config.vk]: unknown field `aci_subnt`, expected one of `resource_group`, `default_cluster`, `kube_cluster`, `aci_subnet`",
            config.display()
        )),
        "{stderr}"
    );
}

/// The quick start's config, as shipped, checks clean after a workspace build: every library
/// in target/debug that its plugin prefix matches is a plugin that loads (a proc-macro crate
/// named `deckhand_plugin_*` once slipped in).
#[test]
fn the_shipped_config_checks_clean() {
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/deckhand.toml");
    let out = run_deckhand(&["check"], &shipped, &[], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok (6 plugins loaded)"), "{stdout}");
}
