"""Lints docs/openapi.json with @redocly/cli (pinned in deps/npm/package.json, installed
there by scripts/install-deps.sh) under docs/redocly.yaml. It runs on the Node.js installed
beside it when there is one (x86-64), else on the system's, which must be 20.19 or 22.12 or
newer. Without the linter it is skipped, with the reason, unless TEST_REQUIRE_LINTER is set
(scripts/test.sh's builds), when that is a failure."""
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO, "deps", "npm", "node_modules")
CLI = os.path.join(TOOLS, "@redocly", "cli", "bin", "cli.js")


def missing(reason):
    print(("FAIL: " if os.environ.get("TEST_REQUIRE_LINTER") else "skipped: ") + reason +
          " (scripts/install-deps.sh test installs it)")
    sys.exit(1 if os.environ.get("TEST_REQUIRE_LINTER") else 77)


def node_ok(node):
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    m = re.match(r"v(\d+)\.(\d+)", out)
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2))
    return (major == 20 and minor >= 19) or (major == 22 and minor >= 12) or major > 22


if not os.path.exists(CLI):
    missing("no @redocly/cli in deps/npm/node_modules")
node = next((n for n in (os.path.join(TOOLS, ".bin", "node"), "node") if node_ok(n)), None)
if node is None:
    missing("no Node.js 20.19 or 22.12 or newer for @redocly/cli")
rc = subprocess.run([node, CLI, "lint", "--config", os.path.join(REPO, "docs", "redocly.yaml"),
                     os.path.join(REPO, "docs", "openapi.json")], timeout=120,
                    env=dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")).returncode
sys.exit(rc)
