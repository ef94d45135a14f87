"""docs/openapi.json stays true to the code: it is OpenAPI 3.1 JSON, its ErrorCode enum is
exactly the codes of lib/error.c's table (as `moviesd --errors-markdown` prints it), every
error status of that table is a documented response somewhere, and every route of
daemon/http.c's table is a documented path. Parts described ahead of their code carry
x-moviesd-pending; they are listed, so that none is forgotten once its code lands."""
import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def check(cond, message):
    if not cond:
        failures.append(message)


def pending_marks(node, where="#"):
    """(JSON pointer, text) of every x-moviesd-pending mark under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "x-moviesd-pending":
                yield where, v
            else:
                yield from pending_marks(v, where + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from pending_marks(v, "%s/%d" % (where, i))


with open(os.path.join(REPO, "docs", "openapi.json"), "rb") as f:
    raw = f.read()
doc = json.loads(raw.decode("utf-8"))
check(re.match(r"3\.1\.\d+$", doc.get("openapi", "")), "openapi is %r, not 3.1.x" % doc.get("openapi"))

daemon = os.environ["TEST_DAEMON_BIN"]
table = subprocess.run([daemon, "--errors-markdown"], capture_output=True, text=True, check=True).stdout
rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", table, re.M)
check(len(rows) >= 10, "no error rows in --errors-markdown")
enum = doc["components"]["schemas"]["ErrorCode"]["enum"]
codes = [code for _, code in rows]
check(sorted(enum) == sorted(codes),
      "components.schemas.ErrorCode.enum differs from lib/error.c's table: only in the document %s, "
      "only in the table %s" % (sorted(set(enum) - set(codes)), sorted(set(codes) - set(enum))))

documented = set()
for path, item in doc["paths"].items():
    for method, op in item.items():
        if isinstance(op, dict) and "responses" in op:
            documented.update(op["responses"])
for status, code in rows:
    check(status in documented, "no path documents status %s (%s)" % (status, code))

http_c = open(os.path.join(REPO, "daemon", "http.c"), encoding="utf-8").read()
routes = re.findall(r'^\s*\{"(/[^"]*)", "[a-z_]+", [a-z_]+\},$', http_c, re.M)
check(len(routes) >= 5, "no route table found in daemon/http.c")
for route in routes:
    check(route in doc["paths"], "daemon/http.c serves %s, which docs/openapi.json does not describe" % route)

for where, what in pending_marks(doc):
    print("pending: %s: %s" % (where, what))
if failures:
    for f in failures:
        print("FAIL: " + f)
    sys.exit(1)
print("ok: %d paths, %d error codes, %d routes of daemon/http.c" % (len(doc["paths"]), len(enum), len(routes)))
