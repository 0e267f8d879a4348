//! `gen-docs --out DIR [--date DATE]`: writes the man pages and the shell
//! completions of every program in the package, from the clap descriptions
//! that the tools' crates give (collected in `tools.rs`):
//!
//! ```text
//! DIR/man/man1/uml_switch.1 ...   DIR/man/man8/tunctl.8
//! DIR/completions/bash/uml_switch   DIR/completions/zsh/_uml_switch
//! DIR/completions/fish/uml_switch.fish
//! ```
//!
//! `packaging/build-deb` runs it before cargo-deb, which compresses the man
//! pages and installs everything at Debian's paths.

#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;
use uml_utilities_packaging::{render, tools};

const USAGE: &str = "usage: gen-docs --out DIR [--date DATE]\n";

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn generate(out: &Path, date: Option<&str>) -> Result<usize, String> {
    let mut count = 0;
    for tool in tools::tools() {
        let page = render::man_page(&tool, date)
            .map_err(|e| format!("cannot render the man page of {}: {e}", tool.name))?;
        let man = out
            .join("man")
            .join(format!("man{}", tool.section))
            .join(render::man_file_name(&tool));
        write(&man, &page)?;
        count += 1;
        if !tool.completions {
            continue;
        }
        for shell in render::SHELLS {
            let (file, _) = render::completion_file(&tool, shell);
            let dir = match shell {
                Shell::Zsh => "zsh",
                Shell::Fish => "fish",
                _ => "bash",
            };
            let script = render::completion(&tool, shell);
            if script.is_empty() {
                // fish has nothing to complete for operands alone.
                continue;
            }
            let path = out.join("completions").join(dir).join(file);
            write(&path, &script)?;
            count += 1;
        }
    }
    Ok(count)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out: Option<PathBuf> = None;
    let mut date: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--out", Some(v)) => out = Some(PathBuf::from(v)),
            ("--date", Some(v)) => date = Some(v.clone()),
            _ => {
                eprint!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(out) = out else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    // Start from an empty tree: a renamed page must not linger.
    for sub in ["man", "completions"] {
        let dir = out.join(sub);
        if dir.exists() {
            if let Err(e) = fs::remove_dir_all(&dir) {
                eprintln!("gen-docs: cannot remove {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    match generate(&out, date.as_deref()) {
        Ok(n) => {
            println!("gen-docs: wrote {n} files under {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
