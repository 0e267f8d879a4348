# Where cargo puts what it builds, for scripts/* and packaging/build-deb
# (sourced, not run). Never assume `target/`: CARGO_TARGET_DIR,
# CARGO_BUILD_TARGET_DIR or build.target-dir move the target directory,
# and the build target (.cargo/config.toml's [build] target, or
# CARGO_BUILD_TARGET) adds a directory level.
#
#   cargo_target_dir          the target directory (cargo metadata's)
#   cargo_build_triple        the configured build target, empty if none
#   cargo_bin_dir [PROFILE]   where `cargo build [--release]` leaves the
#                             binaries (PROFILE: release or debug; default
#                             release)
#
# Each prints one line and fails (status 1, message on stderr) when cargo
# cannot tell. They run from the workspace root (the scripts cd there).

cargo_target_dir() {
    local json dir
    json=$(cargo metadata --format-version 1 --no-deps) || {
        echo "cargo metadata failed: cannot find the target directory" >&2
        return 1
    }
    dir=$(printf '%s' "$json" | grep -o '"target_directory":"[^"]*"' | head -n 1 |
        sed 's/^"target_directory":"//; s/"$//')
    if [[ -z $dir ]]; then
        echo "cargo metadata names no target directory" >&2
        return 1
    fi
    printf '%s\n' "$dir"
}

cargo_build_triple() {
    local triple=${CARGO_BUILD_TARGET:-}
    if [[ -z $triple && -f .cargo/config.toml ]]; then
        triple=$(sed -n 's/^target = "\(.*\)"$/\1/p' .cargo/config.toml | head -n 1)
    fi
    printf '%s\n' "$triple"
}

cargo_bin_dir() {
    local profile=${1:-release} dir triple
    dir=$(cargo_target_dir) || return 1
    triple=$(cargo_build_triple)
    if [[ -n $triple ]]; then
        printf '%s/%s/%s\n' "$dir" "$triple" "$profile"
    else
        printf '%s/%s\n' "$dir" "$profile"
    fi
}
