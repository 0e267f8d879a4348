//! Seccomp allow-lists: the generic part of the confinement of
//! `uml_switch`, `uml_net`, `port-helper` and `uml_watchdog`
//! (`docs/helpers.md` §7).
//!
//! Each tool describes, in its own crate (`src/seccomp.rs`), the system
//! calls it still needs once it is set up, as an [`AllowList`]; this module
//! compiles the list with Firecracker's `seccompiler` (no hand-written BPF)
//! and installs it on every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`,
//! with `PR_SET_NO_NEW_PRIVS`). Afterwards:
//!
//! * a call that is not in the list **kills the process with `SIGSYS`**
//!   (`SECCOMP_RET_KILL_PROCESS`): reaching it means the code does
//!   something it was never written to do, and going on (with an error the
//!   code may not even check) would let a bug continue with whatever state
//!   led to it. The death is visible (status, audit log) rather than a
//!   silently different behaviour;
//! * the calls a list names with [`AllowList::refuse`] fail with `EPERM`
//!   instead: calls a library may make and copes with refusing (e.g. a
//!   probe whose failure has a fallback), where dying would turn a harmless
//!   attempt into an outage;
//! * the calls in [`NEVER`] (running programs, starting processes,
//!   changing identity, mounting, tracing, loading kernel code) cannot be
//!   put in any list: [`AllowList::compile`] refuses them.
//!
//! Memory may not be mapped executable (`mmap`/`mprotect` with
//! `PROT_EXEC`) unless a list says [`AllowList::allow_exec_mappings`]
//! (none does: `uml_net`, whose C library loads name-service modules on
//! demand, looks its names up before it is confined).
//!
//! The filters are written for x86_64 system call numbers: the module
//! exists on x86_64 only, and each confined tool's `src/seccomp.rs` is a
//! compile error elsewhere (the other tools still build), rather than a
//! filter that lets everything through or kills everything.
//!
//! For debugging, [`ENV_DISABLE`]`=1` skips the filter in the tools that
//! honour it (never `uml_net`, whose environment is its caller's). The
//! hidden self-test [`ENV_SELF_TEST`]`=exec` makes a tool, once confined,
//! print its `Seccomp:` line and attempt `execve("")` — which, unconfined,
//! could only fail with `ENOENT`, so the hook can never run a program.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::fmt;
use std::io::{self, Write};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// `UML_UTILITIES_NO_SECCOMP=1`: the debugging escape hatch (not in
/// `uml_net`).
pub const ENV_DISABLE: &str = "UML_UTILITIES_NO_SECCOMP";

/// `UML_UTILITIES_SECCOMP_SELF_TEST=exec`: once confined, attempt an
/// `execve` that the filter must stop (the tests' proof that it does).
pub const ENV_SELF_TEST: &str = "UML_UTILITIES_SECCOMP_SELF_TEST";

/// The exit status of a self-test whose `execve` came back (the filter
/// did not stop it).
pub const SELF_TEST_FAILED: i32 = 125;

/// The architecture the lists are written for.
const ARCH: TargetArch = TargetArch::x86_64;

/// System calls no allow-list may contain, with their names.
pub const NEVER: &[(i64, &str)] = &[
    (libc::SYS_execve, "execve"),
    (libc::SYS_execveat, "execveat"),
    (libc::SYS_fork, "fork"),
    (libc::SYS_vfork, "vfork"),
    (libc::SYS_clone, "clone"),
    (libc::SYS_clone3, "clone3"),
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_process_vm_readv, "process_vm_readv"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_setuid, "setuid"),
    (libc::SYS_setgid, "setgid"),
    (libc::SYS_setreuid, "setreuid"),
    (libc::SYS_setregid, "setregid"),
    (libc::SYS_setresuid, "setresuid"),
    (libc::SYS_setresgid, "setresgid"),
    (libc::SYS_setgroups, "setgroups"),
    (libc::SYS_capset, "capset"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_iopl, "iopl"),
    (libc::SYS_ioperm, "ioperm"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_personality, "personality"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_request_key, "request_key"),
];

/// The calls every confined tool makes after set-up: memory, futexes,
/// time, reading and writing its descriptors, signals to itself, exit.
const BASE: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_futex,
    libc::SYS_brk,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_sched_yield,
    libc::SYS_getrandom,
];

/// Why a filter cannot be built or installed.
#[derive(Debug)]
pub enum SeccompError {
    /// A list names a call of [`NEVER`].
    Forbidden(&'static str, &'static str),
    /// `seccompiler` refused the list.
    Compile(String),
    /// The kernel refused the filter (no seccomp, or a thread that could
    /// not be synchronised).
    Install(String),
}

impl fmt::Display for SeccompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompError::Forbidden(list, call) => {
                write!(
                    f,
                    "seccomp allow-list '{list}' names {call}, which no list may allow"
                )
            }
            SeccompError::Compile(why) => write!(f, "seccomp filter: {why}"),
            SeccompError::Install(why) => write!(f, "installing the seccomp filter: {why}"),
        }
    }
}

impl std::error::Error for SeccompError {}

/// One condition on an argument (`arg` 0–5, compared on its low 32 bits,
/// which is how the kernel reads the `int` and `unsigned int` arguments
/// these lists look at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// The argument equals the value.
    Eq(u8, u64),
    /// The argument's bits under the mask equal the value.
    Masked(u8, u64, u64),
}

impl Cond {
    fn compile(self) -> Result<SeccompCondition, seccompiler::BackendError> {
        let (arg, op, value) = match self {
            Cond::Eq(arg, v) => (arg, SeccompCmpOp::Eq, v),
            Cond::Masked(arg, mask, v) => (arg, SeccompCmpOp::MaskedEq(mask), v),
        };
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
    }

    /// Whether the argument values `args` satisfy this condition.
    fn holds(self, args: &[u64; 6]) -> bool {
        let get = |arg: u8| args.get(usize::from(arg)).map_or(0, |v| v & 0xffff_ffff);
        match self {
            Cond::Eq(arg, v) => get(arg) == v & 0xffff_ffff,
            Cond::Masked(arg, mask, v) => get(arg) & mask == v & 0xffff_ffff,
        }
    }
}

/// What a list says about one call: allowed whatever its arguments, or
/// when one of the alternatives (each a conjunction of conditions) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Always,
    When(Vec<Vec<Cond>>),
}

/// A tool's allow-list: [`BASE`] plus what the tool adds.
#[derive(Debug, Clone)]
pub struct AllowList {
    name: &'static str,
    entries: BTreeMap<i64, Entry>,
    refused: BTreeSet<i64>,
    exec_mappings: bool,
}

const PROT_EXEC: u64 = libc::PROT_EXEC as u64;

impl AllowList {
    /// The base list of tool `name` (used in messages).
    pub fn new(name: &'static str) -> AllowList {
        let mut list = AllowList {
            name,
            entries: BTreeMap::new(),
            refused: BTreeSet::new(),
            exec_mappings: false,
        };
        list = list.allow(BASE);
        // Signals to itself only: abort() and re-raising a signal after
        // cleanup use tgkill(getpid(), ...).
        let pid = u64::from(std::process::id());
        list.allow_when(libc::SYS_tgkill, &[&[Cond::Eq(0, pid)]])
            // std's debug builds check a descriptor is open before closing
            // it.
            .allow_when(libc::SYS_fcntl, &[&[Cond::Eq(1, libc::F_GETFD as u64)]])
    }

    /// Allows `calls` whatever their arguments.
    pub fn allow(mut self, calls: &[i64]) -> AllowList {
        for &call in calls {
            self.entries.insert(call, Entry::Always);
        }
        self
    }

    /// Allows `call` when one of `alternatives` holds (each a list of
    /// conditions that must all hold). A call already allowed whatever its
    /// arguments stays so.
    pub fn allow_when(mut self, call: i64, alternatives: &[&[Cond]]) -> AllowList {
        let new = alternatives.iter().map(|a| a.to_vec());
        match self.entries.get_mut(&call) {
            Some(Entry::Always) => {}
            Some(Entry::When(list)) => list.extend(new),
            None => {
                self.entries.insert(call, Entry::When(new.collect()));
            }
        }
        self
    }

    /// Allows `call` when argument `arg` is one of `values`.
    pub fn allow_arg(self, call: i64, arg: u8, values: &[u64]) -> AllowList {
        let alts: Vec<[Cond; 1]> = values.iter().map(|&v| [Cond::Eq(arg, v)]).collect();
        let refs: Vec<&[Cond]> = alts.iter().map(|a| &a[..]).collect();
        self.allow_when(call, &refs)
    }

    /// Makes `calls` fail with `EPERM` instead of killing the process.
    pub fn refuse(mut self, calls: &[i64]) -> AllowList {
        self.refused.extend(calls);
        self
    }

    /// Lets `mmap` and `mprotect` make memory executable (loading shared
    /// objects after set-up).
    pub fn allow_exec_mappings(mut self) -> AllowList {
        self.exec_mappings = true;
        self
    }

    /// The list's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Every call the list allows in some form (refused ones excluded).
    pub fn calls(&self) -> Vec<i64> {
        let mut calls: Vec<i64> = self.entries.keys().copied().collect();
        calls.extend([libc::SYS_mmap, libc::SYS_mprotect]);
        calls.sort_unstable();
        calls.dedup();
        calls
    }

    /// Whether the filter lets `call` with arguments `args` through: the
    /// rules as the compiled filter applies them, for the tests.
    pub fn permits(&self, call: i64, args: &[u64; 6]) -> bool {
        if self.refused.contains(&call) {
            return false;
        }
        match self.entry(call) {
            None => false,
            Some(Entry::Always) => true,
            Some(Entry::When(alts)) => alts.iter().any(|a| a.iter().all(|c| c.holds(args))),
        }
    }

    /// The entry of `call`, with the memory rules filled in.
    fn entry(&self, call: i64) -> Option<Entry> {
        if call == libc::SYS_mmap || call == libc::SYS_mprotect {
            // The third argument is `prot` for both.
            return Some(if self.exec_mappings {
                Entry::Always
            } else {
                Entry::When(vec![vec![Cond::Masked(2, PROT_EXEC, 0)]])
            });
        }
        self.entries.get(&call).cloned()
    }

    /// Compiles the list into the filters to install: the allow-list
    /// (anything else kills the process) and, if the list refuses calls,
    /// a second filter returning `EPERM` for them (the kernel applies the
    /// stricter verdict of the two).
    pub fn compile(&self) -> Result<Vec<BpfProgram>, SeccompError> {
        let compile_err = |e: seccompiler::BackendError| SeccompError::Compile(e.to_string());
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for call in self.calls().into_iter().chain(self.refused.iter().copied()) {
            if let Some(&(_, name)) = NEVER.iter().find(|(n, _)| *n == call) {
                return Err(SeccompError::Forbidden(self.name, name));
            }
            let chain = match self.entry(call) {
                Some(Entry::When(alts)) if !self.refused.contains(&call) => alts
                    .into_iter()
                    .map(|conds| {
                        let conds = conds
                            .into_iter()
                            .map(Cond::compile)
                            .collect::<Result<Vec<_>, _>>()?;
                        SeccompRule::new(conds)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(compile_err)?,
                _ => Vec::new(),
            };
            rules.insert(call, chain);
        }
        let allow = SeccompFilter::new(
            rules,
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            ARCH,
        )
        .map_err(compile_err)?;
        let mut programs = vec![BpfProgram::try_from(allow).map_err(compile_err)?];
        if !self.refused.is_empty() {
            let refused = SeccompFilter::new(
                self.refused.iter().map(|&c| (c, Vec::new())).collect(),
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u32),
                ARCH,
            )
            .map_err(compile_err)?;
            programs.push(BpfProgram::try_from(refused).map_err(compile_err)?);
        }
        Ok(programs)
    }

    /// Compiles the list and installs it on every thread of the process.
    /// From here on the process cannot leave it.
    pub fn install(&self) -> Result<(), SeccompError> {
        let programs = self.compile()?;
        // The allow-list last: installing a filter takes prctl and
        // seccomp, which it does not allow.
        for program in programs.iter().rev() {
            seccompiler::apply_filter_all_threads(program)
                .map_err(|e| SeccompError::Install(e.to_string()))?;
        }
        Ok(())
    }
}

/// Whether the debugging escape hatch [`ENV_DISABLE`]`=1` is set. Tools
/// whose environment is not their user's (`uml_net`) never ask.
pub fn disabled_by_environment() -> bool {
    std::env::var_os(ENV_DISABLE).is_some_and(|v| v == "1")
}

/// Whether the self-test [`ENV_SELF_TEST`]`=exec` is asked for.
pub fn self_test_requested() -> bool {
    std::env::var_os(ENV_SELF_TEST).is_some_and(|v| v == "exec")
}

/// The `Seccomp:` field of a `/proc/PID/status` text: 0 none, 1 strict,
/// 2 filter.
pub fn status_mode(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .and_then(|v| v.trim().parse().ok())
}

/// This process's seccomp mode, from `/proc/self/status`.
pub fn current_mode() -> io::Result<Option<u32>> {
    Ok(status_mode(&std::fs::read_to_string("/proc/self/status")?))
}

/// What a tool does once set up: install `list` — unless `honour_disable`
/// and [`ENV_DISABLE`]`=1` — and, if `self_test` (the caller read
/// [`self_test_requested`] while its environment was still there), run the
/// self-test. `Ok(Some(status))`: the self-test came back (the process must
/// exit with that status); `Ok(None)`: go on, confined.
pub fn confine(
    list: &AllowList,
    self_test: bool,
    honour_disable: bool,
) -> Result<Option<i32>, SeccompError> {
    // Opened while files may still be opened: the confined process reads it.
    let probe = if self_test {
        Some(SelfTest::prepare().map_err(|e| SeccompError::Install(e.to_string()))?)
    } else {
        None
    };
    if !(honour_disable && disabled_by_environment()) {
        list.install()?;
    }
    Ok(probe.map(|p| p.run(list.name())))
}

/// The self-test of a confined tool.
#[derive(Debug)]
pub struct SelfTest {
    status: std::fs::File,
}

impl SelfTest {
    /// Opens `/proc/self/status` before the filter is installed (a
    /// confined tool may not open files).
    pub fn prepare() -> io::Result<SelfTest> {
        Ok(SelfTest {
            status: std::fs::File::open("/proc/self/status")?,
        })
    }

    /// Prints `"{tool}: seccomp self-test: Seccomp: N"` on stderr (N read
    /// now), then attempts `execve("")`. Confined, the process dies here
    /// (`SIGSYS`); if the call comes back, says so and returns
    /// [`SELF_TEST_FAILED`]. `execve("")` fails with `ENOENT` in every
    /// unconfined process, so this never runs a program.
    pub fn run(mut self, tool: &str) -> i32 {
        use std::io::Read;
        let mut text = Vec::new();
        let mut buf = [0u8; 1024];
        // Plain reads: no fstat or lseek, which a list need not allow.
        while let Ok(n @ 1..) = self.status.read(&mut buf) {
            text.extend_from_slice(&buf[..n]);
        }
        let mode = status_mode(&String::from_utf8_lossy(&text))
            .map_or_else(|| "?".to_string(), |m| m.to_string());
        let _ = writeln!(io::stderr(), "{tool}: seccomp self-test: Seccomp: {mode}");
        let e = exec_nothing();
        let _ = writeln!(
            io::stderr(),
            "{tool}: seccomp self-test FAILED: execve was not stopped ({e})"
        );
        SELF_TEST_FAILED
    }
}

/// `execve("", {NULL}, {NULL})`: returns the error.
fn exec_nothing() -> io::Error {
    const EMPTY: &CStr = c"";
    let argv: [*const libc::c_char; 1] = [std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the path is a valid NUL-terminated string and argv and envp
    // are NULL-terminated arrays that live across the call; an empty path
    // never names a file, so the call fails (or the filter stops it)
    // without replacing the process image.
    unsafe { libc::execve(EMPTY.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_list_compiles_for_x86_64_and_has_no_never_call() {
        let list = AllowList::new("test");
        let programs = list.compile().unwrap();
        assert_eq!(programs.len(), 1);
        assert!(!programs[0].is_empty());
        for (call, name) in NEVER {
            assert!(!list.calls().contains(call), "{name}");
            assert!(!list.permits(*call, &[0; 6]), "{name}");
        }
    }

    #[test]
    fn never_calls_are_refused_by_the_builder() {
        for &(call, name) in NEVER {
            let e = AllowList::new("t").allow(&[call]).compile().unwrap_err();
            assert!(
                matches!(e, SeccompError::Forbidden("t", n) if n == name),
                "{e}"
            );
            // Not even as a call to refuse with EPERM.
            assert!(AllowList::new("t").refuse(&[call]).compile().is_err());
        }
    }

    #[test]
    fn refusals_make_a_second_filter() {
        let list = AllowList::new("t").refuse(&[libc::SYS_sched_getaffinity]);
        assert_eq!(list.compile().unwrap().len(), 2);
        assert!(!list.permits(libc::SYS_sched_getaffinity, &[0; 6]));
    }

    #[test]
    fn conditions() {
        let list = AllowList::new("t")
            .allow_arg(libc::SYS_socket, 0, &[libc::AF_UNIX as u64])
            .allow_when(
                libc::SYS_ioctl,
                &[
                    &[Cond::Eq(1, libc::TIOCNOTTY)],
                    &[Cond::Eq(1, libc::FIONBIO)],
                ],
            );
        let unix = [libc::AF_UNIX as u64, 2, 0, 0, 0, 0];
        let inet = [libc::AF_INET as u64, 2, 0, 0, 0, 0];
        assert!(list.permits(libc::SYS_socket, &unix));
        assert!(!list.permits(libc::SYS_socket, &inet));
        assert!(list.permits(libc::SYS_ioctl, &[0, libc::FIONBIO, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_ioctl, &[0, libc::TIOCSTI, 0, 0, 0, 0]));
        // Executable memory only when asked for.
        let rx = [0, 4096, (libc::PROT_READ | libc::PROT_EXEC) as u64, 0, 0, 0];
        let rw = [
            0,
            4096,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            0,
            0,
            0,
        ];
        assert!(!list.permits(libc::SYS_mmap, &rx));
        assert!(list.permits(libc::SYS_mmap, &rw));
        assert!(!list.permits(libc::SYS_mprotect, &rx));
        let list = list.allow_exec_mappings();
        assert!(list.permits(libc::SYS_mmap, &rx));
        assert!(list.compile().is_ok());
        // Signals to this process only.
        let me = u64::from(std::process::id());
        assert!(list.permits(libc::SYS_tgkill, &[me, me, 6, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_tgkill, &[1, 1, 9, 0, 0, 0]));
        // An unconditional entry stays unconditional.
        let list =
            AllowList::new("t")
                .allow(&[libc::SYS_socket])
                .allow_arg(libc::SYS_socket, 0, &[1]);
        assert!(list.permits(libc::SYS_socket, &inet));
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc")]
    fn status_line() {
        let text = "Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        assert_eq!(status_mode(text), Some(2));
        assert_eq!(status_mode("Name:\tx\n"), None);
        assert_eq!(status_mode("Seccomp:\tx\n"), None);
        assert!(matches!(current_mode(), Ok(Some(0..=2))));
    }

    /// Installs a list in a child process (the test harness must stay
    /// unconfined) and checks the child's fate.
    #[test]
    #[cfg_attr(miri, ignore = "runs a child process with a real filter")]
    fn installed_filter_kills_on_exec_and_refuses_with_eperm() {
        use std::os::unix::process::ExitStatusExt;
        let exe = std::env::current_exe().unwrap();
        for (case, want_signal, want_code) in [
            ("exec", Some(libc::SIGSYS), None),
            ("eperm", None, Some(0)),
            ("mode", None, Some(0)),
        ] {
            let status = std::process::Command::new(&exe)
                .args(["--exact", "sys::seccomp::tests::child", "--nocapture"])
                .env("UML_SECCOMP_TEST_CHILD", case)
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&status.stdout);
            assert!(out.contains("confined"), "{case}: {out}");
            assert_eq!(
                (status.status.signal(), status.status.code()),
                (want_signal, want_code),
                "{case}: {}{}",
                String::from_utf8_lossy(&status.stdout),
                String::from_utf8_lossy(&status.stderr)
            );
        }
    }

    /// No core file for the child killed on purpose.
    fn no_core_dump() {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads one live `struct rlimit`.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
        assert_eq!(rc, 0);
    }

    /// The child half of the test above; does nothing in a normal run.
    #[test]
    fn child() {
        let Ok(case) = std::env::var("UML_SECCOMP_TEST_CHILD") else {
            return;
        };
        // The test harness's threads are alive: TSYNC covers them. The
        // harness still needs to write its result and exit.
        let list = AllowList::new("child")
            .allow(&[libc::SYS_poll, libc::SYS_openat, libc::SYS_fstat])
            .allow(&[libc::SYS_statx, libc::SYS_lseek])
            .refuse(&[libc::SYS_getcwd]);
        no_core_dump();
        list.install().unwrap();
        let _ = writeln!(io::stdout(), "confined");
        match case.as_str() {
            "exec" => {
                let _ = exec_nothing();
                // Not reached when the filter works.
                std::process::exit(SELF_TEST_FAILED);
            }
            "eperm" => {
                let e = std::env::current_dir().unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EPERM));
                std::process::exit(0);
            }
            _ => {
                assert_eq!(current_mode().unwrap(), Some(2));
                std::process::exit(0);
            }
        }
    }
}
