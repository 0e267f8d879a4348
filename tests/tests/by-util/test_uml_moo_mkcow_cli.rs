//! Differential tests of `uml_mkcow` and `uml_moo` against Debian's C
//! binaries: the same command lines in the same directory state must give
//! the same stdout, stderr (both run as `argv[0]` = the tool's name), exit
//! status and bytes on disk (COW headers and file sizes, merged images),
//! except where this project deliberately differs (`docs/cow.md` §5–§6,
//! README): `uml_moo -d` alone, the errors of a missing backing file,
//! truncated COW files, sector size or alignment 0, `--help`, and files
//! that a UML guest holds (here a stand-in process holding the kernel's
//! locks), which ours refuse.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use uml_integration_tests::cowfile::make_cow;
use uml_integration_tests::diff::{self, Differential, Side, Side::Ours, Side::C};
use uml_integration_tests::sparse::{assert_never_less_sparse, assert_same_allocation};
use uml_integration_tests::uml_common::cow::Version;
use uml_integration_tests::uml_common::testrng::SplitMix64 as Rng;
use uml_integration_tests::{require, workspace_bin, Requirement, RunOutput};

const LIMIT: Duration = Duration::from_secs(60);
/// 2020-01-02 03:04:05 UTC, the backing-file mtime of `docs/testing.md` §9.
const MTIME: u64 = 1_577_934_245;

/// `tool`, Debian's (`/usr/bin/<tool>`) and ours, run in `cwd` with
/// argv[0] = the tool's name.
fn cow_tool(tool: &str, cwd: &Path) -> Differential<'static> {
    Differential::new(Path::new("/usr/bin").join(tool), tool)
        .arg0(tool)
        .current_dir(cwd)
        .limit(LIMIT)
}

/// Runs one side of [`cow_tool`].
fn run(side: Side, tool: &str, cwd: &Path, args: &[&str]) -> RunOutput {
    cow_tool(tool, cwd).run(side, args)
}

/// Runs both and asserts equal stdout, stderr and status; returns ours.
fn same(tool: &str, cwd: &Path, args: &[&str]) -> RunOutput {
    cow_tool(tool, cwd).same(args)
}

fn set_mtime(path: &Path, secs: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn requirements() -> bool {
    require(Requirement::CBinary("uml_moo")) && require(Requirement::CBinary("uml_mkcow"))
}

fn dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("cowcli-")
        .tempdir()
        .unwrap();
    // The physical path: both tools store it in headers.
    let p = fs::canonicalize(d.path()).unwrap();
    (d, p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn mkcow_usage_and_errors_match() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    for args in [&[][..], &["a"], &["-f"], &["-f", "a"]] {
        let out = same("uml_mkcow", &d, args);
        assert_eq!(out.code, Some(2));
    }
    fs::write(d.join("exists.cow"), b"x").unwrap();
    fs::write(d.join("back.img"), vec![1u8; 4096]).unwrap();
    let out = same("uml_mkcow", &d, &["exists.cow", "back.img"]);
    assert_eq!(out.stderr_str(), "open COW file: File exists\n");
    same("uml_mkcow", &d, &["nodir/x.cow", "back.img"]);
    // Names the header cannot hold: refused before anything is written,
    // the same texts (C leaves the empty COW file; we remove it).
    let long = "a".repeat(5000);
    for (cow, back) in [("long1.cow", long.as_str()), ("long2.cow", "nodir/x")] {
        let theirs = run(C, "uml_mkcow", &d, &[cow, back]);
        fs::remove_file(d.join(cow)).unwrap();
        let ours = run(Ours, "uml_mkcow", &d, &[cow, back]);
        diff::assert_same(&format!("uml_mkcow {cow} {back}"), &theirs, &ours);
        assert!(!d.join(cow).exists());
    }
}

#[test]
fn mkcow_missing_backing_is_reported_truthfully() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let theirs = run(C, "uml_mkcow", &d, &["c.cow", "missing.img"]);
    assert_eq!(theirs.code, Some(1));
    assert_eq!(
        theirs.stderr_str(),
        "write_cow_header: Operation not permitted\n"
    );
    assert_eq!(fs::metadata(d.join("c.cow")).unwrap().len(), 0);
    let ours = run(Ours, "uml_mkcow", &d, &["o.cow", "missing.img"]);
    assert_eq!(ours.code, Some(1));
    assert_eq!(
        ours.stdout_str(),
        format!(
            "write_cow_header - backing file '{}/missing.img' mtime request failed, err = 2\n",
            d.display()
        )
    );
    assert_eq!(
        ours.stderr_str(),
        "write_cow_header: No such file or directory\n"
    );
    assert!(
        !d.join("o.cow").exists(),
        "an empty COW file was left behind"
    );
}

#[test]
fn mkcow_writes_the_same_bytes() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(&d, d.join("sub/link")).unwrap();
    for (name, size) in [
        ("back.img", 1u64 << 20),
        ("odd.img", 10_000),
        ("empty.img", 0),
    ] {
        let mut rng = Rng::new(size);
        fs::write(d.join(name), rng.bytes(size as usize)).unwrap();
        set_mtime(&d.join(name), MTIME);
    }
    let mut n = 0;
    // Absolute, relative, through a symlinked directory, from a subdir.
    for (cwd, back) in [
        (d.clone(), format!("{}/back.img", d.display())),
        (d.clone(), "back.img".to_string()),
        (d.clone(), "sub/link/odd.img".to_string()),
        (d.join("sub"), "../empty.img".to_string()),
        (d.join("sub"), "link/back.img".to_string()),
    ] {
        n += 1;
        let (c, o) = (d.join(format!("c{n}.cow")), d.join(format!("o{n}.cow")));
        let theirs = run(C, "uml_mkcow", &cwd, &[s(&c), &back]);
        let ours = run(Ours, "uml_mkcow", &cwd, &[s(&o), &back]);
        assert_eq!(
            (theirs.code, ours.code),
            (Some(0), Some(0)),
            "{back}: {ours}"
        );
        assert!(ours.stdout.is_empty() && ours.stderr.is_empty());
        let (cb, ob) = (fs::read(&c).unwrap(), fs::read(&o).unwrap());
        assert!(cb == ob, "{back}: headers or sizes differ");
        assert_same_allocation(&o, &c, &format!("{back}: allocation"));
        let h = uml_integration_tests::uml_common::cow::parse_header(&ob)
            .unwrap()
            .unwrap();
        assert!(h.backing_file.starts_with(b"/"));
        assert_eq!(h.mtime as u64, MTIME);
        assert_eq!(ob.len() as u64, h.geometry().unwrap().cow_file_len());
    }
    // Vector C1 of `docs/cow.md` §8: 1 MiB backing file.
    let ob = fs::read(d.join("o1.cow")).unwrap();
    assert_eq!(ob.len(), 1_060_864);
    // -f over an existing file: same header, same size.
    assert_eq!(
        run(C, "uml_mkcow", &d, &["-f", "c1.cow", "back.img"]).code,
        Some(0)
    );
    assert_eq!(
        run(Ours, "uml_mkcow", &d, &["-f", "o1.cow", "back.img"]).code,
        Some(0)
    );
    assert!(fs::read(d.join("c1.cow")).unwrap() == fs::read(d.join("o1.cow")).unwrap());
}

#[test]
fn moo_usage_and_header_errors_match() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    for args in [
        &[][..],
        &["-b"],
        &["-d", "-b"],
        &["-b", "x"],
        &["-b", "x", "y"],
        &["x"],
        &["a", "b", "c"],
        &["-d", "a", "b"],
    ] {
        let out = same("uml_moo", &d, args);
        assert_eq!(out.code, Some(1));
        assert!(out.stderr_str().starts_with("uml_moo usage:\n"));
    }
    // `-d` alone: C crashes, we print the usage.
    let theirs = run(C, "uml_moo", &d, &["-d"]);
    assert_eq!(theirs.signal, Some(11));
    let ours = run(Ours, "uml_moo", &d, &["-d"]);
    assert_eq!(ours.code, Some(1));
    assert_eq!(ours.stderr, same("uml_moo", &d, &[]).stderr);

    same("uml_moo", &d, &["missing.cow", "out"]);
    fs::write(d.join("plain.img"), vec![7u8; 9000]).unwrap();
    same("uml_moo", &d, &["plain.img", "out"]);
    fs::create_dir(d.join("adir")).unwrap();
    same("uml_moo", &d, &["adir", "out"]);
    let files: [(&str, &[u8]); 6] = [
        ("short", b"OOOM"),
        ("v1short", b"OOOM\0\0\0\x01"),
        ("v2short", b"OOOM\0\0\0\x02rest"),
        ("v3short", b"OOOM\0\0\0\x03"),
        ("v9", b"OOOM\0\0\0\x09"),
        ("le-v3", b"MOOO\x03\0\0\0/x"),
    ];
    for (name, bytes) in files {
        fs::write(d.join(name), bytes).unwrap();
        let out = same("uml_moo", &d, &[name, "out"]);
        assert_eq!(out.stderr_str(), "Reading COW header failed\n", "{name}");
    }
    assert!(!d.join("out").exists());
}

#[test]
fn moo_backing_checks_match() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let back = d.join("back.img");
    fs::write(&back, Rng::new(1).bytes(1 << 20)).unwrap();
    set_mtime(&back, MTIME);
    let mut rng = Rng::new(2);
    make_cow(
        &d.join("a.cow"),
        &back,
        (Version::V3, 512, 4096),
        &mut rng,
        |i| i % 5 == 0,
    );
    // Another mtime, another size, missing, as -b and as the header's.
    fs::copy(&back, d.join("newer.img")).unwrap();
    set_mtime(&d.join("newer.img"), 1_609_459_200);
    fs::write(d.join("small.img"), vec![0u8; 4096]).unwrap();
    set_mtime(&d.join("small.img"), MTIME);
    for args in [
        &["-b", "newer.img", "a.cow", "out"][..],
        &["-b", "small.img", "a.cow", "out"],
        &["-b", "missing.img", "a.cow", "out"],
        &["-d", "-b", "newer.img", "a.cow"],
        &["-d", "-b", "small.img", "a.cow"],
        &["-b", "back.img", "a.cow", "nodir/out"],
    ] {
        let out = same("uml_moo", &d, args);
        assert_eq!(out.code, Some(1), "{args:?}");
    }
    let out = same("uml_moo", &d, &["-b", "newer.img", "a.cow", "out"]);
    assert_eq!(
        out.stderr_str(),
        "mtime mismatch (1577934245 vs 1609459200) of COW header vs backing file \"newer.img\"\n"
    );
    let out = same("uml_moo", &d, &["-b", "small.img", "a.cow", "out"]);
    assert_eq!(
        out.stderr_str(),
        "Size mismatch (1048576 vs 4096) of COW header vs backing file \"small.img\"\n"
    );
    // The header's backing file touched afterwards.
    set_mtime(&back, MTIME + 1);
    same("uml_moo", &d, &["a.cow", "out"]);
    same("uml_moo", &d, &["-d", "a.cow"]);
    fs::remove_file(&back).unwrap();
    same("uml_moo", &d, &["a.cow", "out"]);
    assert!(!d.join("out").exists());
}

/// C and ours merge the same COW file into new images and in place (on
/// `cp -p`-like copies); the results are byte-identical and ours is never
/// less sparse.
#[test]
fn moo_merges_are_byte_identical() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let mut rng = Rng::new(42);
    // Backing: data with zero sectors and holes, an odd size.
    let size = 3 * (1 << 20) + 1536;
    let back = d.join("back.img");
    {
        let f = File::create(&back).unwrap();
        let mut pos = 0u64;
        while pos < size {
            let len = (rng.next_u64() % 300_000).min(size - pos);
            if rng.next_u64() % 3 != 0 {
                f.write_all_at(&rng.bytes(len as usize), pos).unwrap();
            } else if rng.next_u64() % 2 == 0 {
                f.write_all_at(&vec![0u8; len as usize], pos).unwrap();
            }
            pos += len;
        }
        f.set_len(size).unwrap();
    }
    set_mtime(&back, MTIME);
    let cases: [(&str, Version, u32, u32); 6] = [
        ("v3.cow", Version::V3, 512, 4096),
        ("v3a512.cow", Version::V3, 512, 512),
        ("v3s1024.cow", Version::V3, 1024, 4096),
        ("v2.cow", Version::V2, 512, 512),
        ("v1.cow", Version::V1, 512, 512),
        ("broken.cow", Version::V3Broken, 512, 4096),
    ];
    for (n, (name, version, ss, align)) in cases.into_iter().enumerate() {
        let cow = d.join(name);
        let seed = rng.next_u64();
        make_cow(&cow, &back, (version, ss, align), &mut rng, move |i| {
            // Page-sized runs and some single sectors.
            let x = (i / 8).wrapping_mul(seed | 1) >> 7;
            x % 5 == 0 || (i.wrapping_mul(seed) >> 3) % 97 == 0
        });
        let (c_out, o_out) = (d.join(format!("c{n}.img")), d.join(format!("o{n}.img")));
        let theirs = run(C, "uml_moo", &d, &[name, s(&c_out)]);
        let ours = run(Ours, "uml_moo", &d, &[name, s(&o_out)]);
        diff::assert_same(&format!("uml_moo {name} OUT"), &theirs, &ours);
        assert_eq!(ours.code, Some(0), "{name}: {ours}");
        let (cb, ob) = (fs::read(&c_out).unwrap(), fs::read(&o_out).unwrap());
        assert!(cb == ob, "{name}: merged images differ");
        assert_never_less_sparse(&o_out, &c_out, name);

        // -b with a copy that keeps the mtime, into a new image.
        let copy = d.join("copy.img");
        fs::copy(&back, &copy).unwrap();
        set_mtime(&copy, MTIME);
        let ob2 = d.join("ob.img");
        same("uml_moo", &d, &["-b", "copy.img", name, s(&ob2)]);
        assert!(fs::read(&ob2).unwrap() == ob, "{name}: -b merge differs");

        // In place on two copies.
        let (cc, oc) = (d.join("cc.img"), d.join("oc.img"));
        for p in [&cc, &oc] {
            Command::new("cp")
                .args(["--sparse=always", s(&back), s(p)])
                .status()
                .unwrap();
            set_mtime(p, MTIME);
        }
        let theirs = run(C, "uml_moo", &d, &["-d", "-b", s(&cc), name]);
        let ours = run(Ours, "uml_moo", &d, &["-d", "-b", s(&oc), name]);
        diff::assert_same(&format!("uml_moo -d -b COPY {name}"), &theirs, &ours);
        let (cb, obb) = (fs::read(&cc).unwrap(), fs::read(&oc).unwrap());
        assert!(cb == obb, "{name}: -d results differ");
        assert!(obb.starts_with(&ob), "{name}: -d is not the merge");
        assert_never_less_sparse(&oc, &cc, &format!("{name} -d"));
    }
}

#[test]
fn moo_on_truncated_cow_files() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let back = d.join("back.img");
    fs::write(&back, Rng::new(5).bytes(1 << 20)).unwrap();
    set_mtime(&back, MTIME);
    let g = make_cow(
        &d.join("full.cow"),
        &back,
        (Version::V3, 512, 4096),
        &mut Rng::new(6),
        |i| i == 2047,
    );
    let full = fs::read(d.join("full.cow")).unwrap();
    // Bitmap cut: C says "Success" and leaves an empty output; data cut:
    // C leaves a partial output. Same status, clearer text, no output.
    for (cut, prefix) in [
        (g.bitmap_offset as usize + 10, "Reading COW bitmap"),
        (g.data_offset as usize + 512, "Reading data"),
    ] {
        fs::write(d.join("t.cow"), &full[..cut]).unwrap();
        let theirs = run(C, "uml_moo", &d, &["t.cow", "c.img"]);
        let ours = run(Ours, "uml_moo", &d, &["t.cow", "o.img"]);
        assert_eq!(theirs.stderr_str(), format!("{prefix}: Success\n"));
        assert_eq!(
            ours.stderr_str(),
            format!("{prefix}: unexpected end of file\n")
        );
        assert_eq!((ours.code, theirs.code), (Some(1), Some(1)));
        assert!(d.join("c.img").exists() && !d.join("o.img").exists());
    }
    // Sector size and alignment 0: C divides by zero.
    for (off, what) in [(20usize, "sectorsize == 0"), (24, "align == 0")] {
        let mut b = full.clone();
        b[off..off + 4].fill(0);
        fs::write(d.join("z.cow"), &b).unwrap();
        let theirs = run(C, "uml_moo", &d, &["z.cow", "c.img"]);
        assert_eq!(theirs.signal, Some(8));
        let ours = run(Ours, "uml_moo", &d, &["z.cow", "o.img"]);
        assert_eq!(ours.code, Some(1));
        assert_eq!(
            ours.stdout_str(),
            format!("read_cow_header - invalid COW header, {what}\n")
        );
        assert_eq!(ours.stderr_str(), "Reading COW header failed\n");
    }
}

/// A garbage-filled COW file never crashes our merge.
#[test]
fn moo_survives_garbage() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let back = d.join("back.img");
    fs::write(&back, Rng::new(8).bytes(64 << 10)).unwrap();
    set_mtime(&back, MTIME);
    make_cow(
        &d.join("good.cow"),
        &back,
        (Version::V3, 512, 4096),
        &mut Rng::new(9),
        |i| i % 3 == 0,
    );
    let good = fs::read(d.join("good.cow")).unwrap();
    let mut rng = Rng::new(10);
    for round in 0..300 {
        let mut b = good.clone();
        for _ in 0..(1 + rng.next_u64() % 8) {
            let at = (rng.next_u64() % 48) as usize;
            b[at] = rng.next_u64() as u8;
        }
        if round % 3 == 0 {
            let at = 8192 + (rng.next_u64() % 16) as usize;
            b[at] = rng.next_u64() as u8;
        }
        b.truncate(
            (rng.next_u64() % (b.len() as u64 + 1)).max(if round % 2 == 0 { 0 } else { 12288 })
                as usize,
        );
        fs::write(d.join("g.cow"), &b).unwrap();
        let args: &[&str] = if round % 4 == 0 {
            &["-d", "-b", "back.img", "g.cow"]
        } else {
            &["-b", "back.img", "g.cow", "o.img"]
        };
        let out = run(Ours, "uml_moo", &d, args);
        assert!(
            out.signal.is_none() && matches!(out.code, Some(0 | 1)),
            "round {round}: {out}"
        );
        set_mtime(&back, MTIME);
    }
}

// ---------------------------------------------------------------------
// Files a UML guest holds (issue 12): a `hold-lock` process takes the
// fcntl locks the kernel's block driver takes (a write lock on a COW or
// writable image, a read lock on a backing file).

/// A process holding `fcntl` locks until dropped.
struct LockHolder {
    child: std::process::Child,
}

impl LockHolder {
    fn new(kind: &str, files: &[&Path]) -> LockHolder {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = Command::new(workspace_bin("hold-lock"))
            .arg(kind)
            .args(files)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let holder = LockHolder { child };
        let line = rx.recv_timeout(LIMIT).unwrap_or_default();
        assert_eq!(line, "locked\n", "hold-lock {kind} {files:?} failed");
        holder
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line of the refusal for `role` `name` held by `pid`.
fn in_use_line(role: &str, name: &str, pid: u32, kind: &str) -> String {
    format!("{role} \"{name}\" is in use by a UML guest (process {pid} holds a {kind} lock on it)")
}

/// Asserts a refusal: status 1, nothing on stdout, the first stderr line
/// as given and the advice after it.
fn assert_refused(out: &RunOutput, first_line: &str) {
    let err = out.stderr_str();
    let mut lines = err.lines();
    assert_eq!(
        (out.code, out.stdout_str().as_str(), lines.next()),
        (Some(1), "", Some(first_line)),
        "{out}"
    );
    let advice = lines.next().unwrap_or_default();
    assert!(
        advice.starts_with("Nothing was changed.") && advice.contains("--ignore-locks"),
        "{out}"
    );
    assert_eq!(lines.next(), None, "{out}");
}

/// A file's bytes and mtime.
fn state(p: &Path) -> (Vec<u8>, i64, i64) {
    let m = fs::metadata(p).unwrap();
    (fs::read(p).unwrap(), m.mtime(), m.mtime_nsec())
}

#[test]
fn moo_refuses_files_a_guest_holds() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let back = d.join("back.img");
    fs::write(&back, Rng::new(7).bytes(1 << 20)).unwrap();
    set_mtime(&back, MTIME);
    make_cow(
        &d.join("a.cow"),
        &back,
        (Version::V3, 512, 4096),
        &mut Rng::new(8),
        |i| i % 3 == 0,
    );
    let before = (state(&back), state(&d.join("a.cow")));
    let unchanged = |what: &str| {
        assert_eq!(
            (state(&back), state(&d.join("a.cow"))),
            before,
            "changed after {what}"
        );
        assert!(!d.join("out").exists(), "output written after {what}");
    };

    // A guest running on a.cow: the COW file is write-locked, the backing
    // file read-locked. Both forms refused, naming the COW file.
    {
        let cow_lock = LockHolder::new("write", &[&d.join("a.cow")]);
        let _back_lock = LockHolder::new("read", &[&back]);
        let line = in_use_line("COW file", "a.cow", cow_lock.pid(), "write");
        assert_refused(&run(Ours, "uml_moo", &d, &["a.cow", "out"]), &line);
        assert_refused(&run(Ours, "uml_moo", &d, &["-d", "a.cow"]), &line);
        unchanged("refusals");
        // --ignore-locks (anywhere) merges as Debian's does.
        let ours = run(
            Ours,
            "uml_moo",
            &d,
            &["a.cow", "--ignore-locks", "ours.img"],
        );
        assert!(ours.success() && ours.stderr.is_empty(), "{ours}");
        let theirs = run(C, "uml_moo", &d, &["a.cow", "c.img"]);
        assert!(theirs.success(), "{theirs}");
        assert_eq!(
            fs::read(d.join("ours.img")).unwrap(),
            fs::read(d.join("c.img")).unwrap()
        );
    }

    // Another guest reads the backing file (through its own COW file):
    // merging a.cow into a new image only reads it and is fine; merging in
    // place would write it under that guest, refused with the name the
    // header gives.
    {
        let back_lock = LockHolder::new("read", &[&back]);
        let out = run(Ours, "uml_moo", &d, &["a.cow", "new.img"]);
        assert!(out.success() && out.stderr.is_empty(), "{out}");
        assert_eq!(
            fs::read(d.join("new.img")).unwrap(),
            fs::read(d.join("c.img")).unwrap()
        );
        let line = in_use_line(
            "backing file",
            back.to_str().unwrap(),
            back_lock.pid(),
            "read",
        );
        assert_refused(&run(Ours, "uml_moo", &d, &["-d", "a.cow"]), &line);
        let copy = d.join("copy.img");
        fs::copy(&back, &copy).unwrap();
        set_mtime(&copy, MTIME);
        let copy_lock = LockHolder::new("read", &[&copy]);
        let line = in_use_line("backing file", "copy.img", copy_lock.pid(), "read");
        assert_refused(
            &run(Ours, "uml_moo", &d, &["-d", "-b", "copy.img", "a.cow"]),
            &line,
        );
        unchanged("in-place refusals");
    }

    // An output file a guest uses as its disk is not replaced.
    {
        let disk = d.join("disk.img");
        fs::write(&disk, b"a guest's disk").unwrap();
        let disk_lock = LockHolder::new("write", &[&disk]);
        let line = in_use_line("output file", "disk.img", disk_lock.pid(), "write");
        assert_refused(&run(Ours, "uml_moo", &d, &["a.cow", "disk.img"]), &line);
        assert_eq!(fs::read(&disk).unwrap(), b"a guest's disk");
        drop(disk_lock);
        let read_lock = LockHolder::new("read", &[&disk]);
        let line = in_use_line("output file", "disk.img", read_lock.pid(), "read");
        assert_refused(&run(Ours, "uml_moo", &d, &["a.cow", "disk.img"]), &line);
        assert_eq!(fs::read(&disk).unwrap(), b"a guest's disk");
    }
    unchanged("everything");

    // Unlocked again: the in-place merge proceeds.
    let out = run(Ours, "uml_moo", &d, &["-d", "a.cow"]);
    assert!(out.success(), "{out}");
    assert_eq!(fs::read(&back).unwrap(), fs::read(d.join("c.img")).unwrap());
}

#[test]
fn mkcow_refuses_files_a_guest_holds() {
    if !requirements() {
        return;
    }
    let (_g, d) = dir();
    let back = d.join("back.img");
    fs::write(&back, Rng::new(9).bytes(1 << 20)).unwrap();
    set_mtime(&back, MTIME);
    let ok = |args: &[&str]| {
        let out = run(Ours, "uml_mkcow", &d, args);
        assert!(out.success() && out.stderr.is_empty(), "{args:?}: {out}");
    };
    ok(&["a.cow", "back.img"]);
    // A guest writes into a.cow.
    let cow = d.join("a.cow");
    let f = File::options().write(true).open(&cow).unwrap();
    f.write_all_at(&[0xff], 8192).unwrap();
    let before = state(&cow);
    {
        let lock = LockHolder::new("write", &[&cow]);
        let line = in_use_line("COW file", "a.cow", lock.pid(), "write");
        assert_refused(
            &run(Ours, "uml_mkcow", &d, &["-f", "a.cow", "back.img"]),
            &line,
        );
        assert_eq!(state(&cow), before);
        // Without -f, Debian's refusal, as ever.
        let out = same("uml_mkcow", &d, &["a.cow", "back.img"]);
        assert_eq!(out.stderr_str(), "open COW file: File exists\n");
        assert_eq!(state(&cow), before);
    }
    {
        // Held for reading only (e.g. a guest uses it as a backing file):
        // starting it afresh would still change it under the guest.
        let lock = LockHolder::new("read", &[&cow]);
        let line = in_use_line("COW file", "a.cow", lock.pid(), "read");
        assert_refused(
            &run(Ours, "uml_mkcow", &d, &["-f", "a.cow", "back.img"]),
            &line,
        );
        assert_eq!(state(&cow), before);
        ok(&["--ignore-locks", "-f", "a.cow", "back.img"]);
        assert_ne!(state(&cow).0, before.0, "--ignore-locks did not rewrite");
    }

    // A backing file a guest writes to (its plain disk): no COW file on it.
    {
        let lock = LockHolder::new("write", &[&back]);
        let line = in_use_line("backing file", "back.img", lock.pid(), "write");
        assert_refused(&run(Ours, "uml_mkcow", &d, &["b.cow", "back.img"]), &line);
        assert!(!d.join("b.cow").exists());
        assert_refused(
            &run(Ours, "uml_mkcow", &d, &["-f", "a.cow", "back.img"]),
            &line,
        );
    }
    // A backing file guests only read (through other COW files) is the
    // normal case: the COW file is Debian's, byte for byte.
    {
        let _lock = LockHolder::new("read", &[&back]);
        ok(&["b.cow", "back.img"]);
        let theirs = run(C, "uml_mkcow", &d, &["c.cow", "back.img"]);
        assert!(theirs.success(), "{theirs}");
        assert_eq!(
            fs::read(d.join("b.cow")).unwrap(),
            fs::read(d.join("c.cow")).unwrap()
        );
    }
}

#[test]
fn cow_tools_help_lists_the_added_options() {
    let (_g, d) = dir();
    for (tool, usage_code) in [("uml_moo", 1), ("uml_mkcow", 2)] {
        let out = run(Ours, tool, &d, &["--help"]);
        assert_eq!(
            (out.code, out.stderr_str().as_str()),
            (Some(0), ""),
            "{out}"
        );
        let text = out.stdout_str();
        // The usage text the tool prints for a bad command line, then the
        // options of this implementation.
        let usage = run(Ours, tool, &d, &[]);
        assert_eq!(usage.code, Some(usage_code));
        assert!(text.starts_with(&usage.stderr_str()), "{tool}:\n{text}");
        assert!(text.contains("\n  --ignore-locks  "), "{tool}:\n{text}");
        assert!(text.contains("\n  --help  "), "{tool}:\n{text}");
    }
}
