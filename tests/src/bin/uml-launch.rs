//! `uml-launch PROGRAM [ARGS...]`: installs a tiny seccomp filter on itself,
//! then replaces itself with `PROGRAM ARGS...` (the filter is inherited).
//!
//! Why: on hosts whose CPU has AMX, Debian's `linux.uml` 6.1 dies during
//! init with `userspace - ptrace set fp regs failed, errno = 14`. At boot
//! the kernel probes `ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, iov)`
//! with a buffer sized for its own idea of the XSTATE area; the probe
//! succeeds, UML then uses `PTRACE_SETREGSET` with that too-small buffer and
//! the host answers `EFAULT`. When the probe fails, UML sets
//! `have_xstate_support = 0` and falls back to `PTRACE_GETFPREGS`/
//! `PTRACE_SETFPREGS`, which work. The filter below makes exactly that probe
//! (`PTRACE_GETREGSET` with `NT_X86_XSTATE`) fail with `EIO` and allows every
//! other system call. It is applied on every host: where the CPU has no
//! AMX the fallback path is simply the classic FP register path UML always
//! supported.
//!
//! Newer kernels, such as the 7.x test kernel, must not be started through
//! this launcher: they take the XSTATE size from that very probe and treat
//! its failure as fatal (7.2.7 exits at once with `Failed to initialize
//! default registers`), and so need no workaround. The harness starts them
//! directly.
//!
//! `seccompiler::apply_filter` always sets `PR_SET_NO_NEW_PRIVS` first (an
//! unprivileged process needs it to install a filter; the crate offers no
//! way around it without unsafe code). For a root caller this changes
//! nothing in practice: setuid-root helpers such as `uml_net` run with the
//! privileges root already has. Tests that need a setuid helper to gain
//! privileges from an unprivileged user cannot use this launcher.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// `PTRACE_GETREGSET` request number.
const PTRACE_GETREGSET: u64 = 0x4204;
/// `NT_X86_XSTATE` register-set type.
const NT_X86_XSTATE: u64 = 0x202;
/// `EIO`: what the probe is made to fail with.
const EIO: u32 = 5;

fn build_filter() -> Result<seccompiler::BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| format!("unsupported architecture: {e}"))?;
    let cond = |index: u8, value: u64| {
        SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
            .map_err(|e| format!("bad seccomp condition: {e}"))
    };
    let rule = SeccompRule::new(vec![cond(0, PTRACE_GETREGSET)?, cond(2, NT_X86_XSTATE)?])
        .map_err(|e| format!("bad seccomp rule: {e}"))?;
    let rules = BTreeMap::from([(libc::SYS_ptrace, vec![rule])]);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(EIO), arch)
        .map_err(|e| format!("bad seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("cannot compile seccomp filter: {e}"))
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: uml-launch PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let filter = match build_filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("uml-launch: {e}");
            return ExitCode::from(125);
        }
    };
    if let Err(e) = seccompiler::apply_filter(&filter) {
        eprintln!("uml-launch: cannot install seccomp filter: {e}");
        return ExitCode::from(125);
    }
    let err = Command::new(&program).args(args).exec();
    eprintln!(
        "uml-launch: cannot execute {}: {err}",
        program.to_string_lossy()
    );
    ExitCode::from(127)
}
