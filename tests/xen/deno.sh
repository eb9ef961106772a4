#!/usr/bin/env bash
# deno.sh - find the real path of the host's Deno binary, so that dom0 (which sees
# the host's / read-only over 9p) can run the very same binary. npm installs put a
# launcher in node_modules/.bin; Deno.execPath() names the ELF itself, wherever
# npx or npm put it (~/.npm/_npx/<hash>/node_modules/deno/deno, say).
#
# usage: deno.sh              print the binary's path
#        deno.sh --dir        print the path, then the host's DENO_DIR on a second line
#        deno.sh -- ARGS...   run that deno on the host with ARGS
# lookup order: $XENVM_DENO (a path); `deno` on PATH; npx -y deno@$XENVM_DENO_VERSION
# (default 2.9.6, the version the project pins; npx fetches it from the npm
# registry once, then runs from its cache).
set -euo pipefail

VERSION="${XENVM_DENO_VERSION:-2.9.6}"
PROBE='console.log(Deno.execPath()); console.log(JSON.parse(new TextDecoder().decode(new Deno.Command(Deno.execPath(), { args: ["info", "--json"], env: { NO_COLOR: "1" } }).outputSync().stdout)).denoDir);'

probe() { NO_COLOR=1 DENO_NO_UPDATE_CHECK=1 "$@" eval "$PROBE" 2>/dev/null; }
out=""
if [ -n "${XENVM_DENO:-}" ]; then
  out=$(probe "$XENVM_DENO") || { echo "xen-vm: XENVM_DENO=$XENVM_DENO does not run" >&2; exit 1; }
elif command -v deno >/dev/null 2>&1 && out=$(probe deno); then
  :
elif command -v npx >/dev/null 2>&1 && out=$(cd / && probe npx -y "deno@$VERSION"); then
  :   # cd /: a package.json in the cwd must not change what npx resolves
else
  echo "xen-vm: no deno found (set XENVM_DENO, put deno on PATH, or make npx -y deno@$VERSION work)" >&2
  exit 1
fi
bin=$(sed -n 1p <<<"$out")
dir=$(sed -n 2p <<<"$out")
bin=$(readlink -f "$bin")
[ -x "$bin" ] || { echo "xen-vm: located deno '$bin' is not executable" >&2; exit 1; }

case "${1:-}" in
  "") echo "$bin" ;;
  --dir) echo "$bin"; echo "$dir" ;;
  --) shift; exec "$bin" "$@" ;;
  *) echo "usage: deno.sh [--dir | -- ARGS...]" >&2; exit 2 ;;
esac
