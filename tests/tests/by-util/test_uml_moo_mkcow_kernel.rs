//! COW files made and used by the real kernel (`docs/cow.md` §3–§5,
//! `docs/testing.md` §9): a UML creates the COW files of a raw and an ext2
//! backing file, the guest writes to them, and our `uml_moo` merges them
//! (new image, `-d` on a copy, `-b`, `-d` on the header's backing file);
//! every result is compared with the same writes applied directly to
//! copies of the backing file and with Debian's `uml_moo`, byte for byte.
//! A UML also boots on a COW file made by our `uml_mkcow`. And both tools
//! refuse the files a running 7.2 (or, with the device open, 6.1) guest
//! holds, change nothing, and proceed with `--ignore-locks` or once the
//! files are free.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::sparse::assert_never_less_sparse;
use uml_integration_tests::uml_common::cow::{parse_header, test_bit, Header, Version};
use uml_integration_tests::{
    require, run_with_timeout, workspace_bin, Kernel, Requirement, RunOutput, Uml, UmlConfig,
};

/// The fixed backing-file mtime of `docs/testing.md` §9.
const STAMP: &str = "2020-01-02 03:04:05 UTC";
const STAMP_SECS: u32 = 1_577_934_245;
const RAW_SIZE: u64 = 8 << 20;
const LIMIT: Duration = Duration::from_secs(60);

/// Guest writes to the raw device: (offset, length, fill byte). Offsets
/// from the observation C6 of `docs/cow.md` §8, unaligned.
const RAW_WRITES: [(u64, u64, u8); 4] = [
    (0, 100, b'A'),
    (1_000_000, 700, b'B'),
    (1_001_000, 300, b'C'),
    (RAW_SIZE - 3037, 3037, b'D'),
];

fn sh(cmd: &mut Command) {
    let out = run_with_timeout(cmd, LIMIT);
    assert!(out.success(), "{cmd:?} failed: {out}");
}

fn touch_stamp(p: &Path) {
    sh(Command::new("touch").arg("-d").arg(STAMP).arg(p));
}

fn cp_p(from: &Path, to: &Path) {
    sh(Command::new("cp").arg("-p").arg(from).arg(to));
}

fn moo(c: bool, args: &[&Path]) -> RunOutput {
    let bin = if c {
        PathBuf::from("/usr/bin/uml_moo")
    } else {
        workspace_bin("uml_moo")
    };
    let out = run_with_timeout(Command::new(bin).args(args), LIMIT);
    assert!(!out.timed_out);
    out
}

fn moo_ok(c: bool, args: &[&Path]) {
    let out = moo(c, args);
    assert!(out.success(), "uml_moo (C: {c}) {args:?}: {out}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out}");
}

fn same_bytes(a: &Path, b: &Path) {
    let out = run_with_timeout(Command::new("cmp").arg(a).arg(b), LIMIT);
    assert!(
        out.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        out.stdout_str()
    );
}

/// The raw backing file's content: a recognisable, position-dependent
/// pattern (no zero bytes except in one hole region).
fn raw_content() -> Vec<u8> {
    let mut v = vec![0u8; RAW_SIZE as usize];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (((i / 512) * 7 + i * 13) % 251 + 1) as u8;
    }
    // A zero region (kept as a hole) in the middle.
    v[(4 << 20)..(5 << 20)].fill(0);
    v
}

fn write_raw(path: &Path, content: &[u8]) {
    let f = File::create(path).unwrap();
    for (i, chunk) in content.chunks(1 << 16).enumerate() {
        if chunk.iter().any(|&b| b != 0) {
            f.write_all_at(chunk, (i as u64) << 16).unwrap();
        }
    }
    f.set_len(content.len() as u64).unwrap();
}

/// The guest script's part for the raw device.
fn raw_script(dev: &str) -> String {
    let mut s = String::new();
    for (off, len, fill) in RAW_WRITES {
        s.push_str(&format!(
            "head -c {len} /dev/zero | tr '\\000' '{}' | dd of={dev} bs=1 seek={off} conv=notrunc status=none || exit 1\n",
            fill as char
        ));
    }
    s.push_str("sync\n");
    s
}

/// `content` with the guest's raw writes applied.
fn expected_raw(mut content: Vec<u8>) -> Vec<u8> {
    for (off, len, fill) in RAW_WRITES {
        content[off as usize..(off + len) as usize].fill(fill);
    }
    content
}

fn boot_and_run(umid: &str, extra_args: Vec<String>, body: String) -> String {
    let mut uml = Uml::boot(UmlConfig {
        extra_args,
        init_script: body,
        ..UmlConfig::new(umid)
    })
    .expect("boot");
    assert!(
        uml.wait_exit(Duration::from_secs(120)),
        "guest did not power off:\n{}",
        uml.console()
    );
    let console = uml.console();
    assert!(console.contains("UMLTEST-DONE rc=0"), "{console}");
    console
}

fn header_of(cow: &Path) -> Header {
    let bytes = fs::read(cow).unwrap();
    parse_header(&bytes).unwrap().expect("a COW header")
}

/// Checks a kernel-written header against its backing file (names up to
/// the NUL: the kernel leaves garbage after it).
fn check_kernel_header(cow: &Path, backing: &Path) -> Header {
    let h = header_of(cow);
    assert_eq!(h.version, Version::V3);
    assert_eq!(h.backing_file, backing.as_os_str().as_bytes());
    assert_eq!(h.mtime, STAMP_SECS);
    assert_eq!(h.size, fs::metadata(backing).unwrap().len());
    assert_eq!((h.sectorsize, h.alignment, h.cow_format), (512, 4096, 0));
    let g = h.geometry().unwrap();
    assert_eq!(fs::metadata(cow).unwrap().len(), g.cow_file_len());
    h
}

fn dirty_bitmap_bytes(cow: &Path, h: &Header) -> Vec<(u64, u8)> {
    let g = h.geometry().unwrap();
    let f = File::open(cow).unwrap();
    let mut bm = vec![0u8; g.bitmap_len as usize];
    f.read_exact_at(&mut bm, g.bitmap_offset).unwrap();
    // Page granularity: every dirty sector's whole 4 KiB page is dirty.
    for s in 0..g.sectors {
        if test_bit(&bm, s) {
            assert!(test_bit(&bm, s & !7) && test_bit(&bm, s | 7), "sector {s}");
        }
    }
    bm.iter()
        .enumerate()
        .filter(|(_, &b)| b != 0)
        .map(|(i, &b)| (i as u64, b))
        .collect()
}

fn e2fsck_clean(img: &Path) {
    let out = run_with_timeout(Command::new("e2fsck").arg("-fn").arg(img), LIMIT);
    assert_eq!(out.code, Some(0), "e2fsck -fn {}: {out}", img.display());
}

fn debugfs_cat(img: &Path, file: &str) -> Vec<u8> {
    let out = run_with_timeout(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat {file}"))
            .arg(img),
        LIMIT,
    );
    assert!(out.success(), "debugfs cat {file}: {out}");
    out.stdout
}

#[test]
fn kernel_cow_files_merge_like_direct_writes() {
    require!(Requirement::LinuxUml, Requirement::CBinary("uml_moo"));
    let tmp = tempfile::Builder::new().prefix("cowk-").tempdir().unwrap();
    let d = fs::canonicalize(tmp.path()).unwrap();
    let p = |n: &str| d.join(n);

    // Raw backing file with known content, and the expected image.
    let raw = p("raw.img");
    write_raw(&raw, &raw_content());
    touch_stamp(&raw);
    let expected = p("raw-expected.img");
    cp_p(&raw, &expected);
    let f = File::options().write(true).open(&expected).unwrap();
    for (off, len, fill) in RAW_WRITES {
        f.write_all_at(&vec![fill; len as usize], off).unwrap();
    }
    drop(f);
    assert!(fs::read(&expected).unwrap() == expected_raw(raw_content()));

    // ext2 image from a tree.
    let tree = p("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("hello.txt"), b"hello from the host\n").unwrap();
    fs::write(tree.join("sub/old.txt"), b"to be removed\n").unwrap();
    fs::write(tree.join("big.bin"), vec![0x5a; 100 << 10]).unwrap();
    let ext2 = p("ext2.img");
    sh(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&tree)
        .arg(&ext2)
        .arg("16M"));
    touch_stamp(&ext2);
    let (raw_cow, ext2_cow) = (p("raw.cow"), p("ext2.cow"));

    let mut body = raw_script("/dev/ubdb");
    body.push_str(
        "mkdir -p /tmp/m && mount -t ext2 /dev/ubdc /tmp/m || exit 1\n\
         echo 'appended in the guest' >> /tmp/m/hello.txt\n\
         printf 'new file written by the guest\\n' > /tmp/m/new.txt\n\
         head -c 200000 /dev/zero | tr '\\000' 'G' > /tmp/m/sub/guest.bin\n\
         rm /tmp/m/sub/old.txt\n\
         umount /tmp/m || exit 1\n\
         sync\n",
    );
    let console = boot_and_run(
        "cowk",
        vec![
            format!("ubd1={},{}", raw_cow.display(), raw.display()),
            format!("ubd2={},{}", ext2_cow.display(), ext2.display()),
        ],
        body,
    );
    assert!(
        console.contains(&format!(
            "Creating \"{}\" as COW file for \"{}\"",
            raw_cow.display(),
            raw.display()
        )),
        "{console}"
    );

    // Headers as the kernel writes them; the dirty pages of C6 (`docs/cow.md`
    // §8).
    let h = check_kernel_header(&raw_cow, &raw);
    assert_eq!(
        dirty_bitmap_bytes(&raw_cow, &h),
        vec![(0, 0xff), (244, 0xff), (2047, 0xff)]
    );
    check_kernel_header(&ext2_cow, &ext2);
    // The backing files are untouched.
    assert!(fs::read(&raw).unwrap() == raw_content());
    assert_eq!(fs::metadata(&raw).unwrap().mtime(), i64::from(STAMP_SECS));

    // New images: ours = expected = C's.
    let (ours, theirs) = (p("merged-ours.img"), p("merged-c.img"));
    moo_ok(false, &[&raw_cow, &ours]);
    moo_ok(true, &[&raw_cow, &theirs]);
    same_bytes(&ours, &expected);
    same_bytes(&ours, &theirs);
    assert_never_less_sparse(&ours, &theirs, "merged image");

    // -b with a cp -p copy, into a new image.
    let copy = p("raw-copy.img");
    cp_p(&raw, &copy);
    let ours_b = p("merged-b.img");
    moo_ok(false, &[Path::new("-b"), &copy, &raw_cow, &ours_b]);
    same_bytes(&ours_b, &expected);

    // -b with a copy whose mtime differs: refused as C does.
    let touched = p("raw-touched.img");
    fs::copy(&raw, &touched).unwrap();
    let (a, b) = (
        moo(false, &[Path::new("-b"), &touched, &raw_cow, &p("x.img")]),
        moo(true, &[Path::new("-b"), &touched, &raw_cow, &p("y.img")]),
    );
    assert_eq!(a.code, Some(1));
    assert_eq!((a.stderr_str(), a.code), (b.stderr_str(), b.code));
    assert!(a.stderr_str().starts_with("mtime mismatch (1577934245 vs "));
    assert!(!p("x.img").exists());

    // -d on copies (ours and C's).
    let (dc_ours, dc_c) = (p("d-ours.img"), p("d-c.img"));
    cp_p(&raw, &dc_ours);
    cp_p(&raw, &dc_c);
    moo_ok(
        false,
        &[Path::new("-d"), Path::new("-b"), &dc_ours, &raw_cow],
    );
    moo_ok(true, &[Path::new("-d"), Path::new("-b"), &dc_c, &raw_cow]);
    same_bytes(&dc_ours, &expected);
    same_bytes(&dc_ours, &dc_c);

    // ext2: ours = C's, consistent, with the guest's changes.
    let (e_ours, e_c) = (p("ext2-ours.img"), p("ext2-c.img"));
    moo_ok(false, &[&ext2_cow, &e_ours]);
    moo_ok(true, &[&ext2_cow, &e_c]);
    same_bytes(&e_ours, &e_c);
    e2fsck_clean(&e_ours);
    assert_eq!(
        debugfs_cat(&e_ours, "/hello.txt"),
        b"hello from the host\nappended in the guest\n"
    );
    assert_eq!(
        debugfs_cat(&e_ours, "/new.txt"),
        b"new file written by the guest\n"
    );
    assert_eq!(debugfs_cat(&e_ours, "/sub/guest.bin"), vec![b'G'; 200_000]);
    assert_eq!(debugfs_cat(&e_ours, "/big.bin"), vec![0x5a; 100 << 10]);
    let ls = run_with_timeout(
        Command::new("debugfs").args(["-R", "ls /sub"]).arg(&e_ours),
        LIMIT,
    );
    assert!(!ls.stdout_str().contains("old.txt"), "{ls}");
    // The unmerged backing image still has the old state.
    assert_eq!(debugfs_cat(&ext2, "/sub/old.txt"), b"to be removed\n");
    let e_copy = p("ext2-copy.img");
    cp_p(&ext2, &e_copy);
    moo_ok(
        false,
        &[Path::new("-d"), Path::new("-b"), &e_copy, &ext2_cow],
    );
    same_bytes(&e_copy, &e_ours);

    // Finally -d into the header's own backing file.
    moo_ok(false, &[Path::new("-d"), &raw_cow]);
    same_bytes(&raw, &expected);
    // Which invalidates the COW file (its mtime changed), as with C.
    let again = moo(false, &[&raw_cow, &p("z.img")]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr_str().starts_with("mtime mismatch"), "{again}");
}

#[test]
fn kernel_uses_a_cow_file_made_by_uml_mkcow() {
    require!(Requirement::LinuxUml, Requirement::CBinary("uml_moo"));
    let tmp = tempfile::Builder::new().prefix("cowm-").tempdir().unwrap();
    let d = fs::canonicalize(tmp.path()).unwrap();
    let raw = d.join("raw.img");
    write_raw(&raw, &raw_content());
    touch_stamp(&raw);
    let expected = d.join("expected.img");
    fs::write(&expected, expected_raw(raw_content())).unwrap();

    let mk = d.join("mk.cow");
    let out = run_with_timeout(
        Command::new(workspace_bin("uml_mkcow"))
            .current_dir(&d)
            .args(["mk.cow", "raw.img"]),
        LIMIT,
    );
    assert!(out.success(), "{out}");
    let before = check_kernel_header(&mk, &raw);
    assert!(dirty_bitmap_bytes(&mk, &before).is_empty());

    // Only the COW file on the command line: the kernel takes the backing
    // file from the header.
    boot_and_run(
        "cowmk",
        vec![format!("ubd1={}", mk.display())],
        raw_script("/dev/ubdb"),
    );
    let h = check_kernel_header(&mk, &raw);
    assert_eq!(
        dirty_bitmap_bytes(&mk, &h),
        vec![(0, 0xff), (244, 0xff), (2047, 0xff)]
    );
    let (ours, theirs) = (d.join("ours.img"), d.join("c.img"));
    moo_ok(false, &[&mk, &ours]);
    moo_ok(true, &[&mk, &theirs]);
    same_bytes(&ours, &expected);
    same_bytes(&ours, &theirs);
    let copy = d.join("copy.img");
    cp_p(&raw, &copy);
    moo_ok(false, &[Path::new("-d"), Path::new("-b"), &copy, &mk]);
    same_bytes(&copy, &expected);
}

// ---------------------------------------------------------------------
// Files a running guest holds (issue 12). The block driver locks a ubd
// device's files with fcntl: a write lock on the COW file, a read lock on
// the backing file; 7.x from the device's creation until `remove`, 6.1
// while the guest has the device open (`docs/kernel7.md` §2.2).

fn tool(name: &str, cwd: &Path, args: &[&str]) -> RunOutput {
    let out = run_with_timeout(
        Command::new(workspace_bin(name))
            .current_dir(cwd)
            .args(args),
        LIMIT,
    );
    assert!(!out.timed_out, "{name} {args:?} timed out");
    out
}

/// Asserts that `out` is the refusal for `role` `name` locked (`kind`) by
/// process `pid`.
fn assert_in_use(out: &RunOutput, role: &str, name: &str, pid: u32, kind: &str) {
    let err = out.stderr_str();
    let first = format!(
        "{role} \"{name}\" is in use by a UML guest (process {pid} holds a {kind} lock on it)"
    );
    assert_eq!(
        (out.code, out.stdout_str().as_str(), err.lines().next()),
        (Some(1), "", Some(first.as_str())),
        "{out}"
    );
    assert!(
        err.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("Nothing was changed.")),
        "{out}"
    );
}

/// The lock lines of `/proc/locks` for `path` (its `MAJOR:MINOR:INODE`,
/// as the kernel prints it: `%02x:%02x:%lu`).
fn proc_locks_of(path: &Path) -> Vec<String> {
    use nix::sys::stat::{major, minor};
    let m = fs::metadata(path).unwrap();
    let id = format!("{:02x}:{:02x}:{}", major(m.dev()), minor(m.dev()), m.ino());
    fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().any(|f| f == id))
        .map(str::to_string)
        .collect()
}

/// A guest has written to `ubd1` (a COW file the kernel made) and keeps the
/// device open; `ubd2` (a COW file from `uml_mkcow`) it never opens.
/// `uml_moo` and `uml_mkcow` refuse what the guest holds, change nothing,
/// and proceed with `--ignore-locks` while the guest is stopped, or once
/// the files are free.
fn tools_refuse_files_a_guest_holds(kernel: Kernel, umid: &str) {
    require!(Requirement::Root, kernel.requirement());
    let tmp = tempfile::Builder::new().prefix("cowl-").tempdir().unwrap();
    let d = fs::canonicalize(tmp.path()).unwrap();
    let p = |n: &str| d.join(n);
    let s = |n: &str| d.join(n).to_string_lossy().into_owned();
    write_raw(&p("raw.img"), &raw_content());
    touch_stamp(&p("raw.img"));
    fs::write(p("expected.img"), expected_raw(raw_content())).unwrap();
    fs::write(p("idle.img"), vec![0x5a; 1 << 20]).unwrap();
    touch_stamp(&p("idle.img"));
    let out = tool("uml_mkcow", &d, &["idle.cow", "idle.img"]);
    assert!(out.success(), "{out}");

    let mut uml = Uml::boot(UmlConfig {
        extra_args: vec![
            format!("ubd1={},{}", s("raw.cow"), s("raw.img")),
            format!("ubd2={},{}", s("idle.cow"), s("idle.img")),
        ],
        init_script: format!(
            "{}exec 3<>/dev/ubdb || exit 1\necho COWLOCK-HELD\nwhile :; do sleep 3600; done\n",
            raw_script("/dev/ubdb")
        ),
        ..UmlConfig::with_kernel(umid, kernel)
    })
    .expect("boot");
    assert!(
        uml.wait_console("COWLOCK-HELD", Duration::from_secs(60)),
        "{}",
        uml.console()
    );
    let pid = uml.pid();
    let raw_cow = s("raw.cow");
    let raw_img = s("raw.img");
    let locks = proc_locks_of(&p("raw.cow"));
    assert!(
        locks.len() == 1 && locks[0].contains(&format!("POSIX  ADVISORY  WRITE {pid} ")),
        "{locks:?}"
    );
    let snapshot = |n: &str| fs::read(p(n)).unwrap();
    let (cow_before, raw_before) = (snapshot("raw.cow"), snapshot("raw.img"));

    // The device in use: refused, named as given, the kernel's pid.
    let out = tool("uml_moo", &d, &[&raw_cow, "out.img"]);
    assert_in_use(&out, "COW file", &raw_cow, pid, "write");
    let out = tool("uml_moo", &d, &["-d", &raw_cow]);
    assert_in_use(&out, "COW file", &raw_cow, pid, "write");
    let out = tool("uml_mkcow", &d, &["-f", "raw.cow", "raw.img"]);
    assert_in_use(&out, "COW file", "raw.cow", pid, "write");
    assert!(!p("out.img").exists());
    assert_eq!(snapshot("raw.cow"), cow_before, "COW file changed");
    assert_eq!(snapshot("raw.img"), raw_before, "backing file changed");
    // The backing file is only read by the guest: another COW file on it
    // is fine; an in-place merge into it through another COW is not.
    let out = tool("uml_mkcow", &d, &["other.cow", &raw_img]);
    assert!(out.success(), "{out}");
    let out = tool("uml_moo", &d, &["-d", "other.cow"]);
    assert_in_use(&out, "backing file", &raw_img, pid, "read");
    assert_eq!(snapshot("raw.img"), raw_before, "backing file changed");

    // The device the guest never opened: 7.x holds it all the same, 6.1
    // does not.
    let idle = tool("uml_moo", &d, &["idle.cow", "idle-out.img"]);
    match kernel {
        Kernel::Linux7 => assert_in_use(&idle, "COW file", "idle.cow", pid, "write"),
        Kernel::Linux61 => {
            assert!(idle.success(), "{idle}");
            assert_eq!(fs::read(p("idle-out.img")).unwrap(), vec![0x5a; 1 << 20]);
        }
    }

    // A stopped guest: --ignore-locks merges (the guest synced).
    let r = uml.mconsole("stop").unwrap();
    assert!(!r.is_error(), "{r:?}");
    let out = tool("uml_moo", &d, &["--ignore-locks", &raw_cow, "stopped.img"]);
    assert!(out.success() && out.stderr.is_empty(), "{out}");
    same_bytes(&p("stopped.img"), &p("expected.img"));
    let r = uml.mconsole("go").unwrap();
    assert!(!r.is_error(), "{r:?}");

    // 7.x: `remove` frees the idle device's files.
    if kernel == Kernel::Linux7 {
        let r = uml.mconsole("remove ubd2").unwrap();
        assert!(!r.is_error(), "{r:?}");
        assert_eq!(proc_locks_of(&p("idle.cow")), Vec::<String>::new());
        let out = tool("uml_moo", &d, &["idle.cow", "idle-out.img"]);
        assert!(out.success(), "{out}");
        assert_eq!(fs::read(p("idle-out.img")).unwrap(), vec![0x5a; 1 << 20]);
    }

    // Halted: everything is free again.
    uml.halt().unwrap();
    assert!(uml.wait_exit(Duration::from_secs(30)), "{}", uml.console());
    assert_eq!(proc_locks_of(&p("raw.cow")), Vec::<String>::new());
    let out = tool("uml_moo", &d, &[&raw_cow, "out.img"]);
    assert!(out.success(), "{out}");
    same_bytes(&p("out.img"), &p("expected.img"));
}

#[test]
fn cow_tools_refuse_files_a_7_guest_holds() {
    tools_refuse_files_a_guest_holds(Kernel::Linux7, "cowl7");
}

#[test]
fn cow_tools_refuse_files_a_6_1_guest_holds_open() {
    tools_refuse_files_a_guest_holds(Kernel::Linux61, "cowl61");
}
