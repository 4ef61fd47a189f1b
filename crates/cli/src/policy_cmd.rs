//! `policy check` and `policy test`: the policy author's tools, working on
//! a directory of `.cedar` files without a running gateway (`policy
//! simulate`, which also reads the store, is in `simulate_cmd.rs`).

use std::path::Path;
use std::time::Duration;

use countersign_policy::cases::{parse_cases, run, Case, CaseResult};
use countersign_policy::{Defaults, PolicyEngine, PolicyLoadError};
use serde_json::json;

use crate::cli::PolicyCommand;
use crate::exit::Exit;
use crate::output::{Output, Style};

/// The built-in defaults for annotations a policy leaves out (a gateway
/// may configure others; they do not change any decision).
const DEFAULTS: Defaults = Defaults { timeout: Duration::from_secs(1800), valid_for: Duration::from_secs(600) };

pub async fn run_command(command: PolicyCommand, output: Output) -> anyhow::Result<Exit> {
    match command {
        PolicyCommand::Check { dir } => check(&dir, output),
        PolicyCommand::Test { dir, cases } => test(&dir, &cases, output),
        PolicyCommand::Simulate { dir, since, store } => {
            crate::simulate_cmd::simulate(&dir, since, &store, output).await
        }
    }
}

fn check(dir: &Path, output: Output) -> anyhow::Result<Exit> {
    match PolicyEngine::load_dir(dir, DEFAULTS) {
        Ok(engine) => {
            if output.is_json() {
                println!(
                    "{}",
                    json!({"ok": true, "policies": engine.policy_count(), "hash": engine.hash(), "files": engine.files()})
                );
            } else {
                let plural = if engine.policy_count() == 1 { "policy" } else { "policies" };
                println!("ok: {} {plural}, hash {}", engine.policy_count(), engine.hash());
            }
            Ok(Exit::OK)
        }
        Err(error) => {
            let problems = problems(dir, &error);
            if output.is_json() {
                println!("{}", json!({"ok": false, "problems": problems}));
            } else {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                let plural = if problems.len() == 1 { "problem" } else { "problems" };
                eprintln!("{} {} {plural} in {}", Style::stderr().red("error:"), problems.len(), dir.display());
            }
            Ok(Exit::ERROR)
        }
    }
}

/// One line per problem. The engine names files by their bare name;
/// joining the directory makes each line point at a path an editor or a CI
/// annotation can open.
pub(crate) fn problems(dir: &Path, error: &PolicyLoadError) -> Vec<String> {
    error
        .problems()
        .into_iter()
        .map(|problem| match problem.split_once(':') {
            Some((file, rest)) if !file.is_empty() && !file.contains(' ') && dir.join(file).is_file() => {
                format!("{}:{rest}", dir.join(file).display())
            }
            _ => problem,
        })
        .collect()
}

fn test(dir: &Path, cases_file: &Path, output: Output) -> anyhow::Result<Exit> {
    let engine = match PolicyEngine::load_dir(dir, DEFAULTS) {
        Ok(engine) => engine,
        Err(error) => {
            for problem in problems(dir, &error) {
                eprintln!("{problem}");
            }
            anyhow::bail!("the policies in `{}` do not load", dir.display());
        }
    };
    let text = std::fs::read_to_string(cases_file)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", cases_file.display()))?;
    let cases = parse_cases(&cases_file.display().to_string(), &text)?;
    let results = run(&engine, &cases);
    let failed = results.iter().filter(|r| !r.passed).count();
    if output.is_json() {
        let cases: Vec<_> = cases.iter().zip(&results).map(|(case, result)| case_json(case, result)).collect();
        println!(
            "{}",
            json!({
                "ok": failed == 0,
                "passed": results.len() - failed,
                "failed": failed,
                "policy_hash": engine.hash(),
                "cases": cases,
            })
        );
    } else {
        let style = Style::stdout();
        for (case, result) in cases.iter().zip(&results) {
            println!("{}", case_line(case, result, style));
        }
        println!("{} passed, {failed} failed (policy hash {})", results.len() - failed, engine.hash());
    }
    Ok(if failed == 0 { Exit::OK } else { Exit::ERROR })
}

fn case_json(case: &Case, result: &CaseResult) -> serde_json::Value {
    json!({
        "name": result.name,
        "passed": result.passed,
        "outcome": result.outcome.as_str(),
        "policies": result.policies,
        "reason": result.reason,
        "errors": result.errors,
        "expect": case.expect.map(|e| e.as_str()),
        "expect_policies": case.expect_policies,
    })
}

fn case_line(case: &Case, result: &CaseResult, style: Style) -> String {
    let verdict = if result.passed { style.green("PASS") } else { style.red("FAIL") };
    let policies = if result.policies.is_empty() { "no policy".to_owned() } else { result.policies.join(", ") };
    let mut line = format!("{verdict} {} → {} [{policies}]: {}", result.name, result.outcome.as_str(), result.reason);
    if !result.passed {
        let mut wanted = Vec::new();
        if let Some(expect) = case.expect.filter(|e| *e != result.outcome) {
            wanted.push(expect.as_str().to_owned());
        }
        if let Some(expected) = &case.expect_policies {
            let mut sorted = expected.clone();
            sorted.sort();
            sorted.dedup();
            if sorted != result.policies {
                wanted.push(format!("[{}]", sorted.join(", ")));
            }
        }
        line.push_str(&format!(" (expected {})", wanted.join(" ")));
    }
    for error in &result.errors {
        line.push_str(&format!("\n     policy error: {error}"));
    }
    line
}
