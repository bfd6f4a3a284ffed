#!/usr/bin/env bash
# Installs the real MCP clients that test/e2e-real-clients.test.ts drives (Codex CLI and Claude
# Code), at pinned versions, into .ci/clients/node_modules: a folder of their own, outside the
# project's package.json and lock file (`npm ci` cannot install @openai/codex from a lock file
# made on another platform: its binary comes in a platform-specific optional dependency).
#
# Both ship their native binary inside npm packages (@openai/codex@VERSION-<platform> through an
# npm alias, @anthropic-ai/claude-code-<platform>), so the install needs only the npm registry.
# Claude Code's postinstall (install.cjs) copies that binary over the bin/claude.exe stub; it is
# run by hand if npm skipped it.
#
# Idempotent: when the pinned versions are there and both binaries answer --version, it exits
# at once. Usage: .ci/install-clients.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."

CODEX_VERSION=0.169.0
CLAUDE_CODE_VERSION=2.1.328

dir=.ci/clients
codex_js="$dir/node_modules/@openai/codex/bin/codex.js"
claude_bin="$dir/node_modules/@anthropic-ai/claude-code/bin/claude.exe"

# Any Node >= 16 runs these checks and codex.js; the tests run the clients on the bundled Node 24.
installed_version() {
  node -e 'try { process.stdout.write(require(process.argv[1]).version) } catch {}' "$PWD/$dir/node_modules/$1/package.json"
}

clients_ok() {
  [ "$(installed_version @openai/codex)" = "$CODEX_VERSION" ] &&
    [ "$(installed_version @anthropic-ai/claude-code)" = "$CLAUDE_CODE_VERSION" ] &&
    node "$codex_js" --version 2>/dev/null | grep -qF "$CODEX_VERSION" &&
    "$claude_bin" --version 2>/dev/null | grep -qF "$CLAUDE_CODE_VERSION"
}

if [ "${1:-}" != "--force" ] && clients_ok; then
  echo "ci: real clients already installed (@openai/codex $CODEX_VERSION, @anthropic-ai/claude-code $CLAUDE_CODE_VERSION)"
  exit 0
fi

echo "ci: installing real clients into $dir (@openai/codex $CODEX_VERSION, @anthropic-ai/claude-code $CLAUDE_CODE_VERSION)"
mkdir -p "$dir"
cat >"$dir/package.json" <<EOF
{
  "private": true,
  "description": "Real MCP clients for test/e2e-real-clients.test.ts, written by .ci/install-clients.sh (not committed)",
  "dependencies": {
    "@openai/codex": "$CODEX_VERSION",
    "@anthropic-ai/claude-code": "$CLAUDE_CODE_VERSION"
  },
  "allowScripts": {
    "@anthropic-ai/claude-code": true
  }
}
EOF
# No lock file: it would pin one platform's optional binary package.
(cd "$dir" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)

if ! "$claude_bin" --version >/dev/null 2>&1; then
  echo "ci: running Claude Code's postinstall (npm did not)"
  (cd "$dir/node_modules/@anthropic-ai/claude-code" && node install.cjs)
fi

if ! clients_ok; then
  echo "ci: the real clients did not install correctly:" >&2
  node "$codex_js" --version >&2 || true
  "$claude_bin" --version >&2 || true
  exit 1
fi
echo "ci: $(node "$codex_js" --version), claude $("$claude_bin" --version)"
