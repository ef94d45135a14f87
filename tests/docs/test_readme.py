#!/usr/bin/env python3
"""README.md documents every setting and every API error exactly as their tables say (the
README's tables are `moviesd --settings-markdown` and `moviesd --errors-markdown`), and starts
with the two set-up commands."""
import os
import re
import subprocess
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
daemon = os.environ.get("TEST_DAEMON_BIN") or os.path.join(REPO, "build", "moviesd")
readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIESD_")}
failed = passed = 0


def check(cond, what):
    global failed, passed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


table = subprocess.run([daemon, "--settings-markdown"], capture_output=True, text=True,
                       check=True, env=env).stdout.strip()
check(table in readme, "README.md's settings table differs from `moviesd --settings-markdown`")
errors = subprocess.run([daemon, "--errors-markdown"], capture_output=True, text=True,
                        check=True, env=env).stdout.strip()
check(errors in readme, "README.md's error table differs from `moviesd --errors-markdown`")
section = re.search(r"^### Errors\n(.*?)^#", readme, re.M | re.S)
check(section is not None and errors in section.group(1),
      "the error table is not in README.md's Errors section")
codes = re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", errors, re.M)
check(len(codes) >= 10 and len(set(codes)) == len(codes), "error codes %r" % codes)
help_text = subprocess.run([daemon, "--help"], capture_output=True, text=True, check=True, env=env).stdout
for key in re.findall(r"^\| `([a-z_]+)` \|", table, re.M):
    check("--" + key.replace("_", "-") in help_text, "--help lacks --%s" % key)
    check(re.search(r"^#\s*%s = " % key, open(os.path.join(REPO, "config", "moviesd.conf")).read(), re.M),
          "config/moviesd.conf lacks %s" % key)
blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
check(len(blocks) >= 2 and "build/moviesd" in blocks[0] and "scripts/test.sh" in blocks[1],
      "README.md does not start with the run and test commands")
ci = open(os.path.join(REPO, ".ci", "run")).read()
test_cmd = [l for l in blocks[1].splitlines() if l and not l.startswith("#")][0]
check(all(part.strip() in ci for part in test_cmd.split("&&")),
      ".ci/run does not run README's test command (%s)" % test_cmd)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
